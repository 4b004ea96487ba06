#include "jobs/annotations.hpp"

#include <cstdint>

namespace agent {

namespace {

Error bad(std::string message) {
  return make_error(ErrorKind::usage, std::move(message));
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Reads `digits` hex digits at text[pos...]; the value, or -1 when they are not all there.
std::int64_t read_hex(std::string_view text, std::size_t pos, std::size_t digits) {
  if (pos + digits > text.size()) return -1;
  std::int64_t value = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    const int d = hex_digit(text[pos + i]);
    if (d < 0) return -1;
    value = value * 16 + d;
  }
  return value;
}

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '.' ||
         c == '-' || c == '_';
}

// A key in a message: the longest real one (a 253-character prefix, '/', 63 characters) in full,
// anything longer cut short.
std::string named(std::string_view key) {
  constexpr std::size_t kLongest = 317;
  return key.size() <= kLongest ? std::string(key) : std::string(key.substr(0, kLongest)) + "...";
}

}  // namespace

Result<std::string> unquote_go_string(std::string_view quoted) {
  const std::string_view text = quoted;
  if (text.empty() || text.front() != '"') return bad("value does not start with a double quote");
  std::string out;
  std::size_t i = 1;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {
      if (i + 1 != text.size()) return bad("unexpected characters after the closing double quote");
      return out;
    }
    if (c == '\n') return bad("raw newline inside a quoted value");
    if (c != '\\') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 >= text.size()) break;
    const char e = text[i + 1];
    i += 2;
    switch (e) {
      case 'a':
        out += '\a';
        continue;
      case 'b':
        out += '\b';
        continue;
      case 'f':
        out += '\f';
        continue;
      case 'n':
        out += '\n';
        continue;
      case 'r':
        out += '\r';
        continue;
      case 't':
        out += '\t';
        continue;
      case 'v':
        out += '\v';
        continue;
      case '\\':
        out += '\\';
        continue;
      case '"':
        out += '"';
        continue;
      case 'x': {
        const auto v = read_hex(text, i, 2);
        if (v < 0) return bad("escape \\x needs two hex digits");
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
      case 'u':
      case 'U': {
        const std::size_t digits = e == 'u' ? 4 : 8;
        const auto v = read_hex(text, i, digits);
        if (v < 0)
          return bad(std::string("escape \\") + e + " needs " + std::to_string(digits) + " hex digits");
        // Go refuses surrogate halves and values past the last code point, so do we.
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
          return bad("escape is not a valid unicode code point");
        append_utf8(out, static_cast<std::uint32_t>(v));
        i += digits;
        continue;
      }
      default:
        if (e >= '0' && e <= '7') {
          // Octal: exactly three digits, at most \377.
          if (i + 2 > text.size()) return bad("octal escape needs three digits");
          int v = e - '0';
          for (std::size_t k = 0; k < 2; ++k) {
            const char d = text[i + k];
            if (d < '0' || d > '7') return bad("octal escape needs three digits");
            v = v * 8 + (d - '0');
          }
          if (v > 255) return bad("octal escape is larger than \\377");
          out += static_cast<char>(v);
          i += 2;
          continue;
        }
        return bad(std::string("invalid escape \\") + e);
    }
  }
  return bad("missing closing double quote");
}

AnnotationFile parse_annotations(std::string_view text) {
  AnnotationFile file;
  const auto skip = [&file](std::string problem) {
    ++file.skipped;
    if (file.problems.size() < AnnotationFile::kMaxProblems) file.problems.push_back(std::move(problem));
  };
  std::size_t line_number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;

    const std::string where = "line " + std::to_string(line_number) + ": ";
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      skip(where + "no '=' between key and value");
      continue;
    }
    const std::string_view key = line.substr(0, eq);
    if (key.empty()) {
      skip(where + "empty key");
      continue;
    }
    bool key_ok = true;
    for (char c : key) key_ok = key_ok && is_key_char(c);
    if (!key_ok) {
      skip(where + "key has characters an annotation key cannot have");
      continue;
    }
    auto value = unquote_go_string(line.substr(eq + 1));
    if (!value) {
      skip(where + named(key) + ": " + value.error().message);
      continue;
    }
    if (!file.values.emplace(std::string(key), std::move(*value)).second)
      skip(where + named(key) + ": duplicate key, the first one is kept");
  }
  return file;
}

}  // namespace agent
