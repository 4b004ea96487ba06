// What every command does first: find and load the config, set up logging, report errors.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.hpp"
#include "core/log.hpp"
#include "daemon/control_protocol.hpp"

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

int follow_agent_job(int fd, const std::string& what, log::Fields& job,
                     const std::function<std::optional<int>(const ControlReplyMessage&)>& handle) {
  auto logger = log::get(what);
  std::string buffer;
  for (;;) {
    auto reply = read_control_reply(fd, buffer);
    if (!reply) return fail(reply.error());
    if (!*reply)
      return fail(make_error(ErrorKind::environment,
                             "the agent closed the connection before the " + what + " finished",
                             "see `agent status`"));
    const ControlReplyMessage& message = **reply;
    if (std::holds_alternative<HeartbeatReply>(message)) continue;
    if (const auto* refused = std::get_if<RefusedReply>(&message)) return fail(refused->error);
    if (const auto* abandoned = std::get_if<AbandonedReply>(&message))
      return fail(make_error(ErrorKind::interrupted, abandoned->reason));
    if (const auto* step = std::get_if<StepReply>(&message)) {
      log::Fields fields = job;
      fields.step = step->step;
      if (step->state == "started") {
        log::write(*logger, spdlog::level::info, step->step + ": started", fields);
      } else {
        fields.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(step->seconds));
        log::write(*logger, step->state == "failed" ? spdlog::level::err : spdlog::level::info,
                   fmt::format("{}: {} after {:.2f} s", step->step, step->state, step->seconds), fields);
      }
      continue;
    }
    if (auto code = handle(message)) return *code;
  }
}

std::optional<std::string> absolute_path(const std::optional<std::string>& path) {
  if (!path || *path == "-" || path->empty()) return path;
  return std::filesystem::absolute(*path).lexically_normal().string();
}

int answered_for_another_command(const std::string& request) {
  return fail(make_error(
      ErrorKind::external_tool, "the agent answered " + request + " with a reply for another command",
      "the running agent and this command must be the same version (restart the container)"));
}

std::optional<int> with_running_agent(const AgentConfig& config, const std::string& what,
                                      const std::function<int(int fd)>& client) {
  const std::string path = control_socket_path(config);
  auto connected = connect_control_socket(path);
  if (!connected) return fail(connected.error());  // an agent is there but cannot be used
  if (!*connected) {
    log::get(what)->info("no agent is running on {}; running the {} here", path, what);
    return std::nullopt;
  }
  const int code = client(**connected);
  close(**connected);
  return code;
}

}  // namespace agent
