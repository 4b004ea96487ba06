#include "cli/commands.hpp"
#include "daemon/agent_daemon.hpp"

namespace agent {

int command_run(const RunOptions& options) {
  std::vector<ConfigOverride> overrides;
  if (options.log_format) overrides.push_back({"log.format", *options.log_format, "--log-format"});
  int exit_code = 0;
  auto config = load_command_config(options.config_path, overrides, exit_code, /*interactive=*/false);
  if (!config) return exit_code;
  DaemonSeams seams;
  bool must_exist = true;
  seams.config_file = resolve_config_path(options.config_path, must_exist);
  seams.reload_config = [path = seams.config_file, must_exist, overrides] {
    return load_config(path, must_exist, overrides);
  };
  AgentDaemon daemon(std::move(*config), std::move(seams));
  return daemon.run();
}

}  // namespace agent
