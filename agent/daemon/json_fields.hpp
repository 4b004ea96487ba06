#pragma once
// Strict reading of one JSON object's fields, for the control socket's requests and replies:
// each field at most once, of one type and range, strings of bounded size without NUL; the
// fields read are remembered so that anything else in the object is refused as unknown.
// Errors name the field; `refuse` turns a message into the caller's kind of error.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace agent {

// At most `limit` bytes of `text` for a message, never cutting a UTF-8 character in half.
std::string shortened(const std::string& text, std::size_t limit = 64);

class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, std::size_t max_text_bytes,
             std::function<Error(const std::string& message)> refuse);

  Result<std::optional<std::string>> text(const char* key);
  Result<std::optional<bool>> flag(const char* key);
  // An array of at most 64 strings, each as text() checks it; absent: empty.
  Result<std::vector<std::string>> texts(const char* key);
  // An integer in [low, high]; numbers with a fraction or out of range are refused, never
  // narrowed (2^32+5000 is not 5000).
  Result<std::optional<std::int64_t>> integer(const char* key, std::int64_t low, std::int64_t high);
  Result<std::optional<double>> number(const char* key);
  // The field as it is, when it is a JSON object.
  Result<std::optional<nlohmann::json>> object(const char* key);
  // `what`: "a backup request", "a dump-step reply".
  Status no_unknown_keys(const std::string& what) const;

  // The same, for a field that must be there.
  Result<std::string> required_text(const char* key);
  Result<std::int64_t> required_integer(const char* key, std::int64_t low, std::int64_t high);
  Result<double> required_number(const char* key);

 private:
  Error missing(const char* key) const;

  const nlohmann::json& object_;
  std::size_t max_text_bytes_;
  std::function<Error(const std::string&)> refuse_;
  std::set<std::string, std::less<>> seen_;
};

}  // namespace agent
