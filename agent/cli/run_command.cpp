#include <unistd.h>

#include "cli/commands.hpp"
#include "core/log.hpp"
#include "daemon/agent_daemon.hpp"

namespace agent {

int command_run(const RunOptions& options) {
  std::vector<ConfigOverride> overrides;
  if (options.log_format) overrides.push_back({"log.format", *options.log_format, "--log-format"});
  int exit_code = 0;
  auto config = load_command_config(options.config_path, overrides, exit_code, /*interactive=*/false);
  if (!config) return exit_code;
  // PID 1 inherits every orphaned grandchild (a killed pg_dump's parallel workers, pgBackRest's
  // local processes) and must reap it; the agent does not, tini does.
  if (getpid() == 1)
    log::get("agent")->warn(
        "the agent runs as PID 1, so orphaned processes stay as zombies; run it under an init: "
        "the image's entrypoint is `tini -- agent`, and a container `command:` should start "
        "with `tini, --` too");
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
