#pragma once
// What pg_dump is asked for, beside the target: which objects (pg_dump's own patterns), in
// which format, compressed how, and whether the cluster's roles come with it. Parsed and checked
// here, before anything is written; pipelines/README.md ("Selection, formats, compression").
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace agent {

enum class DumpFormat { plain, custom, directory };

// pg_dump's object selection. Patterns are pg_dump's (schema.table, `*` and `?`, double quotes
// for case), each passed as one argv element `--table=PATTERN`.
struct DumpSelection {
  std::vector<std::string> tables;
  std::vector<std::string> exclude_tables;
  std::vector<std::string> schemas;
  std::vector<std::string> exclude_schemas;
  bool data_only = false;
  bool schema_only = false;

  bool empty() const {
    return tables.empty() && exclude_tables.empty() && schemas.empty() && exclude_schemas.empty() &&
           !data_only && !schema_only;
  }
  // Only some objects are included (--table, --schema) or no schema is written (--data-only):
  // the output goes into an existing database, so it has no CREATE DATABASE and \connect.
  bool into_existing_database() const { return !tables.empty() || !schemas.empty() || data_only; }
};

// none; zstd (the agent compresses a plain stream, level 1..19); gzip (pg_dump's own -Z, for
// custom and directory, level 0..9); pg_default (custom and directory: pg_dump's default).
struct DumpCompression {
  enum class Kind { none, zstd, gzip, pg_default } kind = Kind::none;
  int level = 0;
  std::string describe() const;  // "none", "zstd:3", "gzip:6", "pg_dump default (gzip)"
};

struct DumpShape {
  DumpFormat format = DumpFormat::plain;
  int jobs = 1;  // pg_dump --jobs, directory format only
  DumpCompression compression;
  DumpSelection selection;
  bool globals = false;  // pg_dumpall --globals-only --no-role-passwords of the copy
};

std::optional<DumpFormat> parse_dump_format(const std::string& text);
const char* dump_format_name(DumpFormat format);
// "auto" (none for plain, pg_dump's default for custom and directory), "none", "zstd",
// "zstd:N", "gzip", "gzip:N": what fits `format`, or a usage error saying what would.
Result<DumpCompression> parse_dump_compression(const std::string& text, DumpFormat format);
// A pattern that is empty, starts with '-' or holds a control character (a line break
// included) is refused: pg_dump would take none of them as meant; so is one that is not UTF-8,
// which the manifest (JSON) could not record. `option`: "--table", ...
Status check_dump_pattern(const std::string& option, const std::string& pattern);
// Whether `text` is UTF-8 as JSON needs it (no overlong form, surrogate or code point past
// U+10FFFF): what the manifest records of the command line must be.
bool is_utf8(std::string_view text);
// The combination: --data-only with --schema-only, --jobs without the directory format,
// the directory format or --globals with --output -, and every pattern.
Status check_dump_shape(const DumpShape& shape, bool to_stdout);

// The manifest's record of the shape.
nlohmann::json dump_shape_json(const DumpShape& shape);

}  // namespace agent
