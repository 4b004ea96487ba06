#include "pipelines/dump_format.hpp"

#include <charconv>

namespace agent {
namespace {

Error usage(const std::string& message, const std::string& hint) {
  return make_error(ErrorKind::usage, message, hint);
}

// "zstd:12" -> 12 within [low, high]; "zstd" -> fallback.
std::optional<int> level_after_colon(const std::string& text, std::size_t name_size, int fallback, int low,
                                     int high) {
  if (text.size() == name_size) return fallback;
  if (text[name_size] != ':' || text.size() == name_size + 1) return std::nullopt;
  int level = 0;
  const char* first = text.data() + name_size + 1;
  const char* last = text.data() + text.size();
  const auto [end, error] = std::from_chars(first, last, level);
  if (error != std::errc() || end != last || level < low || level > high) return std::nullopt;
  return level;
}

std::string shown(const std::string& text) {
  std::string out;
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    if (byte < 0x20 || byte == 0x7f) {
      static const char digits[] = "0123456789abcdef";
      out += "\\x";
      out += digits[byte >> 4];
      out += digits[byte & 0xf];
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace

std::string DumpCompression::describe() const {
  switch (kind) {
    case Kind::none:
      return "none";
    case Kind::zstd:
      return "zstd:" + std::to_string(level);
    case Kind::gzip:
      return "gzip:" + std::to_string(level);
    case Kind::pg_default:
      return "pg_dump default (gzip)";
  }
  return "none";
}

std::optional<DumpFormat> parse_dump_format(const std::string& text) {
  if (text == "plain") return DumpFormat::plain;
  if (text == "custom") return DumpFormat::custom;
  if (text == "directory") return DumpFormat::directory;
  return std::nullopt;
}

const char* dump_format_name(DumpFormat format) {
  switch (format) {
    case DumpFormat::plain:
      return "plain";
    case DumpFormat::custom:
      return "custom";
    case DumpFormat::directory:
      return "directory";
  }
  return "plain";
}

Result<DumpCompression> parse_dump_compression(const std::string& text, DumpFormat format) {
  const bool plain = format == DumpFormat::plain;
  DumpCompression c;
  if (text == "auto") {
    c.kind = plain ? DumpCompression::Kind::none : DumpCompression::Kind::pg_default;
    return c;
  }
  if (text == "none") return c;
  if (text.rfind("zstd", 0) == 0) {
    const auto level = level_after_colon(text, 4, 3, 1, 19);
    if (!level)
      return usage("compression '" + shown(text) + "' has no valid zstd level",
                   "use zstd (level 3) or zstd:N with N from 1 to 19");
    if (!plain)
      return usage(std::string("zstd compression is for the plain format; pg_dump 15 compresses the ") +
                       dump_format_name(format) + " format with gzip only",
                   std::string("use --compress gzip[:N] (or auto, pg_dump's default) with --format ") +
                       dump_format_name(format) + ", or --format plain --compress zstd");
    c.kind = DumpCompression::Kind::zstd;
    c.level = *level;
    return c;
  }
  if (text.rfind("gzip", 0) == 0) {
    const auto level = level_after_colon(text, 4, 6, 0, 9);
    if (!level)
      return usage("compression '" + shown(text) + "' has no valid gzip level",
                   "use gzip (level 6) or gzip:N with N from 0 to 9");
    if (plain)
      return usage("gzip compression is for the custom and directory formats (pg_dump's own)",
                   "use --compress zstd[:N] for the plain format, or --format custom|directory");
    c.kind = DumpCompression::Kind::gzip;
    c.level = *level;
    return c;
  }
  return usage("unknown compression '" + shown(text) + "'",
               "use auto, none, zstd[:1..19] (plain) or gzip[:0..9] (custom, directory)");
}

Status check_dump_pattern(const std::string& option, const std::string& pattern) {
  const std::string hint =
      "give " + option +
      " one pg_dump pattern per option, e.g. public.marks, 'public.*' or '\"Odd Name\"'; names with "
      "a line break or another control character cannot be selected";
  if (pattern.empty()) return usage(option + " was given an empty pattern", hint);
  if (pattern.front() == '-')
    return usage(option + " pattern '" + shown(pattern) + "' starts with '-'",
                 hint + " (a name starting with '-' must be double-quoted: '\"-name\"')");
  for (const char ch : pattern) {
    const auto byte = static_cast<unsigned char>(ch);
    if (byte < 0x20 || byte == 0x7f)
      return usage(option + " pattern '" + shown(pattern) + "' contains a control character", hint);
  }
  if (!is_utf8(pattern))
    return usage(option + " pattern '" + shown(pattern) + "' is not UTF-8 text",
                 "write the pattern in UTF-8, as the database's names are (the manifest records it as JSON)");
  return {};
}

bool is_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    char32_t code = 0;
    if (lead < 0x80) {
      ++i;
      continue;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
      code = lead & 0x1f;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      code = lead & 0x0f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      code = lead & 0x07;
    } else {
      return false;  // a continuation byte first, an overlong two-byte lead, or past U+10FFFF
    }
    if (text.size() - i < length) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      code = (code << 6) | (next & 0x3f);
    }
    const char32_t smallest = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
    if (code < smallest || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
    i += length;
  }
  return true;
}

Status check_dump_shape(const DumpShape& shape, bool to_stdout) {
  const auto& s = shape.selection;
  for (const auto& [option, patterns] :
       {std::pair{"--table", &s.tables}, std::pair{"--exclude-table", &s.exclude_tables},
        std::pair{"--schema", &s.schemas}, std::pair{"--exclude-schema", &s.exclude_schemas}})
    for (const auto& pattern : *patterns)
      if (auto st = check_dump_pattern(option, pattern); !st) return st;
  if (s.data_only && s.schema_only)
    return usage("--data-only and --schema-only exclude each other", "choose one of them, or neither");
  if (shape.jobs < 1 || shape.jobs > 32)
    return usage("--jobs " + std::to_string(shape.jobs) + " is outside 1..32",
                 "the copy takes --jobs + 1 connections");
  if (shape.jobs > 1 && shape.format != DumpFormat::directory)
    return usage("--jobs is for --format directory (pg_dump writes several files at once only there)",
                 "add --format directory, or drop --jobs");
  if (to_stdout && shape.format == DumpFormat::directory)
    return usage("--format directory writes a directory, not standard output",
                 "give --output a path, or use --format plain or custom with --output -");
  if (to_stdout && shape.globals && shape.format != DumpFormat::plain)
    return usage("--globals with --output - is for the plain format (the roles come first in the stream)",
                 "write the dump to a file (the roles go to OUTPUT.globals.sql), or use --format plain");
  return {};
}

nlohmann::json dump_shape_json(const DumpShape& shape) {
  const auto& s = shape.selection;
  return {
      {"format", dump_format_name(shape.format)},
      {"jobs", shape.jobs},
      {"compression", shape.compression.describe()},
      {"selection",
       {{"tables", s.tables},
        {"exclude_tables", s.exclude_tables},
        {"schemas", s.schemas},
        {"exclude_schemas", s.exclude_schemas},
        {"data_only", s.data_only},
        {"schema_only", s.schema_only}}},
  };
}

}  // namespace agent
