#include <filesystem>

#include "cli/commands.hpp"
#include "core/cancel.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "exec/process.hpp"
#include "pg/copy_session.hpp"
#include "pg/session.hpp"
#include "pipelines/drill_annotation.hpp"
#include "pipelines/drill_pipeline.hpp"

namespace agent {

int command_drill(const DrillOptions& options) {
  std::vector<ConfigOverride> overrides;
  if (options.log_format) overrides.push_back({"log.format", *options.log_format, "--log-format"});
  int exit_code = 0;
  const auto config = load_command_config(options.config_path, overrides, exit_code);
  if (!config) return exit_code;

  DrillArguments arguments = options.arguments;
  if (arguments.scratch)
    arguments.scratch = std::filesystem::absolute(*arguments.scratch).lexically_normal().string();
  SystemClock clock;
  auto job = build_drill_job(*config, arguments, std::chrono::floor<Microseconds>(clock.now()));
  if (!job) return fail(job.error());

  CancelToken cancel;
  cancel_on_termination_signals(cancel);
  auto runner = make_posix_process_runner();
  auto connector = make_pqxx_connector();
  auto copier = make_libpq_copy_connector();
  DumpServices services{*runner, *connector, *copier, clock, cancel};
  const auto report = run_drill(*job, services);
  // Its result onto the set, at once (no queue here): a backup holding the stanza's lock only
  // costs the annotation, never the drill's exit code.
  if (auto annotation = drill_annotation(*config, report); annotation && !cancel.cancelled()) {
    if (auto s = annotate_backup_set(*runner, *annotation, config->pgbackrest.timeout_seconds, cancel); !s)
      log::error(*log::get("drill"), s.error(),
                 "drill " + report.id + ": its result was not recorded on backup set " + annotation->label,
                 spdlog::level::warn);
    else
      log::get("drill")->info(
          "drill {}: its result is recorded on backup set {} in repo{} (pgbackrest annotate)", report.id,
          annotation->label, annotation->target.repo);
  }
  if (report.error) return fail(*report.error);
  return drill_exit_code(report);
}

}  // namespace agent
