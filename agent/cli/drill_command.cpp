#include <filesystem>

#include "cli/commands.hpp"
#include "core/cancel.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "exec/process.hpp"
#include "pg/copy_session.hpp"
#include "pg/session.hpp"
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
  if (report.error) return fail(*report.error);
  return drill_exit_code(report);
}

}  // namespace agent
