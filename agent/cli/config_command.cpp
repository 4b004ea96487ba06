#include <cstdio>

#include "cli/commands.hpp"
#include "config/config.hpp"
#include "core/error.hpp"
#include "core/version.hpp"

namespace agent {

int command_config_check(const std::string& path) {
  const ConfigLoad load = load_config(path, true, {});
  if (load.issues.empty()) {
    std::printf("%s: ok\n", path.c_str());
    return kExitSuccess;
  }
  std::fprintf(stderr, "%s\n", config_error(load.issues).describe().c_str());
  return exit_code_for(ErrorKind::usage);
}

int command_config_example() {
  std::fputs(example_config_yaml().c_str(), stdout);
  return kExitSuccess;
}

int command_version() {
  std::printf("agent %s\n", kAgentVersion);
  return kExitSuccess;
}

}  // namespace agent
