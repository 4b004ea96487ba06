#include "cli/commands.hpp"
#include "daemon/agent_daemon.hpp"

namespace agent {

int command_run(const RunOptions& options) {
  std::vector<ConfigOverride> overrides;
  if (options.log_format) overrides.push_back({"log.format", *options.log_format, "--log-format"});
  int exit_code = 0;
  auto config = load_command_config(options.config_path, overrides, exit_code);
  if (!config) return exit_code;
  AgentDaemon daemon(std::move(*config));
  return daemon.run();
}

}  // namespace agent
