#include "cli/commands.hpp"
#include "config/config.hpp"
#include "core/cancel.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "exec/commands.hpp"
#include "exec/process.hpp"
#include "pg/session.hpp"
#include "pipelines/dump_pipeline.hpp"

namespace agent {

int command_dump(const DumpOptions& options) {
  std::vector<ConfigOverride> overrides;
  if (options.database) overrides.push_back({"dump.database", *options.database, "--database"});
  if (options.output) overrides.push_back({"dump.output", *options.output, "--output"});
  if (options.scratch) overrides.push_back({"restore.scratch", *options.scratch, "--scratch"});
  if (options.port) overrides.push_back({"restore.port", std::to_string(*options.port), "--port"});
  if (options.log_format) overrides.push_back({"log.format", *options.log_format, "--log-format"});
  int exit_code = 0;
  const auto loaded = load_command_config(options.config_path, overrides, exit_code);
  if (!loaded) return exit_code;
  const AgentConfig& config = *loaded;

  auto target = parse_target_time(options.target);
  if (!target) return fail(target.error());
  if (options.backup_set && !is_backup_label(*options.backup_set))
    return fail(make_error(ErrorKind::usage, "'" + *options.backup_set + "' is not a backup set label",
                           "use a label from `pgbackrest info`, e.g. 20241104-020000F or "
                           "20241104-020000F_20241104-091500I"));
  if (config.dump.database.size() > 63)
    return fail(make_error(ErrorKind::usage, "database name '" + config.dump.database + "' is too long",
                           "PostgreSQL names have at most 63 bytes"));

  DumpJob job;
  job.config = config;
  job.target = *target;
  job.database = config.dump.database;
  job.output = config.dump.output;
  job.scratch = config.restore.scratch;
  job.port = config.restore.port;
  job.backup_set = options.backup_set;
  job.overwrite = options.overwrite;

  CancelToken cancel;
  cancel_on_termination_signals(cancel);
  SystemClock clock;
  auto runner = make_posix_process_runner();
  auto connector = make_pqxx_connector();
  DumpServices services{*runner, *connector, clock, cancel};

  auto summary = run_dump(job, services);
  if (!summary) return fail(summary.error());
  auto logger = log::get("dump");
  if (summary->output == "-")
    logger->info("dump written to standard output: {} bytes, sha256 {}", summary->bytes, summary->sha256);
  else
    logger->info("dump written: {} ({} bytes, sha256 {}), manifest {}", summary->output, summary->bytes,
                 summary->sha256, summary->manifest_path);
  return kExitSuccess;
}

}  // namespace agent
