#include "daemon/control_protocol.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace agent {

Result<int> connect_control_socket(const std::string& path) {
  sockaddr_un address{};
  if (path.size() >= sizeof address.sun_path)
    return make_error(ErrorKind::usage, "control socket path " + path + " is too long");
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(ErrorKind::environment, std::string("socket: ") + std::strerror(errno));
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    const int saved = errno;
    close(fd);
    return make_error(ErrorKind::environment,
                      "no agent is running on " + path + " (" + std::strerror(saved) + ")",
                      "start it with `agent run`, or check control.socket in the config");
  }
  return fd;
}

Status send_json_line(int fd, const nlohmann::json& message) {
  const std::string line = message.dump() + "\n";
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = send(fd, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return make_error(ErrorKind::environment, std::string("control socket: ") + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
  return {};
}

Result<std::optional<nlohmann::json>> read_json_line(int fd, std::string& buffer) {
  for (;;) {
    const auto newline = buffer.find('\n');
    if (newline != std::string::npos) {
      const std::string line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      auto parsed = nlohmann::json::parse(line, nullptr, false);
      if (parsed.is_discarded())
        return make_error(ErrorKind::external_tool, "the agent sent a malformed reply");
      return std::optional<nlohmann::json>(std::move(parsed));
    }
    if (buffer.size() > kControlMaxLine)
      return make_error(ErrorKind::external_tool, "the agent sent an overlong reply");
    char chunk[4096];
    const ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return make_error(ErrorKind::environment, std::string("control socket: ") + std::strerror(errno));
    if (n == 0) return std::optional<nlohmann::json>();
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
}

}  // namespace agent
