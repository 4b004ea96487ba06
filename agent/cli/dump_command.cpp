#include <unistd.h>

#include "cli/commands.hpp"
#include "core/cancel.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "daemon/control_api.hpp"
#include "daemon/control_protocol.hpp"
#include "daemon/status_view.hpp"
#include "exec/process.hpp"
#include "pg/copy_session.hpp"
#include "pg/session.hpp"
#include "pipelines/dump_pipeline.hpp"

namespace agent {

namespace {

// Through the running agent: the dump shares its records, and goes on if this client goes away.
int dump_through_agent(int fd, const DumpArguments& arguments) {
  auto logger = log::get("dump");
  if (auto s = send_json_line(fd, control_request_json(DumpCommand{arguments})); !s) return fail(s.error());
  log::Fields job;  // the running agent's job: its steps' records carry its id
  job.job_type = "dump";
  return follow_agent_job(fd, "dump", job, [&](const ControlReplyMessage& reply) -> std::optional<int> {
    if (const auto* kept = std::get_if<DumpKeptReply>(&reply)) {
      // The dump is written; the agent holds the copy. This client is done.
      const std::string psql = kept_copy_psql(kept->socket_dir, kept->port, kept->user, kept->database);
      log::write(*logger, spdlog::level::info,
                 fmt::format("dump written; the running agent keeps its paused copy up until {} (`agent dump "
                             "--stop` stops it earlier). Connect in the container with: {}; from outside "
                             "the pod: {}",
                             kept->until, psql, kept_copy_oc_exec(kept->pod, psql)),
                 job);
      return kExitSuccess;
    }
    if (const auto* progress = std::get_if<DumpProgressReply>(&reply)) {
      log::Fields fields = job;
      fields.step = "restore";
      log::write(*logger, spdlog::level::info,
                 "restored " + backup_progress_text(
                                   {{"bytes_done", progress->bytes_done},
                                    {"bytes_total", progress->bytes_total},
                                    {"percent", progress->bytes_total == 0
                                                    ? 0.0
                                                    : 100.0 * static_cast<double>(progress->bytes_done) /
                                                          static_cast<double>(progress->bytes_total)}}),
                 fields);
      return std::nullopt;
    }
    if (const auto* accepted = std::get_if<DumpAcceptedReply>(&reply)) {
      job.job_id = std::to_string(accepted->job_id);
      log::write(*logger, spdlog::level::info,
                 fmt::format("the running agent took the dump (job {})", accepted->job_id), job);
      return std::nullopt;
    }
    if (const auto* finished = std::get_if<DumpFinishedReply>(&reply)) {
      if (const auto* error = std::get_if<ReplyError>(&finished->outcome)) return fail(*error);
      const auto& written = std::get<DumpWritten>(finished->outcome);
      log::write(
          *logger, spdlog::level::info,
          fmt::format("dump written: {} ({} bytes, checksum {}) from backup set {} in repo{}, manifest {}",
                      written.output, written.bytes, written.checksum.empty() ? "none" : written.checksum,
                      written.backup_set, written.repo, written.manifest),
          job);
      return kExitSuccess;
    }
    return answered_for_another_command("a dump request");
  });
}

// `agent dump --stop`: the running agent stops the kept copy; the reply comes once it is
// stopped and the scratch directory is cleaned up.
int stop_kept_copy(const AgentConfig& config) {
  auto logger = log::get("dump");
  const std::string path = control_socket_path(config);
  auto connected = connect_control_socket(path);
  if (!connected) return fail(connected.error());
  if (!*connected)
    return fail(
        make_error(ErrorKind::environment, "no agent is running on " + path,
                   "a copy kept by `agent dump --keep-running` without a running agent belongs to that "
                   "command: stop it with Ctrl-C (or SIGTERM) where it runs; it also stops by itself "
                   "at its deadline"));
  const int fd = **connected;
  auto code = [&]() -> int {
    if (auto s = send_json_line(fd, control_request_json(DumpStopCommand{})); !s) return fail(s.error());
    log::Fields job;
    job.job_type = "dump";
    // The kept copy's dump answers, once the copy is stopped and the scratch directory cleaned.
    return follow_agent_job(fd, "dump", job, [&](const ControlReplyMessage& reply) -> std::optional<int> {
      if (const auto* finished = std::get_if<DumpFinishedReply>(&reply)) {
        if (const auto* error = std::get_if<ReplyError>(&finished->outcome)) return fail(*error);
        logger->info("stopped the kept copy; the dump {} stays",
                     std::get<DumpWritten>(finished->outcome).output);
        return kExitSuccess;
      }
      return answered_for_another_command("`agent dump --stop`");
    });
  }();
  close(fd);
  return code;
}

int dump_here(const DumpJob& job) {
  CancelToken cancel;
  cancel_on_termination_signals(cancel);
  SystemClock clock;
  auto runner = make_posix_process_runner();
  auto connector = make_pqxx_connector();
  auto copier = make_libpq_copy_connector();
  DumpServices services{*runner, *connector, *copier, clock, cancel};
  auto summary = run_dump(job, services);
  if (!summary) return fail(summary.error());
  auto logger = log::get("dump");
  const std::string checksum = summary->checksum.empty() ? "none" : summary->checksum;
  if (!summary->kept_copy_ended.empty())
    logger->info("the kept copy was stopped ({}) and the scratch directory cleaned up",
                 summary->kept_copy_ended);
  if (summary->output == "-")
    logger->info("dump written to standard output: {} bytes, checksum {}, from backup set {} in repo{}",
                 summary->bytes, checksum, summary->backup_label, summary->repo);
  else
    logger->info("dump written: {} ({} bytes, checksum {}) from backup set {} in repo{}, manifest {}",
                 summary->output, summary->bytes, checksum, summary->backup_label, summary->repo,
                 summary->manifest_path);
  return kExitSuccess;
}

}  // namespace

int command_dump(const DumpOptions& options) {
  std::vector<ConfigOverride> overrides;
  if (options.log_format) overrides.push_back({"log.format", *options.log_format, "--log-format"});
  int exit_code = 0;
  const auto config = load_command_config(options.config_path, overrides, exit_code);
  if (!config) return exit_code;

  if (options.stop) {
    if (!options.arguments.target.empty() || options.arguments.keep_running)
      return fail(make_error(ErrorKind::usage, "--stop takes no --target or --keep-running",
                             "run `agent dump --stop` alone to stop the kept copy"));
    return stop_kept_copy(*config);
  }
  if (options.arguments.target.empty())
    return fail(make_error(ErrorKind::usage, "--target is required",
                           "give the time (with its zone), latest, lsn:X/Y, xid:N or name:POINT to dump "
                           "(`agent dump --help`)"));
  DumpArguments arguments = options.arguments;
  arguments.output = absolute_path(arguments.output);
  arguments.scratch = absolute_path(arguments.scratch);
  // Bad input is refused here, before anything is asked of anyone.
  auto job = build_dump_job(*config, arguments);
  if (!job) return fail(job.error());

  // A dump to standard output must come out of this process; anything else goes through the
  // running agent when there is one.
  if (!job->to_stdout())
    if (auto code =
            with_running_agent(*config, "dump", [&](int fd) { return dump_through_agent(fd, arguments); }))
      return *code;
  return dump_here(*job);
}

}  // namespace agent
