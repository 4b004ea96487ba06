#include <unistd.h>

#include <filesystem>

#include "cli/commands.hpp"
#include "core/cancel.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "daemon/control_api.hpp"
#include "daemon/control_protocol.hpp"
#include "exec/process.hpp"
#include "pg/copy_session.hpp"
#include "pg/session.hpp"
#include "pipelines/dump_pipeline.hpp"

namespace agent {

namespace {

// The running agent resolves paths from its own working directory, not the caller's.
std::optional<std::string> absolute(const std::optional<std::string>& path) {
  if (!path || *path == "-" || path->empty()) return path;
  return std::filesystem::absolute(*path).lexically_normal().string();
}

// Through the running agent: the dump shares its records, and goes on if this client goes away.
int dump_through_agent(int fd, const DumpArguments& arguments) {
  auto logger = log::get("dump");
  if (auto s = send_json_line(fd, control_request_json(DumpCommand{arguments})); !s) return fail(s.error());
  std::string buffer;
  log::Fields job;  // the running agent's job: its steps' records carry its id
  job.job_type = "dump";
  for (;;) {
    auto reply = read_control_reply(fd, buffer);
    if (!reply) return fail(reply.error());
    if (!*reply)
      return fail(make_error(ErrorKind::environment,
                             "the agent closed the connection before the dump finished",
                             "see `agent status`"));
    if (const auto* step = std::get_if<DumpStepReply>(&**reply)) {
      log::Fields fields = job;
      fields.step = step->step;
      if (step->state == "started") {
        log::write(*logger, spdlog::level::info, step->step + ": started", fields);
      } else {
        fields.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(step->seconds));
        log::write(*logger, step->state == "failed" ? spdlog::level::err : spdlog::level::info,
                   fmt::format("{}: {} after {:.2f} s", step->step, step->state, step->seconds), fields);
      }
    } else if (const auto* accepted = std::get_if<DumpAcceptedReply>(&**reply)) {
      job.job_id = std::to_string(accepted->job_id);
      log::write(*logger, spdlog::level::info,
                 fmt::format("the running agent took the dump (job {})", accepted->job_id), job);
    } else if (const auto* refused = std::get_if<RefusedReply>(&**reply)) {
      return fail(refused->error);
    } else if (const auto* finished = std::get_if<DumpFinishedReply>(&**reply)) {
      if (const auto* error = std::get_if<ReplyError>(&finished->outcome)) return fail(*error);
      const auto& written = std::get<DumpWritten>(finished->outcome);
      log::write(
          *logger, spdlog::level::info,
          fmt::format("dump written: {} ({} bytes, checksum {}) from backup set {} in repo{}, manifest {}",
                      written.output, written.bytes, written.checksum.empty() ? "none" : written.checksum,
                      written.backup_set, written.repo, written.manifest),
          job);
      return kExitSuccess;
    } else if (!std::holds_alternative<HeartbeatReply>(**reply)) {
      return fail(make_error(
          ErrorKind::external_tool, "the agent answered a dump request with a reply for another command",
          "the running agent and this command must be the same version (restart the container)"));
    }
  }
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

  DumpArguments arguments = options.arguments;
  arguments.output = absolute(arguments.output);
  arguments.scratch = absolute(arguments.scratch);
  // Bad input is refused here, before anything is asked of anyone.
  auto job = build_dump_job(*config, arguments);
  if (!job) return fail(job.error());

  // A dump to standard output must come out of this process; anything else goes through the
  // running agent when there is one.
  if (!job->to_stdout()) {
    const std::string path = control_socket_path(*config);
    auto connected = connect_control_socket(path);
    if (!connected) return fail(connected.error());  // an agent is there but cannot be used
    if (*connected) {
      const int code = dump_through_agent(**connected, arguments);
      close(**connected);
      return code;
    }
    log::get("dump")->info("no agent is running on {}; running the dump here", path);
  }
  return dump_here(*job);
}

}  // namespace agent
