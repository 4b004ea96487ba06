#include "cli/commands.hpp"
#include "core/cancel.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "daemon/control_api.hpp"
#include "daemon/control_protocol.hpp"
#include "exec/process.hpp"
#include "pg/copy_session.hpp"
#include "pg/session.hpp"
#include "pipelines/drill_annotation.hpp"
#include "pipelines/drill_pipeline.hpp"

namespace agent {

namespace {

// Through the running agent: the drill waits in its queue (behind backups, never beside a
// dump), its result goes into the agent's status and metrics, and it goes on if this client
// goes away.
int drill_through_agent(int fd, const DrillArguments& arguments) {
  auto logger = log::get("drill");
  if (auto s = send_json_line(fd, control_request_json(DrillCommand{arguments})); !s) return fail(s.error());
  log::Fields job;  // the running agent's job: its steps' records carry its id
  job.job_type = "drill";
  return follow_agent_job(fd, "drill", job, [&](const ControlReplyMessage& reply) -> std::optional<int> {
    if (const auto* accepted = std::get_if<DrillAcceptedReply>(&reply)) {
      job.job_id = std::to_string(accepted->job_id);
      log::write(*logger, spdlog::level::info,
                 fmt::format("the running agent queued the drill (job {}){}", accepted->job_id,
                             accepted->reason.empty() ? "" : "; " + accepted->reason),
                 job);
      return std::nullopt;
    }
    const auto* finished = std::get_if<DrillFinishedReply>(&reply);
    if (!finished) return answered_for_another_command("a drill request");
    if (const auto* error = std::get_if<ReplyError>(&finished->outcome)) return fail(*error);
    const auto& d = std::get<DrillSummary>(finished->outcome);
    if (d.result == "passed")
      log::write(
          *logger, spdlog::level::info,
          fmt::format("drill {} passed: {} objects checked in backup set {} (repo{}), replay gap {:.3f} s, "
                      "{:.2f} s in all; manifest {}",
                      d.id, d.objects_checked, d.backup_set, d.repo, d.gap_seconds, d.total_seconds,
                      d.manifest),
          job);
    else
      log::write(*logger, spdlog::level::err,
                 fmt::format("drill {} FAILED: {} of {} objects failed in backup set {} (repo{}); first: {}; "
                             "manifest {}",
                             d.id, d.objects_failed, d.objects_checked, d.backup_set, d.repo, d.first_failure,
                             d.manifest),
                 job);
    return d.exit_code;
  });
}

int drill_here(const AgentConfig& config, const DrillJob& job) {
  SystemClock clock;
  CancelToken cancel;
  cancel_on_termination_signals(cancel);
  auto runner = make_posix_process_runner();
  auto connector = make_pqxx_connector();
  auto copier = make_libpq_copy_connector();
  DumpServices services{*runner, *connector, *copier, clock, cancel};
  const auto report = run_drill(job, services);
  // Its result onto the set, at once (no queue here): a backup holding the stanza's lock only
  // costs the annotation, never the drill's exit code.
  if (auto annotation = drill_annotation(config, report); annotation && !cancel.cancelled())
    log_annotation_outcome(
        *annotation, annotate_backup_set(*runner, *annotation, config.pgbackrest.timeout_seconds, cancel));
  if (auto note = narrowed_drill_note(config, report)) log::get("drill")->info("{}", *note);
  if (report.error) return fail(*report.error);
  return drill_exit_code(report);
}

}  // namespace

int command_drill(const DrillOptions& options) {
  std::vector<ConfigOverride> overrides;
  if (options.log_format) overrides.push_back({"log.format", *options.log_format, "--log-format"});
  int exit_code = 0;
  const auto config = load_command_config(options.config_path, overrides, exit_code);
  if (!config) return exit_code;

  DrillArguments arguments = options.arguments;
  arguments.scratch = absolute_path(arguments.scratch);
  // Bad input is refused here, before anything is asked of anyone.
  SystemClock clock;
  auto job = build_drill_job(*config, arguments, std::chrono::floor<Microseconds>(clock.now()));
  if (!job) return fail(job.error());

  if (auto code =
          with_running_agent(*config, "drill", [&](int fd) { return drill_through_agent(fd, arguments); }))
    return *code;
  return drill_here(*config, *job);
}

}  // namespace agent
