#include "pipelines/pgbackrest_access.hpp"

#include <algorithm>

namespace agent {

PgBackRestConfigLocation pgbackrest_config_location(const AgentConfig& config) {
  return {config.pgbackrest.config_path, config.pgbackrest.config, config.pgbackrest.config_include_path};
}

PgBackRestTarget pgbackrest_target(const AgentConfig& config, int repo) {
  return PgBackRestTarget{config.pgbackrest.bin, pgbackrest_config_args(pgbackrest_config_location(config)),
                          config.stanza, repo};
}

Status check_pgbackrest_config_files(const AgentConfig& config) {
  const auto found = find_pgbackrest_config_files(pgbackrest_config_location(config));
  if (found.problems.empty()) return {};
  std::string message;
  for (const auto& problem : found.problems) message += (message.empty() ? "" : "; ") + problem;
  return make_error(ErrorKind::usage, message,
                    "fix the path in the agent's config, or leave pgbackrest.config empty so that pgBackRest "
                    "finds its config as it does in the database container (`agent config check` lists "
                    "the files)");
}

Result<PgBackRestVersion> read_pgbackrest_version(const AgentConfig& config, ProcessRunner& runner,
                                                  const CancelToken& cancel) {
  ProcessSpec spec;
  spec.argv = pgbackrest_version_argv(config.pgbackrest.bin);
  spec.tag = "pgbackrest";
  spec.stdout_mode = StdoutMode::capture;
  spec.timeout = std::chrono::seconds(config.pgbackrest.timeout_seconds);
  auto result = runner.run(spec, cancel);
  if (!result) return result.error();
  if (result->cancelled) return make_error(ErrorKind::interrupted, "pgbackrest version was stopped");
  const auto version =
      result->succeeded() ? parse_pgbackrest_version_output(result->stdout_text) : std::nullopt;
  if (!version)
    return make_error(ErrorKind::environment,
                      "`" + config.pgbackrest.bin + " version` " + result->describe() +
                          " and did not say which pgBackRest it is: '" + result->stdout_text.substr(0, 200) +
                          "'",
                      "set pgbackrest.bin to the pgBackRest executable");
  return *version;
}

std::string backup_placement_problem(const AgentConfig& config, ProcessRunner& runner,
                                     const CancelToken& cancel) {
  const auto found = find_pgbackrest_config_files(pgbackrest_config_location(config));
  const auto settings = read_pgbackrest_settings(found.files, config.stanza, "backup");
  if (!settings) return "";
  auto remote = remote_repositories(*settings);
  // A backup goes to pgbackrest.repo when it is set, else to every repository in turn.
  if (config.pgbackrest.repo > 0)
    remote.erase(
        std::remove_if(remote.begin(), remote.end(), [&](int key) { return key != config.pgbackrest.repo; }),
        remote.end());
  if (remote.empty()) return "";
  const auto version = read_pgbackrest_version(config, runner, cancel);
  const PgBackRestVersion kRemoteBackups{2, 55, 0, "2.55"};
  if (!version || !(*version < kRemoteBackups)) return "";
  const std::string key = "repo" + std::to_string(remote.front()) + "-host";
  return "pgbackrest.bin is pgBackRest " + version->text + ", which backs up only on the repository host (" +
         "2.55 lifted that), and " + key + " is " + settings->at(key) +
         " in pgBackRest's config: backups from this pod would fail with [072]";
}

}  // namespace agent
