#pragma once
// The control socket speaks newline-delimited JSON: one request line from the client, then
// one or more response lines from the agent. Shared by the server (agent run) and the
// clients (agent backup, agent status).
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/error.hpp"

namespace agent {

constexpr std::size_t kControlMaxLine = 64 * 1024;

// A connected client socket, or an environment error saying no agent answers there.
Result<int> connect_control_socket(const std::string& path);
Status send_json_line(int fd, const nlohmann::json& message);
// The next line as JSON; nothing at end of stream.
Result<std::optional<nlohmann::json>> read_json_line(int fd, std::string& buffer);

}  // namespace agent
