#include "daemon/control_protocol.hpp"

#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/files.hpp"

namespace agent {

namespace {

std::string seconds_text(std::chrono::seconds s) {
  return std::to_string(s.count()) + " s";
}

}  // namespace

std::string control_socket_path(const AgentConfig& config) {
  if (!config.control.socket.empty()) return config.control.socket;
  return config.state_dir + "/control.sock";
}

std::optional<PeerIdentity> peer_identity(int fd) {
  ucred credentials{};
  socklen_t length = sizeof credentials;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return std::nullopt;
  return PeerIdentity{credentials.pid, credentials.uid};
}

std::string describe_user(uid_t uid) {
  passwd entry{};
  passwd* found = nullptr;
  char buffer[4096];
  if (getpwuid_r(uid, &entry, buffer, sizeof buffer, &found) == 0 && found != nullptr)
    return std::string(found->pw_name) + " (uid " + std::to_string(uid) + ")";
  return "uid " + std::to_string(uid);
}

Result<std::optional<int>> connect_control_socket(const std::string& path, std::chrono::seconds timeout) {
  sockaddr_un address{};
  if (path.size() >= sizeof address.sun_path)
    return make_error(ErrorKind::usage, "control socket path " + path + " is too long",
                      "a Unix socket path has at most 107 bytes; set control.socket to a shorter one");
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(ErrorKind::environment, std::string("socket: ") + std::strerror(errno));
  // On a Unix socket, connect() waits while the listener's backlog is full (an agent that
  // cannot accept); SO_SNDTIMEO bounds that wait.
  timeval limit{static_cast<time_t>(timeout.count()), 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    const int saved = errno;
    close(fd);
    if (saved == ENOENT || saved == ECONNREFUSED) return std::optional<int>();  // nobody, or stale
    if (saved == EAGAIN || saved == EWOULDBLOCK || saved == EINPROGRESS)
      return make_error(
          ErrorKind::environment,
          "the agent on " + path + " did not accept the connection within " + seconds_text(timeout),
          "it may be out of file descriptors or stuck; see its log and /healthz, then retry");
    return make_error(ErrorKind::environment,
                      "cannot connect to the agent on " + path + ": " + std::strerror(saved),
                      "check control.socket in the config and the permissions of its directory");
  }
  const auto peer = peer_identity(fd);
  if (!peer || peer->uid != geteuid()) {
    close(fd);
    return make_error(ErrorKind::environment,
                      "the control socket " + path + " is served by " +
                          (peer ? describe_user(peer->uid) + " (pid " + std::to_string(peer->pid) + ")"
                                : std::string("a process whose user cannot be told")) +
                          ", not by this user, " + describe_user(geteuid()) + "; not talking to it",
                      "run the command as the agent's user, or point control.socket at the agent's own "
                      "socket (by default in its state_dir)");
  }
  return std::optional<int>(fd);
}

Status send_json_line(int fd, const nlohmann::json& message) {
  const std::string line = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const int error = write_all(fd, line.data(), line.size(), WriteTarget::to_socket());
  if (error == EAGAIN || error == EWOULDBLOCK)
    return make_error(ErrorKind::environment, "the agent does not read its control socket",
                      "it may be stuck; see its log and /healthz");
  if (error != 0)
    return make_error(ErrorKind::environment, std::string("control socket: ") + std::strerror(error));
  return {};
}

Result<std::optional<nlohmann::json>> read_json_line(int fd, std::string& buffer,
                                                     std::chrono::seconds timeout) {
  for (;;) {
    const auto newline = buffer.find('\n');
    if (newline != std::string::npos) {
      const std::string line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      auto parsed = nlohmann::json::parse(line, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object())
        return make_error(ErrorKind::external_tool, "the agent sent a malformed reply");
      return std::optional<nlohmann::json>(std::move(parsed));
    }
    if (buffer.size() > kControlMaxLine)
      return make_error(ErrorKind::external_tool, "the agent sent an overlong reply");
    pollfd readable{fd, POLLIN, 0};
    const int ready = poll(&readable, 1, static_cast<int>(timeout.count() * 1000));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0)
      return make_error(ErrorKind::environment, std::string("control socket: ") + std::strerror(errno));
    if (ready == 0)
      return make_error(ErrorKind::environment, "the agent did not answer within " + seconds_text(timeout),
                        "it may be stuck or out of file descriptors; see its log, `agent status` "
                        "later and /healthz");
    char chunk[4096];
    const ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return make_error(ErrorKind::environment, std::string("control socket: ") + std::strerror(errno));
    if (n == 0) return std::optional<nlohmann::json>();
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
}

Result<std::optional<ControlReplyMessage>> read_control_reply(int fd, std::string& buffer,
                                                              std::chrono::seconds timeout) {
  auto line = read_json_line(fd, buffer, timeout);
  if (!line) return line.error();
  if (!*line) return std::optional<ControlReplyMessage>();
  auto reply = parse_control_reply(**line);
  if (!reply) return reply.error();
  return std::optional<ControlReplyMessage>(std::move(*reply));
}

}  // namespace agent
