#include "pipelines/dump_job.hpp"

#include "exec/commands.hpp"
#include "exec/no_sync.hpp"

namespace agent {

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
  if (job.database.size() > 63)
    return make_error(ErrorKind::usage, "database name '" + job.database + "' is too long",
                      "PostgreSQL names have at most 63 bytes");
  return job;
}

}  // namespace agent
