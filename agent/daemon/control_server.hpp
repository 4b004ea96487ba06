#pragma once
// The control socket of `agent run`: a Unix socket (mode 0600) on the event loop. It checks
// who connects, parses requests (control_api.hpp) and hands them to a handler; it never runs
// work itself.
//
// Nothing a client does can take it down: a peer of another user is refused; requests have a
// size limit and a read deadline; a client that does not read its replies is dropped after a
// write deadline; at most kMaxSessions connections are kept, the oldest idle one dropped to
// make room; when accept fails (out of file descriptors) it is retried with a backoff; a
// handler that throws fails only that request.
#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "core/error.hpp"
#include "daemon/control_api.hpp"
#include "daemon/control_replies.hpp"

namespace agent {

class ControlHandler {
 public:
  virtual ~ControlHandler() = default;
  virtual nlohmann::json status() = 0;
  virtual void backup(const BackupCommand& command, ControlReply reply) = 0;
  virtual void dump(const DumpCommand& command, ControlReply reply) = 0;
  virtual void dump_stop(ControlReply reply) = 0;
  virtual void drill(const DrillCommand& command, ControlReply reply) = 0;
};

class ControlSession;

class ControlServer {
 public:
  static constexpr std::size_t kMaxSessions = 64;
  static constexpr std::chrono::seconds kRequestTimeout{10};
  static constexpr std::chrono::seconds kWriteTimeout{30};

  ControlServer(boost::asio::io_context& io, std::string path, ControlHandler& handler);
  ~ControlServer();
  Status start();
  void stop();
  std::size_t sessions() const;

 private:
  void accept();
  void admit(boost::asio::local::stream_protocol::socket socket);

  std::string path_;
  ControlHandler& handler_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  std::chrono::milliseconds retry_delay_{0};
  std::list<std::weak_ptr<ControlSession>> sessions_;  // oldest first
  std::pair<dev_t, ino_t> bound_file_{0, 0};           // the socket file this server made
  bool started_ = false;
};

}  // namespace agent
