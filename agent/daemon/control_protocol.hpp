#pragma once
// The control socket speaks newline-delimited JSON: one request line from the client (see
// control_api.hpp), then one or more reply lines from the agent. This file is the transport
// both sides share: where the socket is, who may be on the other end, and reads and writes
// with deadlines.
//
// Trust: a Unix socket path can be taken by anyone who can write its directory. Both sides
// therefore ask the kernel who the peer is (SO_PEERCRED): the server serves only its own user
// (and root), a client talks only to a server of its own user.
#include <sys/types.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "core/error.hpp"
#include "daemon/control_replies.hpp"

namespace agent {

constexpr std::size_t kControlMaxLine = 64 * 1024;
// A waiting client hears from the agent at least this often (a "heartbeat" event)...
constexpr std::chrono::seconds kControlHeartbeat{10};
// ...and gives up when it has heard nothing for this long.
constexpr std::chrono::seconds kControlReplyTimeout{60};
constexpr std::chrono::seconds kControlConnectTimeout{10};

// control.socket, or control.sock in state_dir when it is not set.
std::string control_socket_path(const AgentConfig& config);

struct PeerIdentity {
  pid_t pid = 0;
  uid_t uid = 0;
};
// Who is on the other end of a connected Unix socket.
std::optional<PeerIdentity> peer_identity(int fd);
// "postgres (uid 26)", or "uid 26" for a user without a name.
std::string describe_user(uid_t uid);

// The client's connection. No value: nobody listens there (no socket file, or a stale one);
// the caller may then do the work itself. An error: something is there but does not answer
// in time or is not an agent of this user; the caller must not act as if no agent ran.
Result<std::optional<int>> connect_control_socket(const std::string& path,
                                                  std::chrono::seconds timeout = kControlConnectTimeout);
Status send_json_line(int fd, const nlohmann::json& message);
// The next line as JSON; nothing at end of stream. Gives up after `timeout` without a byte.
Result<std::optional<nlohmann::json>> read_json_line(int fd, std::string& buffer,
                                                     std::chrono::seconds timeout = kControlReplyTimeout);
// The next reply, typed (control_replies.hpp); nothing at end of stream.
Result<std::optional<ControlReplyMessage>> read_control_reply(
    int fd, std::string& buffer, std::chrono::seconds timeout = kControlReplyTimeout);

}  // namespace agent
