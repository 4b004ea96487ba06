#pragma once
// One function per command; each returns the process exit code.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "daemon/control_replies.hpp"
#include "pipelines/drill_job.hpp"
#include "pipelines/dump_job.hpp"

namespace CLI {
class App;
}

namespace agent {

struct DumpOptions {
  std::string config_path;
  std::optional<std::string> log_format;
  DumpArguments arguments;
  bool stop = false;  // --stop: stop the copy a --keep-running dump left up
};

int command_dump(const DumpOptions& options);

struct DrillOptions {
  std::string config_path;
  std::optional<std::string> log_format;
  DrillArguments arguments;
};
int command_drill(const DrillOptions& options);

struct RunOptions {
  std::string config_path;
  std::optional<std::string> log_format;
};
int command_run(const RunOptions& options);

struct BackupOptions {
  std::string config_path;
  std::optional<std::string> log_format;
  std::string type = "full";
  bool wait = false;
  int repo = 0;  // --repo; 0: the default repository
};
int command_backup(const BackupOptions& options);

struct StatusOptions {
  std::string config_path;
  std::optional<std::string> log_format;
  bool json = false;
};
int command_status(const StatusOptions& options);

struct WindowOptions {
  std::string config_path;
  std::optional<std::string> log_format;
  bool json = false;
};
int command_window(const WindowOptions& options);
int command_config_check(const std::string& path);
int command_config_example();
int command_version();
// Help printed from the parser `app` (cli/help_output.hpp).
int command_help(const CLI::App& app, const std::vector<std::string>& topic);
int command_completion(const CLI::App& app);  // bash's
int command_man(const CLI::App& app);

// --config, else $AGENT_CONFIG, else the default path (which may be absent).
std::string resolve_config_path(const std::string& flag, bool& must_exist);

// Loads the config for a command and sets up logging; on a problem, logs it and returns the
// exit code in `exit_code`. An interactive command (not `agent run`) logs text on a terminal
// even when log.format is json, unless --log-format (an override of log.format) says otherwise.
std::optional<AgentConfig> load_command_config(const std::string& flag,
                                               const std::vector<ConfigOverride>& overrides, int& exit_code,
                                               bool interactive = true);
// Logs an error with its hint and returns its exit code.
int fail(const Error& error);
// An error the running agent replied with: its message, hint and exit code.
int fail(const ReplyError& error);

// A client of a job the running agent runs for it (`agent dump`, `agent drill`): reads the
// replies on `fd`, logs each step the agent reports (records carrying `job`), answers a refusal,
// `abandoned` or a reply of another command with its exit code, and hands every other reply to
// `handle`, which returns the exit code once the job is over for this client. `what` names the
// job in messages ("dump", "drill"); `handle` may set the job's id in `job`.
int follow_agent_job(int fd, const std::string& what, log::Fields& job,
                     const std::function<std::optional<int>(const ControlReplyMessage&)>& handle);
// Runs `client` on a connection to the running agent and returns its exit code, or the error's
// when an agent is there but cannot be used; nothing when no agent runs (logged: the caller does
// the `what`, "dump" or "drill", itself).
std::optional<int> with_running_agent(const AgentConfig& config, const std::string& what,
                                      const std::function<int(int fd)>& client);
// A reply for another command than `request` ("a dump request"): the agent and this client are
// not the same version. Logs it and returns exit 6.
int answered_for_another_command(const std::string& request);
// A path as the running agent must get it: absolute, since the agent resolves paths from its own
// working directory, not the caller's. "-" (standard output), empty and absent stay as they are.
std::optional<std::string> absolute_path(const std::optional<std::string>& path);

}  // namespace agent
