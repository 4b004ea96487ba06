// What every command does first: find and load the config, set up logging, report errors.
#include <cstdlib>

#include "cli/commands.hpp"
#include "core/log.hpp"

namespace agent {

std::string resolve_config_path(const std::string& flag, bool& must_exist) {
  must_exist = true;
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("AGENT_CONFIG"); env != nullptr && *env != '\0') return env;
  must_exist = false;
  return kDefaultConfigPath;
}

int fail(const Error& error) {
  log::get("agent")->error("{}", error.describe());
  const int code = exit_code_for(error.kind);
  log::get("agent")->error("exit code {} ({})", code, error_kind_name(error.kind));
  return code;
}

int fail(const ReplyError& error) {
  log::get("agent")->error("{}", error.error);
  if (!error.hint.empty()) log::get("agent")->error("HINT: {}", error.hint);
  log::get("agent")->error("exit code {}", error.exit_code);
  return error.exit_code;
}

namespace {
spdlog::level::level_enum level_from(const std::string& name) {
  if (name == "debug") return spdlog::level::debug;
  if (name == "warn") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  return spdlog::level::info;
}
}  // namespace

std::optional<AgentConfig> load_command_config(const std::string& flag,
                                               const std::vector<ConfigOverride>& overrides, int& exit_code) {
  bool must_exist = true;
  const std::string path = resolve_config_path(flag, must_exist);
  const ConfigLoad load = load_config(path, must_exist, overrides);
  if (!load.issues.empty()) {
    exit_code = fail(config_error(load.issues));
    return std::nullopt;
  }
  log::setup(load.config.log.format == "json" ? log::Format::json : log::Format::text,
             level_from(load.config.log.level));
  return load.config;
}

}  // namespace agent
