// Fuzz target: the log encoder, fed what a child program may print (any bytes: control
// characters, another encoding, a terminal's escapes). The first byte picks the level, the
// second the program; the rest is the message, and after a 0x1f byte, a hint. Properties:
//  - the JSON line is one line of valid JSON (no raw control character, valid UTF-8) with the
//    ECS keys, and gives the message back unchanged whenever it was UTF-8;
//  - error.hint is there exactly when there is a hint;
//  - the text has one line per line of the message and of the hint, each starting with the
//    same time, level and [logger], and no control character but tab;
//  - the child-line classifier says "continues" only of a line without a level of its own.
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "core/log.hpp"
#include "exec/child_lines.hpp"
#include "fuzz_check.hpp"

namespace {

bool is_utf8(const std::string& text) {
  try {
    (void)nlohmann::json(text).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

std::size_t count_lines(std::string_view text) {
  std::size_t lines = 1;
  for (const char c : text) lines += c == '\n' ? 1 : 0;
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using agent::fuzz::check;
  if (size < 2) return 0;
  static constexpr spdlog::level::level_enum kLevels[] = {spdlog::level::trace, spdlog::level::debug,
                                                          spdlog::level::info,  spdlog::level::warn,
                                                          spdlog::level::err,   spdlog::level::critical};
  static constexpr const char* kPrograms[] = {"pgbackrest", "postgres", "pg_dump", "pg_restore"};
  const auto level = kLevels[data[0] % 6];
  const std::string program = kPrograms[data[1] % 4];
  const std::string_view rest = agent::fuzz::as_text(data + 2, size - 2);
  const std::size_t split = rest.find('\x1f');
  const std::string message(rest.substr(0, split));
  agent::log::Fields fields;
  if (split != std::string_view::npos) fields.hint = std::string(rest.substr(split + 1));
  fields.duration = std::chrono::nanoseconds(static_cast<std::int64_t>(size) * 1000);

  const agent::log::Record record{std::chrono::system_clock::time_point(std::chrono::seconds(1730742000)),
                                  level,
                                  program,
                                  message,
                                  "dump",
                                  "7",
                                  "restore",
                                  &fields,
                                  42};
  const std::string line = agent::log::format_json(record);
  for (const char c : line)
    check(static_cast<unsigned char>(c) >= 0x20, "a raw control character in JSON", line);
  const auto json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  check(json.is_object(), "the JSON line does not parse", line);
  for (const char* key : {"@timestamp", "log.level", "message", "log.logger", "ecs.version", "process.pid"})
    check(json.contains(key), "an ECS key is missing", key);
  if (is_utf8(message))
    check(json["message"] == message, "a UTF-8 message did not come back unchanged", line);
  check(json.contains("error.hint") == !fields.hint.empty(), "error.hint there without a hint, or missing",
        line);

  const std::string text = agent::log::format_text(record);
  const std::size_t expected_lines =
      count_lines(message) + (fields.hint.empty() ? 0 : count_lines(fields.hint));
  check(count_lines(text) == expected_lines, "the text has another number of lines", text);
  const std::string prefix = text.substr(0, text.find(" [") + program.size() + 4);
  std::size_t start = 0;
  while (start <= text.size()) {
    check(text.compare(start, prefix.size(), prefix) == 0, "a text line without the prefix", text);
    const std::size_t newline = text.find('\n', start);
    if (newline == std::string::npos) break;
    start = newline + 1;
  }
  for (const char c : text)
    check(static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n', "a control character in text",
          text);

  const agent::ChildLine kind = agent::classify_child_line(program, message);
  check(!(kind.continues && kind.level), "a continuation line with a level of its own", message);
  return 0;
}
