// Fuzz target: the pod's annotations file from a Downward API volume (anybody who may annotate
// the pod writes into it). Properties:
//  - every key kept is a possible annotation key; skipped lines are counted and the first few
//    reported, each with its line number;
//  - every value kept, quoted again the way Go quotes bytes, reads back as itself;
//  - the input read directly as one quoted value does not break unquote_go_string either.
#include <string>

#include "fuzz_check.hpp"
#include "jobs/annotations.hpp"

namespace {

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '.' ||
         c == '-' || c == '_';
}

// Go's strconv.Quote for arbitrary bytes: printable ASCII as is, the rest as \xNN.
std::string go_quote(const std::string& value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte >= 0x20 && byte < 0x7f) {
      out += c;
    } else {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    }
  }
  return out + "\"";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = agent::fuzz::as_text(data, size);
  const auto file = agent::parse_annotations(text);
  for (const auto& [key, value] : file.values) {
    agent::fuzz::check(!key.empty(), "an empty annotation key was kept");
    for (const char c : key)
      agent::fuzz::check(is_key_char(c), "a key with a character keys cannot have", key);
    const auto again = agent::unquote_go_string(go_quote(value));
    agent::fuzz::check(again.ok() && *again == value, "a value quoted again does not read back", key);
  }
  agent::fuzz::check(file.problems.size() <= agent::AnnotationFile::kMaxProblems,
                     "more problems kept than the cap");
  agent::fuzz::check(file.skipped >= file.problems.size(), "fewer lines skipped than problems");
  for (const auto& problem : file.problems)
    agent::fuzz::check(problem.rfind("line ", 0) == 0, "a problem that does not say its line", problem);

  const auto unquoted = agent::unquote_go_string(text);
  if (!unquoted) agent::fuzz::check(!unquoted.error().message.empty(), "a refusal without a message");
  return 0;
}
