#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>

#include "cli/commands.hpp"
#include "daemon/control_api.hpp"
#include "daemon/control_protocol.hpp"
#include "daemon/status_view.hpp"

namespace agent {

namespace {
// " into repo2" for a job or schedule with a repository, "" for the default one.
std::string into_repo(nlohmann::json& item) {
  auto& repo = item["repo"];
  return repo.is_number_integer() && repo.get<int>() > 0 ? " into repo" + std::to_string(repo.get<int>())
                                                         : "";
}

std::string text_of(nlohmann::json& value, const char* fallback = "") {
  return value.is_string() ? value.get<std::string>() : fallback;
}

// The drill schedule, a queued or running drill, and the last drill's manifest: backup set and
// repository, target, replay gap (the measured RPO), durations (restore: the measured RTO) and
// each check with its counts and first failing object.
void print_drill(nlohmann::json& drill) {
  if (!drill.is_object()) return;
  if (auto& schedule = drill["schedule"]; schedule.is_object())
    std::printf("schedule: drill '%s' (%s), next %s\n", schedule.value("cron", "").c_str(),
                schedule.value("timezone", "").c_str(),
                text_of(schedule["next_local"], text_of(schedule["next"], "never").c_str()).c_str());
  if (auto& running = drill["running"]; running.is_object())
    std::printf("drill: job %llu running since %s, step %s (%s)\n",
                static_cast<unsigned long long>(running.value("job_id", 0ULL)),
                running.value("started_at", "").c_str(), running.value("step", "").c_str(),
                running.value("reason", "").c_str());
  if (auto& running = drill["running"]; running.is_object() && running["restore_progress"].is_object())
    std::printf("  restored: %s\n", backup_progress_text(running["restore_progress"]).c_str());
  if (auto& queued = drill["queued"]; queued.is_object())
    std::printf("drill: job %llu queued (%s)\n",
                static_cast<unsigned long long>(queued.value("job_id", 0ULL)),
                queued.value("reason", "").c_str());
  if (auto& annotating = drill["annotating"]; annotating.is_object())
    std::printf("drill %s: recording its result on backup set %s in repo%d (pgbackrest annotate)\n",
                text_of(annotating["drill"]).c_str(), text_of(annotating["backup_set"]).c_str(),
                annotating.value("repo", 0));
  auto& last = drill["last"];
  if (!last.is_object()) return;
  auto& set = last["backup_set"];
  std::printf("last drill %s (%s): %s, finished %s\n", text_of(last["drill"]).c_str(),
              text_of(last["trigger"]).c_str(), text_of(last["result"]).c_str(),
              text_of(last["finished_at"]).c_str());
  if (set.is_object())
    std::printf("  backup set %s (%s) from repo%d, target %s, replayed to %s, gap %.3f s\n",
                text_of(set["label"]).c_str(), text_of(set["type"]).c_str(), set.value("repo", 0),
                text_of(last["target"]).c_str(), text_of(last["replay_timestamp"], "-").c_str(),
                last["replay_gap_seconds"].is_number() ? last["replay_gap_seconds"].get<double>() : 0.0);
  std::string phases;
  if (auto& durations = last["durations_seconds"]; durations.is_object())
    for (const auto& [phase, seconds] : durations.items())
      if (seconds.is_number())
        phases += fmt::format("{}{} {:.2f} s", phases.empty() ? "" : ", ", phase, seconds.get<double>());
  std::printf("  restore %.2f s, total %.2f s: %s\n",
              last["restore_seconds"].is_number() ? last["restore_seconds"].get<double>() : 0.0,
              last["total_seconds"].is_number() ? last["total_seconds"].get<double>() : 0.0, phases.c_str());
  for (auto& check : last["checks"]) {
    const std::string database =
        check["database"].is_string() ? " in " + check["database"].get<std::string>() : std::string();
    std::printf(
        "  %s%s: %s, %llu checked, %llu failed%s%s%s%s\n", text_of(check["check"]).c_str(), database.c_str(),
        text_of(check["result"]).c_str(), static_cast<unsigned long long>(check.value("checked", 0ULL)),
        static_cast<unsigned long long>(check.value("failed", 0ULL)),
        check["first_failure"].is_string() ? "; first: " : "", text_of(check["first_failure"]).c_str(),
        check["reason"].is_string() ? "; " : "", text_of(check["reason"]).c_str());
  }
  if (auto& error = last["error"]; error.is_object())
    std::printf("  error: %s\n", text_of(error["message"]).c_str());
}

// By value, and non-const access throughout: a key an agent of another version leaves out reads
// as null instead of being undefined behaviour.
void print_human(nlohmann::json status) {
  std::printf("agent %s, stanza %s, running since %s%s\n", status.value("agent_version", "").c_str(),
              status.value("stanza", "").c_str(), status.value("started_at", "").c_str(),
              status.value("stopping", false) ? " (stopping)" : "");
  auto& running = status["running"];
  if (running.is_object())
    std::printf("running: job %llu, %s backup%s (%s), since %s\n",
                static_cast<unsigned long long>(running.value("job_id", 0ULL)),
                running.value("type", "").c_str(), into_repo(running).c_str(),
                running.value("reason", "").c_str(), running.value("started_at", "").c_str());
  if (running.is_object() && running.contains("progress") && running["progress"].is_object())
    std::printf("  progress: %s\n", backup_progress_text(running["progress"]).c_str());
  else
    std::printf("running: nothing\n");
  std::printf("queued: %zu\n", status["queue"].size());
  for (auto& job : status["queue"])
    std::printf("  job %llu, %s backup%s (%s)\n", static_cast<unsigned long long>(job.value("job_id", 0ULL)),
                job.value("type", "").c_str(), into_repo(job).c_str(), job.value("reason", "").c_str());
  for (auto& schedule : status["schedules"])
    std::printf("schedule: %s%s '%s' (%s), next %s\n", schedule.value("type", "").c_str(),
                into_repo(schedule).c_str(), schedule.value("cron", "").c_str(),
                schedule.value("timezone", "").c_str(),
                schedule["next_local"].is_string()
                    ? schedule["next_local"].get<std::string>().c_str()
                    : (schedule["next"].is_string() ? schedule["next"].get<std::string>().c_str() : "never"));
  if (status.contains("schedules_refused") && status["schedules_refused"].is_string())
    std::printf("schedules: refused: %s\n", status["schedules_refused"].get<std::string>().c_str());
  if (status["repository_read_error"].is_string())
    std::printf("pgbackrest info failed: %s\n", status["repository_read_error"].get<std::string>().c_str());
  for (auto& repo : status["repositories"]) {
    std::string newest;
    for (const char* type : {"full", "diff", "incr"}) {
      auto& backup = repo["newest"][type];
      if (backup.is_object())
        newest += std::string(", newest ") + type + " " + backup.value("label", "") + " (" +
                  backup.value("stop", "") + ")";
    }
    std::printf("repo%d: %s%s, %llu backups%s\n", repo.value("repo", 0),
                repo.value("readable", false) ? "readable" : "unreadable: ",
                repo["problem"].is_string() ? repo["problem"].get<std::string>().c_str() : "",
                static_cast<unsigned long long>(repo.value("backups", 0ULL)), newest.c_str());
    if (auto& window = repo["window"]; window.is_object())
      std::printf("  recoverable: %s to %s (%s)\n", window.value("start", "").c_str(),
                  window.value("end", "").c_str(),
                  window.value("end_source", "") == "wal" ? "last archived WAL" : "newest backup");
  }
  std::printf("recent:\n");
  // The job's start and end (not the request's), and the backup it made.
  for (auto& result : status["recent"]) {
    std::printf("  job %llu, %s %s backup%s, %s, started %s, ended %s (%.1f s)%s%s\n",
                static_cast<unsigned long long>(result.value("job_id", 0ULL)),
                result.value("trigger", "").c_str(), result.value("type", "").c_str(),
                into_repo(result).c_str(), result.value("outcome", "").c_str(),
                result.value("started_at", "").c_str(), result.value("finished_at", "?").c_str(),
                result.value("seconds", 0.0), result.value("message", "").empty() ? "" : ": ",
                result.value("message", "").c_str());
    if (auto& backup = result["backup"]; backup.is_object())
      std::printf("    backup %s, %s to %s, %.1f MB (%.1f MB in the repository)\n",
                  backup.value("label", "").c_str(), backup.value("start", "").c_str(),
                  backup.value("stop", "").c_str(), backup.value("size_bytes", 0.0) / 1e6,
                  backup.value("repository_size_bytes", 0.0) / 1e6);
  }
  auto& dump = status["dump"];
  if (dump.is_object()) {
    if (dump["running"].is_object()) {
      std::printf("dump: job %llu running since %s, target %s\n",
                  static_cast<unsigned long long>(dump["running"].value("job_id", 0ULL)),
                  dump["running"].value("started_at", "").c_str(),
                  dump["running"].value("target", "").c_str());
      if (const auto& kept = dump["running"]["kept"]; kept.is_object())
        std::printf(
            "  its paused copy is kept running since %s until %s (stop it: agent dump --stop)\n"
            "  connect: %s\n  from outside the pod: %s\n",
            kept.value("since", "").c_str(), kept.value("until", "").c_str(), kept.value("psql", "").c_str(),
            kept.value("oc_exec", "").c_str());
      if (dump["running"]["restore_progress"].is_object())
        std::printf("  restored: %s\n", backup_progress_text(dump["running"]["restore_progress"]).c_str());
    }
    if (dump["last"].is_object()) {
      auto& outcome = dump["last"]["outcome"];
      std::printf("last dump: job %llu, target %s, %s%s%s\n",
                  static_cast<unsigned long long>(dump["last"].value("job_id", 0ULL)),
                  dump["last"].value("target", "").c_str(),
                  outcome.value("ok", false) ? "written to " : "failed: ",
                  outcome.value("ok", false) ? dump["last"].value("output", "").c_str() : "",
                  outcome.value("ok", false) ? "" : outcome.value("error", "").c_str());
    }
  }
  print_drill(status["drill"]);
  if (!status["skipped"].empty()) {
    std::printf("skipped:");
    for (const auto& [reason, count] : status["skipped"].items())
      std::printf(" %s=%llu", reason.c_str(), static_cast<unsigned long long>(count.get<std::uint64_t>()));
    std::printf("\n");
  }
  auto& state = status["state"];
  if (state.is_object()) {
    if (state["problem"].is_string())
      std::printf("state_dir %s is unusable: %s\n", state.value("dir", "").c_str(),
                  state["problem"].get<std::string>().c_str());
    for (auto& request : state["abandoned"])
      std::printf("abandoned: request %llu, %s backup (%s), started %d times\n",
                  static_cast<unsigned long long>(request.value("request", 0ULL)),
                  request.value("type", "").c_str(), request.value("reason", "").c_str(),
                  request.value("attempts", 0));
  }
}
}  // namespace

int command_status(const StatusOptions& options) {
  int exit_code = 0;
  std::vector<ConfigOverride> overrides;
  if (options.log_format) overrides.push_back({"log.format", *options.log_format, "--log-format"});
  const auto config = load_command_config(options.config_path, overrides, exit_code);
  if (!config) return exit_code;
  const std::string path = control_socket_path(*config);
  auto connected = connect_control_socket(path);
  if (!connected) return fail(connected.error());
  if (!*connected)
    return fail(make_error(ErrorKind::environment, "no agent is running on " + path,
                           "start it with `agent run`, or check control.socket and state_dir in the config"));
  const int fd = **connected;
  std::string buffer;
  Status sent = send_json_line(fd, control_request_json(StatusCommand{}));
  auto reply = sent ? read_control_reply(fd, buffer, std::chrono::seconds(15))
                    : Result<std::optional<ControlReplyMessage>>(sent.error());
  close(fd);
  if (!reply) return fail(reply.error());
  if (!*reply) return fail(make_error(ErrorKind::environment, "the agent did not answer the status request"));
  if (const auto* refused = std::get_if<RefusedReply>(&**reply)) return fail(refused->error);
  const auto* answer = std::get_if<StatusReply>(&**reply);
  if (!answer)
    return fail(
        make_error(ErrorKind::external_tool, "the agent answered the status request with another reply",
                   "the running agent and this command must be the same version (restart the container)"));
  if (options.json) {
    std::printf("%s\n", answer->status.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return kExitSuccess;
  }
  // The document's parts are read leniently for people; a part of the wrong type is named.
  try {
    print_human(answer->status);
  } catch (const nlohmann::json::exception& e) {
    return fail(make_error(ErrorKind::external_tool,
                           std::string("the agent's status could not be shown: ") + e.what(),
                           "`agent status --json` prints it as it came"));
  }
  return kExitSuccess;
}

}  // namespace agent
