#pragma once
// Expected failures travel as values: an Error carries a stable kind (which maps to the
// process exit code), a lowercase message saying what was wrong, and a hint saying what to do.
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace agent {

// The kinds are stable: each maps to one documented exit code (see exit_code_for).
enum class ErrorKind {
  internal,       // a bug in the agent
  usage,          // bad command line, bad config
  target_window,  // recovery target outside the recoverable window
  verification,   // the restored copy is not what was asked for
  environment,    // port, disk, permissions, paths, a running server
  external_tool,  // pgBackRest, postgres or pg_dump failed
  interrupted,    // SIGINT or SIGTERM
};

struct Error {
  ErrorKind kind = ErrorKind::internal;
  std::string message;
  std::string hint;

  // Adds context on the way up: "while starting the scratch server: <message>".
  Error with_context(const std::string& context) const;
  std::string describe() const;  // message, then "HINT: ..." when there is one
};

Error make_error(ErrorKind kind, std::string message, std::string hint = {});

// Process exit codes, one place. Documented in README.md ("Exit codes").
int exit_code_for(ErrorKind kind);
constexpr int kExitSuccess = 0;
const char* error_kind_name(ErrorKind kind);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<T>(state_); }
  const T& value() const { return std::get<T>(state_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<Error>(state_); }

 private:
  std::variant<T, Error> state_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *error_; }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace agent
