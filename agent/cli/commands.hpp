#pragma once
// One function per command; each returns the process exit code.
#include <optional>
#include <string>

namespace agent {

struct DumpOptions {
  std::string config_path;
  std::string target;
  std::optional<std::string> database;
  std::optional<std::string> output;
  std::optional<std::string> scratch;
  std::optional<int> port;
  std::optional<std::string> backup_set;
  std::optional<std::string> log_format;
  bool overwrite = false;
};

int command_dump(const DumpOptions& options);
int command_config_check(const std::string& path);
int command_config_example();
int command_version();

// --config, else $AGENT_CONFIG, else the default path (which may be absent).
std::string resolve_config_path(const std::string& flag, bool& must_exist);

}  // namespace agent
