#include "exec/child_lines.hpp"

#include <array>
#include <cctype>
#include <utility>

namespace agent {

namespace {

using Level = spdlog::level::level_enum;

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool digit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

bool indented(std::string_view line) {
  return !line.empty() && (line.front() == ' ' || line.front() == '\t');
}

// "2024-11-04 09:40:00.123 ": pgBackRest's timestamp (log-timestamp, on by default).
std::string_view skip_pgbackrest_time(std::string_view line) {
  constexpr std::string_view shape = "dddd-dd-dd dd:dd:dd.ddd ";
  if (line.size() < shape.size()) return line;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 'd' ? !digit(line[i]) : line[i] != shape[i]) return line;
  }
  return line.substr(shape.size());
}

std::optional<Level> pgbackrest_level_word(std::string_view word) {
  static constexpr std::array<std::pair<std::string_view, Level>, 7> kWords{{
      {"ASSERT", Level::critical},
      {"ERROR", Level::err},
      {"WARN", Level::warn},
      {"INFO", Level::info},
      {"DETAIL", Level::debug},  // a line per file: below info, above DEBUG
      {"DEBUG", Level::debug},
      {"TRACE", Level::trace},
  }};
  for (const auto& [name, level] : kWords)
    if (word == name) return level;
  return std::nullopt;
}

// PostgreSQL's severities, each written "WORD:  " (two spaces).
std::optional<Level> postgres_severity(std::string_view word) {
  static constexpr std::array<std::pair<std::string_view, Level>, 7> kWords{{
      {"PANIC", Level::critical},
      {"FATAL", Level::err},
      {"ERROR", Level::err},
      {"WARNING", Level::warn},
      {"NOTICE", Level::info},
      {"INFO", Level::info},
      {"LOG", Level::info},
  }};
  if (starts_with(word, "DEBUG") && word.size() == 6 && digit(word[5])) return Level::debug;
  for (const auto& [name, level] : kWords)
    if (word == name) return level;
  return std::nullopt;
}

bool postgres_continuation(std::string_view word) {
  for (std::string_view name : {"DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION"})
    if (word == name) return true;
  return false;
}

}  // namespace

ChildLine pgbackrest_line(std::string_view line) {
  if (indented(line)) return {std::nullopt, true};
  // stderr: "ERROR: [075]: ...", "WARN: ..."
  for (std::string_view word : {"ASSERT", "ERROR", "WARN"}) {
    if (starts_with(line, word) && starts_with(line.substr(word.size()), ": "))
      return {pgbackrest_level_word(word)};
  }
  // console: "[TIME ]P00   INFO: ...": P, the process number, spaces, the word, a colon.
  std::string_view rest = skip_pgbackrest_time(line);
  if (rest.empty() || rest.front() != 'P') return {};
  std::size_t i = 1;
  while (i < rest.size() && digit(rest[i])) ++i;
  if (i == 1 || i >= rest.size() || rest[i] != ' ') return {};
  while (i < rest.size() && rest[i] == ' ') ++i;
  const std::size_t colon = rest.find(':', i);
  if (colon == std::string_view::npos) return {};
  return {pgbackrest_level_word(rest.substr(i, colon - i))};
}

ChildLine postgres_line(std::string_view line) {
  // Unprefixed, indented lines are those of a program the server runs (pgBackRest's
  // archive-get continuing its error).
  if (indented(line)) return {std::nullopt, true};
  // The severity is the first word of capitals that ends in ":  " and starts the line or
  // follows a space (whatever log_line_prefix puts before it; the agent's server: "[PID] ").
  for (std::size_t colon = line.find(":  "); colon != std::string_view::npos;
       colon = line.find(":  ", colon + 1)) {
    std::size_t start = colon;
    while (start > 0 &&
           (std::isupper(static_cast<unsigned char>(line[start - 1])) != 0 || digit(line[start - 1])))
      --start;
    if (start == colon || (start > 0 && line[start - 1] != ' ')) continue;
    const std::string_view word = line.substr(start, colon - start);
    if (postgres_continuation(word)) return {std::nullopt, true};
    if (auto level = postgres_severity(word)) return {level};
  }
  // A program the server runs: pgBackRest's archive-get.
  return pgbackrest_line(line);
}

ChildLine client_program_line(std::string_view line) {
  // "NAME: WORD: message": NAME without spaces.
  const std::size_t colon = line.find(": ");
  if (colon == std::string_view::npos || colon == 0 ||
      line.substr(0, colon).find(' ') != std::string_view::npos)
    return {};
  const std::string_view rest = line.substr(colon + 2);
  if (starts_with(rest, "error: ")) return {Level::err};
  if (starts_with(rest, "fatal: ")) return {Level::err};
  if (starts_with(rest, "warning: ")) return {Level::warn};
  if (starts_with(rest, "detail: ") || starts_with(rest, "hint: ")) return {std::nullopt, true};
  return {};
}

ChildLine classify_child_line(std::string_view program, std::string_view line) {
  if (program == "pgbackrest") return pgbackrest_line(line);
  if (program == "postgres") return postgres_line(line);
  return client_program_line(line);
}

}  // namespace agent
