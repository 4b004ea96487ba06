#include <unistd.h>

#include "cli/commands.hpp"
#include "core/cancel.hpp"
#include "core/log.hpp"
#include "daemon/control_api.hpp"
#include "daemon/control_protocol.hpp"
#include "pipelines/backup_pipeline.hpp"

namespace agent {

namespace {

int exit_code_for_outcome(const std::string& outcome) {
  if (outcome == "succeeded") return kExitSuccess;
  if (outcome == "skipped") return exit_code_for(ErrorKind::environment);  // a standby, an unreachable server
  return exit_code_for(ErrorKind::external_tool);
}

// Through the running agent, so the backup joins its queue and never collides with another.
int backup_through_agent(int fd, const BackupOptions& options) {
  auto logger = log::get("backup");
  const BackupCommand command{parse_backup_type(options.type).value_or(BackupType::full), options.wait};
  // A failed send may still leave the agent's refusal to read (it answers before it reads all).
  const Status sent = send_json_line(fd, control_request_json(command));
  std::string buffer;
  for (;;) {
    auto line = read_json_line(fd, buffer);
    if (!line) return fail(sent ? line.error() : sent.error());
    if (!*line)
      return fail(make_error(ErrorKind::environment,
                             "the agent closed the connection before the backup finished",
                             "see `agent status`; the job may still run"));
    const auto& message = **line;
    const std::string event = message.value("event", "");
    if (!message.value("ok", true)) {
      logger->error("the agent refused: {}", message.value("error", "no reason given"));
      if (!message.value("hint", "").empty()) logger->error("HINT: {}", message.value("hint", ""));
      const int code = message.value("exit_code", exit_code_for(ErrorKind::usage));
      logger->error("exit code {}", code);
      return code;
    }
    if (event == "accepted") {
      const std::string admission = message.value("admission", "");
      const auto job = message.value("job_id", std::uint64_t{0});
      if (admission == "refused")
        return fail(make_error(ErrorKind::environment,
                               "the agent refused the backup: " + message.value("reason", ""),
                               "try again when the queue has room (agent status)"));
      if (admission == "merged")
        logger->info("answered by job {}: {}", job, message.value("reason", ""));
      else
        logger->info("job {} {}{}", job, admission,
                     message.value("reason", "").empty() ? "" : ": " + message.value("reason", ""));
      if (!options.wait) return kExitSuccess;
    } else if (event == "finished") {
      const auto result = message.value("result", nlohmann::json::object());
      const std::string outcome = result.value("outcome", "failed");
      logger->info("job {} {} in {:.1f} s{}", result.value("job_id", 0), outcome,
                   result.value("seconds", 0.0),
                   result.value("message", "").empty() ? "" : ": " + result.value("message", ""));
      return exit_code_for_outcome(outcome);
    } else if (event == "abandoned" || event == "refused") {
      return fail(make_error(ErrorKind::interrupted, "the agent stopped: " + message.value("reason", "")));
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
                                       "agent backup --type " + options.type, clock.now()},
                         {}};
  const BackupResult result = run_backup(config, job, services);
  if (result.outcome != BackupOutcome::succeeded) log::get("backup")->error("{}", result.message);
  return exit_code_for_outcome(backup_outcome_name(result.outcome));
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
