#include "daemon/control_server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <deque>

#include "core/log.hpp"
#include "daemon/control_protocol.hpp"

namespace agent {

using boost::asio::local::stream_protocol;

namespace {

// Replies waiting to be written beyond this mean the client does not read: it is dropped.
constexpr std::size_t kMaxOutbox = 256;

}  // namespace

class ControlSession : public std::enable_shared_from_this<ControlSession> {
 public:
  ControlSession(stream_protocol::socket socket, ControlHandler& handler)
      : socket_(std::move(socket)),
        request_timer_(socket_.get_executor()),
        write_timer_(socket_.get_executor()),
        heartbeat_timer_(socket_.get_executor()),
        buffer_(kControlMaxRequestBytes + 1),
        handler_(handler) {}

  void start() {
    // A client that connects and says nothing must not hold a session open for long.
    request_timer_.expires_after(ControlServer::kRequestTimeout);
    request_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec && !self->got_request_) self->close();
    });
    boost::asio::async_read_until(socket_, buffer_, '\n',
                                  [self = shared_from_this()](const boost::system::error_code& ec,
                                                              std::size_t) { self->on_request(ec); });
  }

  // Connected and still waiting for its request line: the first to go when room is needed.
  bool idle() const { return !got_request_ && !closed_; }
  bool closed() const { return closed_; }

  void reply(const ControlReplyMessage& reply_message, bool last) {
    const nlohmann::json message = control_reply_json(reply_message);
    if (closed_ || close_after_) return;
    if (outbox_.size() >= kMaxOutbox) return close();
    // Replies may quote annotation values, which may be any bytes: invalid UTF-8 is replaced,
    // never a reason to throw.
    outbox_.push_back(message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    close_after_ = last;
    if (!last) keep_alive();
    if (outbox_.size() == 1) write_next();
  }

  void refuse(const Error& error) { reply(RefusedReply{reply_error(error)}, true); }

  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    request_timer_.cancel();
    write_timer_.cancel();
    heartbeat_timer_.cancel();
    socket_.shutdown(stream_protocol::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  // After the last reply: stop sending, and read and drop what the client still sends (the rest
  // of an overlong request) before closing. Closing with unread input would reset the
  // connection, and the client would see "connection reset" instead of the reply.
  void linger() {
    boost::system::error_code ignored;
    socket_.shutdown(stream_protocol::socket::shutdown_send, ignored);
    request_timer_.expires_after(std::chrono::seconds(2));
    request_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->close();
    });
    drain();
  }

  void drain() {
    socket_.async_read_some(boost::asio::buffer(discard_),
                            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                              if (ec || self->closed_) return self->close();
                              self->drain();
                            });
  }

  void on_request(const boost::system::error_code& ec) {
    got_request_ = true;
    request_timer_.cancel();
    if (closed_) return;
    if (ec) {
      if (ec == boost::asio::error::not_found)  // the limit was hit before a newline
        refuse(make_error(ErrorKind::usage,
                          "request longer than " + std::to_string(kControlMaxRequestBytes) + " bytes"));
      else
        close();  // the client went away, or the deadline closed it
      return;
    }
    std::istream stream(&buffer_);
    std::string line;
    std::getline(stream, line);
    // One request may fail; the server never does.
    try {
      dispatch(line);
    } catch (const std::exception& e) {
      log::get("control")->error("request failed with an unexpected exception: {}", e.what());
      refuse(make_error(ErrorKind::internal, std::string("the agent failed on this request: ") + e.what(),
                        "this is a bug in the agent; the agent goes on running"));
    }
  }

  void dispatch(const std::string& line) {
    auto request = parse_control_request(line);
    if (!request) {
      log::get("control")->warn("request refused: {}", request.error().message);
      return refuse(request.error());
    }
    auto self = shared_from_this();
    const ControlReply send = [self](const ControlReplyMessage& message, bool last) {
      self->reply(message, last);
    };
    if (std::holds_alternative<StatusCommand>(*request))
      reply(StatusReply{handler_.status()}, true);
    else if (const auto* backup = std::get_if<BackupCommand>(&*request))
      handler_.backup(*backup, send);
    else if (std::holds_alternative<DumpStopCommand>(*request))
      handler_.dump_stop(send);
    else if (const auto* drill = std::get_if<DrillCommand>(&*request))
      handler_.drill(*drill, send);
    else
      handler_.dump(std::get<DumpCommand>(*request), send);
  }

  // While a client waits for a job it hears from us regularly, so that its own deadline only
  // fires when the agent is truly gone or stuck.
  void keep_alive() {
    if (heartbeat_armed_) return;
    heartbeat_armed_ = true;
    heartbeat_timer_.expires_after(kControlHeartbeat);
    heartbeat_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      self->heartbeat_armed_ = false;
      if (ec || self->closed_ || self->close_after_) return;
      self->reply(HeartbeatReply{}, false);
    });
  }

  void write_next() {
    // The deadline belongs to this write only: a timer that already fired for an earlier,
    // finished write must not close the session (hence the generation).
    const std::uint64_t generation = ++write_generation_;
    write_timer_.expires_after(ControlServer::kWriteTimeout);
    write_timer_.async_wait([self = shared_from_this(), generation](const boost::system::error_code& ec) {
      if (!ec && self->write_generation_ == generation && self->writing_) self->close();  // not reading
    });
    writing_ = true;
    boost::asio::async_write(socket_, boost::asio::buffer(outbox_.front()),
                             [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                               self->writing_ = false;
                               self->write_timer_.cancel();
                               // A client that went away (a dropped `oc exec`) does not stop the job.
                               if (ec || self->closed_) return self->close();
                               self->outbox_.pop_front();
                               if (!self->outbox_.empty()) return self->write_next();
                               if (self->close_after_) self->linger();
                             });
  }

  stream_protocol::socket socket_;
  boost::asio::steady_timer request_timer_;
  boost::asio::steady_timer write_timer_;
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::streambuf buffer_;
  ControlHandler& handler_;
  std::deque<std::string> outbox_;
  bool close_after_ = false;
  bool got_request_ = false;
  bool closed_ = false;
  bool heartbeat_armed_ = false;
  bool writing_ = false;
  std::array<char, 4096> discard_{};
  std::uint64_t write_generation_ = 0;
};

ControlServer::ControlServer(boost::asio::io_context& io, std::string path, ControlHandler& handler)
    : path_(std::move(path)), handler_(handler), acceptor_(io), retry_timer_(io) {}

ControlServer::~ControlServer() {
  stop();
}

Status ControlServer::start() {
  struct stat existing {};
  if (lstat(path_.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode))
      return make_error(ErrorKind::environment, path_ + " exists and is not a socket",
                        "give control.socket a path of its own (by default it is in state_dir)");
    auto other = connect_control_socket(path_, std::chrono::seconds(2));
    if (other && *other) {
      close(**other);
      return make_error(ErrorKind::environment, "another agent is already running on " + path_,
                        "stop it first, or give this one another control.socket");
    }
    if (!other)  // something is there, and it is not ours
      return make_error(ErrorKind::environment,
                        "cannot take " + path_ + " (the socket file belongs to " +
                            describe_user(existing.st_uid) + "): " + other.error().message,
                        "give control.socket a path in a directory only the agent's user can write "
                        "(the default, in state_dir, is one)");
    // Nobody answers: a stale socket of an agent that died. Only its owner may replace it.
    if (existing.st_uid != geteuid())
      return make_error(ErrorKind::environment,
                        "a stale control socket " + path_ + " belongs to " + describe_user(existing.st_uid) +
                            ", not to " + describe_user(geteuid()),
                        "remove it as that user, or give control.socket another path");
    unlink(path_.c_str());
  }
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
  struct stat bound {};
  if (lstat(path_.c_str(), &bound) == 0) bound_file_ = {bound.st_dev, bound.st_ino};
  started_ = true;
  log::get("control")->info("listening on {}", path_);
  accept();
  return {};
}

void ControlServer::stop() {
  if (!started_) return;
  started_ = false;
  boost::system::error_code ignored;
  retry_timer_.cancel();
  acceptor_.close(ignored);
  // Only the socket file this server bound is removed, never one another agent has bound since.
  struct stat existing {};
  if (lstat(path_.c_str(), &existing) == 0 && S_ISSOCK(existing.st_mode) &&
      std::pair{existing.st_dev, existing.st_ino} == bound_file_)
    unlink(path_.c_str());
}

std::size_t ControlServer::sessions() const {
  std::size_t open = 0;
  for (const auto& weak : sessions_)
    if (const auto live = weak.lock(); live && !live->closed()) ++open;
  return open;
}

void ControlServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, stream_protocol::socket socket) {
    if (!started_ || ec == boost::asio::error::operation_aborted) return;
    if (ec) {
      // EMFILE and friends: the listening socket stays readable, so an immediate retry would
      // spin. Back off up to a second; connections wait in the backlog meanwhile.
      if (retry_delay_.count() == 0)
        log::get("control")->warn("cannot accept connections: {}; retrying", ec.message());
      retry_delay_ = std::min(std::chrono::milliseconds(1000),
                              std::max(std::chrono::milliseconds(50), retry_delay_ * 2));
      retry_timer_.expires_after(retry_delay_);
      retry_timer_.async_wait([this](const boost::system::error_code& timer_ec) {
        if (!timer_ec && started_) accept();
      });
      return;
    }
    if (retry_delay_.count() != 0) log::get("control")->info("accepting connections again");
    retry_delay_ = std::chrono::milliseconds(0);
    accept();  // first: whatever happens to this connection, the next one is taken
    try {
      admit(std::move(socket));
    } catch (const std::exception& e) {
      log::get("control")->error("a connection failed with an unexpected exception: {}", e.what());
    }
  });
}

void ControlServer::admit(stream_protocol::socket socket) {
  const auto peer = peer_identity(socket.native_handle());
  auto session = std::make_shared<ControlSession>(std::move(socket), handler_);
  if (!peer || (peer->uid != geteuid() && peer->uid != 0)) {
    log::get("control")->warn("refused a connection from {}",
                              peer ? describe_user(peer->uid) + " (pid " + std::to_string(peer->pid) + ")"
                                   : std::string("a peer whose user cannot be told"));
    return session->refuse(
        make_error(ErrorKind::usage, "this agent serves only its own user, " + describe_user(geteuid())));
  }
  // A closed session may live on while a job it waited for runs; it holds no slot.
  sessions_.remove_if([](const std::weak_ptr<ControlSession>& weak) {
    const auto live = weak.lock();
    return !live || live->closed();
  });
  if (sessions_.size() >= kMaxSessions) {
    // Make room: the oldest connection that has not even sent its request goes first; when
    // every connection is busy (clients waiting for jobs), the newcomer is turned away.
    const auto oldest_idle = std::find_if(sessions_.begin(), sessions_.end(), [](const auto& weak) {
      const auto live = weak.lock();
      return live && live->idle();
    });
    if (oldest_idle == sessions_.end())
      return session->refuse(make_error(ErrorKind::environment,
                                        "the agent has " + std::to_string(kMaxSessions) + " connections open",
                                        "retry in a moment"));
    if (auto victim = oldest_idle->lock()) victim->close();
    sessions_.erase(oldest_idle);
  }
  sessions_.push_back(session);
  session->start();
}

}  // namespace agent
