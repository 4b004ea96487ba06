#include <cstdio>

#include "cli/commands.hpp"
#include "config/config.hpp"
#include "core/error.hpp"
#include "core/version.hpp"
#include "pipelines/pgbackrest_access.hpp"

namespace agent {

namespace {
// Which files pgBackRest will read with this config, and a named file or directory that is not
// there (every pgBackRest command would fail on it).
bool report_pgbackrest_config(const AgentConfig& config) {
  const auto found = find_pgbackrest_config_files(pgbackrest_config_location(config));
  if (found.files.empty() && found.problems.empty()) {
    std::printf(
        "pgBackRest reads no config file (looked for %s%s%s): it runs on its defaults and "
        "PGBACKREST_* environment variables\n",
        found.main_file.c_str(), found.include_dir.empty() ? "" : " and ",
        found.include_dir.empty() ? "" : (found.include_dir + "/*.conf").c_str());
  } else if (!found.files.empty()) {
    std::printf("pgBackRest reads:");
    for (const auto& file : found.files) std::printf(" %s", file.c_str());
    std::printf("\n");
  }
  for (const auto& problem : found.problems)
    std::fprintf(stderr,
                 "error: %s\nHINT: fix the path, or leave it empty so that pgBackRest finds its config as "
                 "it does in the database container\n",
                 problem.c_str());
  return found.problems.empty();
}
}  // namespace

int command_config_check(const std::string& path) {
  const ConfigLoad load = load_config(path, true, {});
  if (!load.issues.empty()) {
    std::fprintf(stderr, "%s\n", config_error(load.issues).describe().c_str());
    return exit_code_for(ErrorKind::usage);
  }
  if (!report_pgbackrest_config(load.config)) return exit_code_for(ErrorKind::usage);
  std::printf("%s: ok\n", path.c_str());
  return kExitSuccess;
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
