// Fuzz target: `agent dump`'s options as the command line gives them (any bytes, unlike the
// control socket's JSON strings), through build_dump_job: the target, --format, --compress,
// --jobs, the selection patterns, --output. Input: one option a line, "NAME VALUE" or a flag
// (e.g. "compress zstd:19", "exclude-table x", "data-only"). Properties of an accepted job,
// which the pipeline relies on without checking again:
//  - --jobs in 1..32 and above 1 only for the directory format, which never goes to standard
//    output; zstd (levels 1..19) only for plain, gzip (0..9) and pg_dump's default never for it;
//  - no selection pattern is empty, starts with '-' or holds a control character, and
//    --data-only and --schema-only are not both given;
//  - the recovery target's value never starts with '-';
//  - the copy is kept (--keep-running) only when asked, for 10 s to dump.keep_running_max_seconds,
//    and never with the dump on standard output;
//  - what the manifest records of the options (dump_shape_json, the output path) is JSON that
//    serializes: the manifest is written after the dump is published.
// A refusal is a usage error with a message.
#include <nlohmann/json.hpp>

#include <charconv>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "fuzz_config.hpp"
#include "pipelines/dump_job.hpp"

namespace {

std::optional<int> number(std::string_view text) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

agent::DumpArguments arguments_from(std::string_view text) {
  agent::DumpArguments a;
  a.target = "2024-11-04 09:40:00-08:00";
  while (!text.empty()) {
    const auto end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    const auto space = line.find(' ');
    const std::string_view name = line.substr(0, space);
    const std::string value(space == std::string_view::npos ? std::string_view{} : line.substr(space + 1));
    if (name == "target")
      a.target = value;
    else if (name == "database")
      a.database = value;
    else if (name == "output")
      a.output = value;
    else if (name == "set")
      a.backup_set = value;
    else if (name == "repo")
      a.repo = number(value);
    else if (name == "port")
      a.port = number(value);
    else if (name == "format")
      a.format = value;
    else if (name == "compress")
      a.compress = value;
    else if (name == "jobs")
      a.jobs = number(value);
    else if (name == "table")
      a.tables.push_back(value);
    else if (name == "exclude-table")
      a.exclude_tables.push_back(value);
    else if (name == "schema")
      a.schemas.push_back(value);
    else if (name == "exclude-schema")
      a.exclude_schemas.push_back(value);
    else if (name == "data-only")
      a.data_only = true;
    else if (name == "schema-only")
      a.schema_only = true;
    else if (name == "globals")
      a.globals = true;
    else if (name == "overwrite")
      a.overwrite = true;
    else if (name == "keep-running")
      a.keep_running = true;
    else if (name == "keep-for")
      a.keep_for = value;
  }
  return a;
}

void check_pattern(const std::string& pattern) {
  agent::fuzz::check(!pattern.empty() && pattern.front() != '-',
                     "an empty pattern or one that reads as an option", pattern);
  for (const char ch : pattern) {
    const auto byte = static_cast<unsigned char>(ch);
    agent::fuzz::check(byte >= 0x20 && byte != 0x7f, "a pattern with a control character", pattern);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto arguments = arguments_from(agent::fuzz::as_text(data, size));
  const auto job = agent::build_dump_job(agent::fuzz::default_config(), arguments);
  if (!job) {
    agent::fuzz::check(job.error().kind == agent::ErrorKind::usage, "a refusal that is not a usage error",
                       job.error().message);
    agent::fuzz::check(!job.error().message.empty(), "a refusal without a message");
    return 0;
  }
  const auto& shape = job->shape;
  using Kind = agent::DumpCompression::Kind;
  const bool plain = shape.format == agent::DumpFormat::plain;
  agent::fuzz::check(shape.jobs >= 1 && shape.jobs <= 32, "--jobs outside 1..32 accepted");
  agent::fuzz::check(shape.jobs == 1 || shape.format == agent::DumpFormat::directory,
                     "--jobs above 1 accepted for a format pg_dump writes in one stream");
  agent::fuzz::check(!job->to_stdout() || shape.format != agent::DumpFormat::directory,
                     "a directory dump to standard output accepted");
  switch (shape.compression.kind) {
    case Kind::zstd:
      agent::fuzz::check(plain && shape.compression.level >= 1 && shape.compression.level <= 19,
                         "zstd accepted for another format or level", shape.compression.describe());
      break;
    case Kind::gzip:
      agent::fuzz::check(!plain && shape.compression.level >= 0 && shape.compression.level <= 9,
                         "gzip accepted for plain or another level", shape.compression.describe());
      break;
    case Kind::pg_default:
      agent::fuzz::check(!plain, "pg_dump's default compression accepted for plain");
      break;
    case Kind::none:
      break;
  }
  const auto& s = shape.selection;
  for (const auto* patterns : {&s.tables, &s.exclude_tables, &s.schemas, &s.exclude_schemas})
    for (const auto& pattern : *patterns) check_pattern(pattern);
  agent::fuzz::check(!(s.data_only && s.schema_only), "--data-only with --schema-only accepted");
  agent::fuzz::check(job->recovery.value.empty() || job->recovery.value.front() != '-',
                     "a target value that reads as an option", job->recovery.value);
  const auto kept = job->keep_running.count();
  if (kept != 0)
    agent::fuzz::check(
        arguments.keep_running && !job->to_stdout() && kept >= 10 &&
            kept <= agent::fuzz::default_config().dump.keep_running_max_seconds,
        "a copy kept unasked, with standard output, or outside 10 s..dump.keep_running_max_seconds",
        std::to_string(kept));
  nlohmann::json recorded = agent::dump_shape_json(shape);
  recorded["path"] = job->output;
  try {
    (void)recorded.dump(2);  // as the manifest is written
  } catch (const nlohmann::json::exception& e) {
    agent::fuzz::fail("what the manifest records of an accepted dump is not JSON", e.what());
  }
  return 0;
}
