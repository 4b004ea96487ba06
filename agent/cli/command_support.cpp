// What every command does first: find and load the config, set up logging, report errors.
#include <unistd.h>

#include <algorithm>
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

// One record: the error, its hint and the exit code (text shows them on three lines).
int fail(const Error& error) {
  const int code = exit_code_for(error.kind);
  log::Fields exit;
  exit.exit_code = code;
  log::error(*log::get("agent"), error, {}, spdlog::level::err, exit);
  return code;
}

int fail(const ReplyError& error) {
  log::Fields fields;
  fields.exit_code = error.exit_code;
  fields.error_message = error.error;
  fields.hint = error.hint;
  log::write(*log::get("agent"), spdlog::level::err, error.error, fields);
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
                                               const std::vector<ConfigOverride>& overrides, int& exit_code,
                                               bool interactive) {
  bool must_exist = true;
  const std::string path = resolve_config_path(flag, must_exist);
  const ConfigLoad load = load_config(path, must_exist, overrides);
  if (!load.issues.empty()) {
    exit_code = fail(config_error(load.issues));
    return std::nullopt;
  }
  const bool format_flag = std::any_of(overrides.begin(), overrides.end(),
                                       [](const ConfigOverride& o) { return o.key == "log.format"; });
  log::setup(log::choose_format(load.config.log.format == "json" ? log::Format::json : log::Format::text,
                                format_flag, interactive, isatty(STDERR_FILENO) == 1),
             level_from(load.config.log.level));
  return load.config;
}

}  // namespace agent
