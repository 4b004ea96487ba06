// `agent window`: "what can I restore to?", per repository. The running agent answers from its
// last read of the repository (and the live server's last archived WAL); with no agent running,
// this process reads `pgbackrest info` (and pg_stat_archiver, when the server answers) itself,
// through the same metrics code, so both give the same answer.
#include <unistd.h>

#include <cstdio>

#include "cli/commands.hpp"
#include "core/cancel.hpp"
#include "daemon/control_api.hpp"
#include "daemon/control_protocol.hpp"
#include "daemon/status_view.hpp"
#include "exec/commands.hpp"
#include "metrics/agent_metrics.hpp"
#include "pg/session.hpp"
#include "pipelines/backup_pipeline.hpp"

namespace agent {

namespace {

// The running agent's repositories, or nothing when no agent runs.
Result<std::optional<nlohmann::json>> from_agent(const AgentConfig& config) {
  auto connected = connect_control_socket(control_socket_path(config));
  if (!connected) return connected.error();
  if (!*connected) return std::optional<nlohmann::json>();
  const int fd = **connected;
  std::string buffer;
  Status sent = send_json_line(fd, control_request_json(StatusCommand{}));
  auto reply = sent ? read_control_reply(fd, buffer, std::chrono::seconds(15))
                    : Result<std::optional<ControlReplyMessage>>(sent.error());
  close(fd);
  if (!reply) return reply.error();
  if (!*reply) return make_error(ErrorKind::environment, "the agent did not answer the status request");
  if (const auto* refused = std::get_if<RefusedReply>(&**reply))
    return make_error(ErrorKind::environment, refused->error.error, refused->error.hint);
  const auto* answer = std::get_if<StatusReply>(&**reply);
  if (!answer) return make_error(ErrorKind::external_tool, "the agent answered with another reply");
  nlohmann::json status = answer->status;
  return std::optional<nlohmann::json>(
      nlohmann::json{{"source", "agent"},
                     {"repositories", status.value("repositories", nlohmann::json::array())},
                     {"read_error", status.value("repository_read_error", nlohmann::json(nullptr))}});
}

// No agent: read the repository here.
nlohmann::json from_pgbackrest(const AgentConfig& config) {
  auto runner = make_posix_process_runner();
  CancelToken cancel;
  AgentMetrics metrics(config.stanza, false);
  const auto info = read_stanza_info(config, *runner, cancel);
  metrics.record_repository_read(info, std::chrono::system_clock::now(), 0);
  // The live server's last archived WAL ends the window; without a server, the newest backup.
  auto connector = make_pqxx_connector();
  if (auto session = connector->connect(
          conninfo(config.postgres.host, config.postgres.port, config.postgres.user, "postgres")))
    if (auto stats = (*session)->archiver_stats()) metrics.record_archiver(*stats);
  nlohmann::json repositories = nlohmann::json::array();
  for (const auto& repo : metrics.repositories()) repositories.push_back(repository_summary_json(repo));
  return {{"source", "pgbackrest info"},
          {"repositories", repositories},
          {"read_error", info ? nlohmann::json(nullptr) : nlohmann::json(info.error().message)}};
}

void print_human(nlohmann::json answer) {
  if (answer["read_error"].is_string())
    std::printf("pgbackrest info failed: %s\n", answer["read_error"].get<std::string>().c_str());
  for (auto& repo : answer["repositories"]) {
    auto& window = repo["window"];
    if (window.is_object())
      std::printf(
          "repo%d: restore to any time from %s to %s (%s)%s%s\n", repo.value("repo", 0),
          window.value("start", "").c_str(), window.value("end", "").c_str(),
          window.value("end_source", "") == "wal" ? "the last archived WAL" : "the newest backup's end",
          repo.value("readable", false) ? "" : "; unreadable now: ",
          repo["problem"].is_string() ? repo["problem"].get<std::string>().c_str() : "");
    else
      std::printf("repo%d: nothing to restore%s%s\n", repo.value("repo", 0),
                  repo.value("readable", false) ? " (no backup)" : ": unreadable: ",
                  repo["problem"].is_string() ? repo["problem"].get<std::string>().c_str() : "");
  }
  std::printf("(from %s)\n", answer.value("source", "").c_str());
}

}  // namespace

int command_window(const WindowOptions& options) {
  int exit_code = 0;
  std::vector<ConfigOverride> overrides;
  if (options.log_format) overrides.push_back({"log.format", *options.log_format, "--log-format"});
  const auto config = load_command_config(options.config_path, overrides, exit_code);
  if (!config) return exit_code;
  auto answer = from_agent(*config);
  if (!answer) return fail(answer.error());
  const nlohmann::json result = *answer ? **answer : from_pgbackrest(*config);
  if (options.json)
    std::printf("%s\n", result.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  else
    print_human(result);
  // Nothing could be read at all: say so in the exit code too.
  if (result["read_error"].is_string() && result["repositories"].empty())
    return exit_code_for(ErrorKind::external_tool);
  return kExitSuccess;
}

}  // namespace agent
