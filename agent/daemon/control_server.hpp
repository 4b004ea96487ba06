#pragma once
// The control socket of `agent run`: a Unix socket (mode 0600) on the event loop. It parses
// requests and hands them to a handler; it never runs work itself.
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.hpp"
#include "jobs/backup_request.hpp"
#include "pipelines/dump_job.hpp"

namespace agent {

// Sends one reply line; `last` closes the connection after it.
using ControlReply = std::function<void(const nlohmann::json& message, bool last)>;

class ControlHandler {
 public:
  virtual ~ControlHandler() = default;
  virtual nlohmann::json status() = 0;
  virtual void backup(BackupType type, bool wait, ControlReply reply) = 0;
  virtual void dump(const DumpArguments& arguments, ControlReply reply) = 0;
};

class ControlServer {
 public:
  ControlServer(boost::asio::io_context& io, std::string path, ControlHandler& handler);
  ~ControlServer();
  Status start();
  void stop();

 private:
  void accept();

  std::string path_;
  ControlHandler& handler_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  bool started_ = false;
};

}  // namespace agent
