#include <unistd.h>

#include "cli/commands.hpp"
#include "core/cancel.hpp"
#include "core/log.hpp"
#include "daemon/control_api.hpp"
#include "daemon/control_protocol.hpp"
#include "pipelines/backup_pipeline.hpp"

namespace agent {

namespace {

// Through the running agent, so the backup joins its queue and never collides with another.
int backup_through_agent(int fd, const BackupOptions& options) {
  auto logger = log::get("backup");
  const BackupCommand command{parse_backup_type(options.type).value_or(BackupType::full), options.wait,
                              options.repo};
  // A failed send may still leave the agent's refusal to read (it answers before it reads all).
  const Status sent = send_json_line(fd, control_request_json(command));
  std::string buffer;
  for (;;) {
    auto reply = read_control_reply(fd, buffer);
    if (!reply) return fail(sent ? reply.error() : sent.error());
    if (!*reply)
      return fail(make_error(ErrorKind::environment,
                             "the agent closed the connection before the backup finished",
                             "see `agent status`; the job may still run"));
    if (const auto* refused = std::get_if<RefusedReply>(&**reply)) return fail(refused->error);
    if (const auto* accepted = std::get_if<BackupAcceptedReply>(&**reply)) {
      if (accepted->admission == "refused")
        return fail(make_error(ErrorKind::environment, "the agent refused the backup: " + accepted->reason,
                               "try again when the queue has room (agent status)"));
      if (accepted->admission == "merged")
        logger->info("answered by job {}: {}", accepted->job_id, accepted->reason);
      else
        logger->info("job {} {}{}", accepted->job_id, accepted->admission,
                     accepted->reason.empty() ? "" : ": " + accepted->reason);
      if (!options.wait) return kExitSuccess;
    } else if (const auto* finished = std::get_if<BackupFinishedReply>(&**reply)) {
      const auto& result = finished->result;
      const int code = result.exit_code;
      log::Fields fields;
      fields.job_type = "backup";
      fields.job_id = std::to_string(result.job_id);
      fields.duration =
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(result.seconds));
      if (code != kExitSuccess) fields.exit_code = code;
      log::write(
          *logger, result.outcome == "failed" ? spdlog::level::err : spdlog::level::info,
          fmt::format("job {} ({}) {} in {:.1f} s{}", result.job_id, repo_name(result.repo), result.outcome,
                      result.seconds, result.message.empty() ? "" : ": " + result.message),
          fields);
      return code;
    } else if (const auto* abandoned = std::get_if<AbandonedReply>(&**reply)) {
      return fail(make_error(ErrorKind::interrupted, "the agent stopped: " + abandoned->reason));
    } else if (!std::holds_alternative<HeartbeatReply>(**reply)) {
      return fail(make_error(
          ErrorKind::external_tool, "the agent answered a backup request with a reply for another command",
          "the running agent and this command must be the same version (restart the container)"));
    }
  }
}

// With no agent running, the backup still works, here and now.
int backup_here(const AgentConfig& config, const BackupOptions& options) {
  log::get("backup")->info("no agent is running on {}; running the backup directly",
                           control_socket_path(config));
  CancelToken cancel;
  cancel_on_termination_signals(cancel);
  SystemClock clock;
  auto runner = make_posix_process_runner();
  auto connector = make_pqxx_connector();
  BackupServices services{*runner, *connector, clock, cancel, /*read_repository_after=*/false};
  const QueuedBackup job{0,
                         BackupRequest{*parse_backup_type(options.type), Trigger::manual,
                                       "agent backup --type " + options.type, clock.now(), options.repo},
                         {}};
  const BackupResult result = run_backup(config, job, services);
  const int code = backup_exit_code(result);
  // run_backup logged why (with the hint); this record only ends the command.
  if (result.outcome != BackupOutcome::succeeded) {
    log::Fields exit;
    exit.exit_code = code;
    log::write(*log::get("backup"),
               result.outcome == BackupOutcome::skipped ? spdlog::level::warn : spdlog::level::err,
               std::string("the backup ") + backup_outcome_name(result.outcome), exit);
  }
  return code;
}

}  // namespace

int command_backup(const BackupOptions& options) {
  int exit_code = 0;
  std::vector<ConfigOverride> overrides;
  if (options.log_format) overrides.push_back({"log.format", *options.log_format, "--log-format"});
  const auto config = load_command_config(options.config_path, overrides, exit_code);
  if (!config) return exit_code;
  auto connected = connect_control_socket(control_socket_path(*config));
  // An agent that is there but cannot be used (stuck, another user's) must not be raced by a
  // backup of our own: that would collide with whatever it runs.
  if (!connected) return fail(connected.error());
  if (!*connected) return backup_here(*config, options);
  const int code = backup_through_agent(**connected, options);
  close(**connected);
  return code;
}

}  // namespace agent
