#include "pipelines/dump_job.hpp"

#include <algorithm>

#include "exec/commands.hpp"
#include "exec/no_sync.hpp"

namespace agent {

Result<std::chrono::seconds> parse_keep_duration(const std::string& text) {
  const auto refuse = [&text] {
    return make_error(ErrorKind::usage, "--keep-for '" + text + "' is not a duration",
                      "give a whole number with a unit: 90s, 30m, 2h or 1d");
  };
  if (text.size() < 2 || text.size() > 12) return refuse();
  long long count = 0;
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return refuse();
    count = count * 10 + (text[i] - '0');
  }
  switch (text.back()) {
    case 's':
      return std::chrono::seconds(count);
    case 'm':
      return std::chrono::seconds(count * 60);
    case 'h':
      return std::chrono::seconds(count * 3600);
    case 'd':
      return std::chrono::seconds(count * 86400);
    default:
      return refuse();
  }
}

Result<DumpJob> build_dump_job(const AgentConfig& config, const DumpArguments& arguments) {
  auto other = parse_recovery_target(arguments.target);
  if (!other) return other.error();
  // Not a time: the window ends now; `latest` is restored as a time target of this instant.
  auto target =
      *other ? Result<TargetTime>(TargetTime{
                   std::chrono::floor<Microseconds>(std::chrono::system_clock::now()), arguments.target})
             : parse_target_time(arguments.target);
  if (!target) return target.error();
  if (arguments.backup_set && !is_backup_label(*arguments.backup_set))
    return make_error(ErrorKind::usage, "'" + *arguments.backup_set + "' is not a backup set label",
                      "use a label from `pgbackrest info`, e.g. 20241104-020000F or "
                      "20241104-020000F_20241104-091500I");
  if (arguments.repo && (*arguments.repo < 1 || *arguments.repo > 256))
    return make_error(ErrorKind::usage,
                      "repository " + std::to_string(*arguments.repo) + " is outside 1..256",
                      "pgBackRest numbers its repositories repo1 to repo256; `pgbackrest info` lists the "
                      "stanza's");
  if (arguments.port && (*arguments.port < 1 || *arguments.port > 65535))
    return make_error(ErrorKind::usage, "port " + std::to_string(*arguments.port) + " is outside 1..65535");
  for (const auto* text : {&arguments.database, &arguments.output, &arguments.scratch})
    if (*text && text->value().empty())
      return make_error(ErrorKind::usage, "an empty value was given for --database, --output or --scratch");

  DumpJob job;
  job.config = config;
  job.target = *target;
  if (*other) job.recovery = **other;
  job.database = arguments.database.value_or(config.dump.database);
  job.output = arguments.output.value_or(config.dump.output);
  // The manifest records the path as JSON text, and is written after the dump is published.
  if (!is_utf8(job.output))
    return make_error(ErrorKind::usage, "the dump's path (--output or dump.output) is not UTF-8 text",
                      "give the dump a path in UTF-8 (the manifest records it as JSON); nothing was written");
  job.scratch = arguments.scratch.value_or(config.restore.scratch);
  job.port = arguments.port.value_or(config.restore.port);
  job.backup_set = arguments.backup_set;
  job.repo = arguments.repo.value_or(config.pgbackrest.repo);
  job.overwrite = arguments.overwrite;
  if (!config.restore.fsync) job.no_sync_library = find_no_sync_library().value_or("");
  const std::string format_text = arguments.format.value_or(config.dump.format);
  const auto format = parse_dump_format(format_text);
  if (!format)
    return make_error(ErrorKind::usage, "unknown dump format '" + format_text + "'",
                      "use --format plain, custom or directory");
  job.shape.format = *format;
  auto compression = parse_dump_compression(arguments.compress.value_or(config.dump.compress), *format);
  if (!compression) return compression.error();
  job.shape.compression = *compression;
  job.shape.jobs = arguments.jobs.value_or(*format == DumpFormat::directory ? config.dump.jobs : 1);
  job.shape.globals = arguments.globals;
  auto& selection = job.shape.selection;
  selection.tables = arguments.tables;
  selection.exclude_tables = arguments.exclude_tables;
  selection.schemas = arguments.schemas;
  selection.exclude_schemas = arguments.exclude_schemas;
  selection.data_only = arguments.data_only;
  selection.schema_only = arguments.schema_only;
  if (auto s = check_dump_shape(job.shape, job.to_stdout()); !s) return s.error();
  if (arguments.keep_for && !arguments.keep_running)
    return make_error(ErrorKind::usage, "--keep-for is given without --keep-running",
                      "add --keep-running to keep the copy up after the dump, or leave out --keep-for");
  if (arguments.keep_running) {
    if (job.to_stdout())
      return make_error(ErrorKind::usage, "--keep-running needs a dump file, not standard output",
                        "give --output a file; the copy is kept after the dump is written there");
    std::chrono::seconds keep = kDefaultKeepRunning;
    if (arguments.keep_for) {
      auto parsed = parse_keep_duration(*arguments.keep_for);
      if (!parsed) return parsed.error();
      keep = *parsed;
    }
    const std::chrono::seconds most{config.dump.keep_running_max_seconds};
    if (!arguments.keep_for) keep = std::min(keep, most);
    if (keep < std::chrono::seconds(10) || keep > most)
      return make_error(ErrorKind::usage,
                        "--keep-for " + arguments.keep_for.value_or("") + " is outside 10 seconds to " +
                            std::to_string(most.count()) + " seconds (dump.keep_running_max_seconds)",
                        "choose a shorter time (e.g. 1h), or raise dump.keep_running_max_seconds");
    job.keep_running = keep;
  }
  if (job.database.size() > 63)
    return make_error(ErrorKind::usage, "database name '" + job.database + "' is too long",
                      "PostgreSQL names have at most 63 bytes");
  return job;
}

}  // namespace agent
