#include "daemon/control_server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <deque>

#include "core/log.hpp"
#include "daemon/control_protocol.hpp"

namespace agent {

namespace {

using boost::asio::local::stream_protocol;

// The fields of a dump request, each of the right JSON type, or nothing.
std::optional<DumpArguments> dump_arguments(const nlohmann::json& request) {
  DumpArguments a;
  if (!request.contains("target") || !request["target"].is_string()) return std::nullopt;
  a.target = request["target"];
  for (auto [key, field] : {std::pair{"database", &a.database}, std::pair{"output", &a.output},
                            std::pair{"scratch", &a.scratch}, std::pair{"set", &a.backup_set}}) {
    if (!request.contains(key)) continue;
    if (!request[key].is_string()) return std::nullopt;
    *field = request[key].get<std::string>();
  }
  if (request.contains("port")) {
    if (!request["port"].is_number_integer()) return std::nullopt;
    a.port = request["port"].get<int>();
  }
  a.overwrite = request.value("overwrite", false);
  return a;
}

class ControlSession : public std::enable_shared_from_this<ControlSession> {
 public:
  ControlSession(stream_protocol::socket socket, ControlHandler& handler)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        buffer_(kControlMaxLine),
        handler_(handler) {}

  void start() {
    // A client that connects and says nothing must not hold a session open forever.
    timer_.expires_after(std::chrono::seconds(10));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec && !self->got_request_) self->close();
    });
    boost::asio::async_read_until(socket_, buffer_, '\n',
                                  [self = shared_from_this()](const boost::system::error_code& ec,
                                                              std::size_t) { self->on_request(ec); });
  }

 private:
  void on_request(const boost::system::error_code& ec) {
    got_request_ = true;
    timer_.cancel();
    if (ec) {
      reply({{"ok", false}, {"error", "request line missing or longer than 64 KiB"}}, true);
      return;
    }
    std::istream stream(&buffer_);
    std::string line;
    std::getline(stream, line);
    const auto request = nlohmann::json::parse(line, nullptr, false);
    if (!request.is_object() || !request.contains("command") || !request["command"].is_string()) {
      reply({{"ok", false},
             {"error", "malformed request"},
             {"hint", "send one JSON object with a \"command\""}},
            true);
      return;
    }
    const std::string command = request["command"];
    auto self = shared_from_this();
    const ControlReply send = [self](const nlohmann::json& message, bool last) {
      self->reply(message, last);
    };
    if (command == "status") {
      reply({{"ok", true}, {"status", handler_.status()}}, true);
    } else if (command == "backup") {
      const auto type = parse_backup_type(request.value("type", std::string("full")));
      if (!type) {
        reply({{"ok", false}, {"error", "unknown backup type"}, {"hint", "use full, diff or incr"}}, true);
        return;
      }
      handler_.backup(*type, request.value("wait", false), send);
    } else if (command == "dump") {
      const auto arguments = dump_arguments(request);
      if (!arguments) {
        reply({{"ok", false}, {"error", "malformed dump request"}, {"exit_code", 2}}, true);
        return;
      }
      handler_.dump(*arguments, send);
    } else {
      reply({{"ok", false},
             {"error", "unknown command '" + command + "'"},
             {"hint", "use status, backup or dump"}},
            true);
    }
  }

  void reply(const nlohmann::json& message, bool last) {
    outbox_.push_back(message.dump() + "\n");
    close_after_ = close_after_ || last;
    if (outbox_.size() == 1) write_next();
  }

  void write_next() {
    boost::asio::async_write(socket_, boost::asio::buffer(outbox_.front()),
                             [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                               // A client that went away (a dropped `oc exec`) does not stop the job.
                               if (ec) return self->close();
                               self->outbox_.pop_front();
                               if (!self->outbox_.empty()) return self->write_next();
                               if (self->close_after_) self->close();
                             });
  }

  void close() {
    boost::system::error_code ignored;
    socket_.shutdown(stream_protocol::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  stream_protocol::socket socket_;
  boost::asio::steady_timer timer_;
  boost::asio::streambuf buffer_;
  ControlHandler& handler_;
  std::deque<std::string> outbox_;
  bool close_after_ = false;
  bool got_request_ = false;
};

}  // namespace

ControlServer::ControlServer(boost::asio::io_context& io, std::string path, ControlHandler& handler)
    : path_(std::move(path)), handler_(handler), acceptor_(io) {}

ControlServer::~ControlServer() {
  stop();
}

Status ControlServer::start() {
  // A socket file left by an agent that died is stale; one that answers is another agent.
  if (auto other = connect_control_socket(path_)) {
    close(*other);
    return make_error(ErrorKind::environment, "another agent is already running on " + path_,
                      "stop it first, or give this one another control.socket");
  }
  unlink(path_.c_str());
  boost::system::error_code ec;
  const mode_t old_mask = umask(0177);  // the socket is born 0600: only this user may talk to it
  acceptor_.open(stream_protocol(), ec);
  if (!ec) acceptor_.bind(stream_protocol::endpoint(path_), ec);
  umask(old_mask);
  if (!ec) acceptor_.listen(16, ec);
  if (ec)
    return make_error(ErrorKind::environment, "cannot listen on " + path_ + ": " + ec.message(),
                      "check that its directory exists and is writable");
  chmod(path_.c_str(), 0600);
  started_ = true;
  log::get("control")->info("listening on {}", path_);
  accept();
  return {};
}

void ControlServer::stop() {
  if (!started_) return;
  started_ = false;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  unlink(path_.c_str());
}

void ControlServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, stream_protocol::socket socket) {
    if (ec) return;  // closed
    std::make_shared<ControlSession>(std::move(socket), handler_)->start();
    accept();
  });
}

}  // namespace agent
