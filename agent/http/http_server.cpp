#include "http/http_server.hpp"

#include <atomic>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <list>
#include <optional>

#include "core/log.hpp"

namespace agent {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {
class HttpSession;
}  // namespace

// Loop thread only, except the two counters.
struct HttpConnections {
  explicit HttpConnections(HttpLimits l) : limits(l) {}

  // The connection to close when the cap is reached: idle longest, else busy longest.
  HttpSession* victim() const;

  const HttpLimits limits;
  std::list<HttpSession*> open;
  bool stopped = false;
  std::atomic<std::size_t> count{0};
  std::atomic<std::uint64_t> evicted{0};
};

namespace {

enum class Phase { idle, busy };

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, std::shared_ptr<HttpServer::Handler> handler,
              std::shared_ptr<HttpConnections> connections)
      : stream_(std::move(socket)),
        buffer_(connections->limits.max_header_bytes * 2),
        handler_(std::move(handler)),
        connections_(std::move(connections)) {
    connections_->open.push_front(this);
    position_ = connections_->open.begin();
    registered_ = true;
    ++connections_->count;
  }
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;
  ~HttpSession() { forget(); }

  void start() { wait_for_request(); }

  // Idempotent; the pending operations then end with operation_aborted.
  void close() {
    if (closed_) return;
    closed_ = true;
    forget();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  Phase phase() const { return phase_; }
  Clock::time_point since() const { return since_; }

 private:
  const HttpLimits& limits() const { return connections_->limits; }

  void set_phase(Phase phase) {
    phase_ = phase;
    since_ = Clock::now();
  }

  // Idle: wait, for at most the idle timeout, for the first byte of the next request.
  void wait_for_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits().max_header_bytes));
    parser_->body_limit(0);                         // no endpoint takes a body
    if (buffer_.size() > 0) return read_request();  // pipelined: already here
    set_phase(Phase::idle);
    stream_.expires_after(limits().idle_timeout);
    stream_.async_read_some(buffer_.prepare(limits().max_header_bytes),
                            [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
                              if (self->closed_) return;
                              self->buffer_.commit(bytes);
                              if (ec) return self->close();
                              self->read_request();
                            });
  }

  // Busy: the whole request within one deadline, however slowly its bytes trickle in.
  void read_request() {
    set_phase(Phase::busy);
    stream_.expires_after(limits().request_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (self->closed_) return;
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout) return close();
    if (ec == http::error::header_limit || ec == http::error::body_limit ||
        ec == http::error::buffer_overflow)
      return respond({431, "text/plain; charset=utf-8", "request too large\n"}, false, 11);
    if (ec) return close();
    const auto& request = parser_->get();
    const HttpAnswer answer =
        (*handler_)(std::string_view(request.method_string().data(), request.method_string().size()),
                    std::string_view(request.target().data(), request.target().size()));
    respond(answer, request.keep_alive(), request.version(), request.method() == http::verb::head);
  }

  void respond(const HttpAnswer& answer, bool keep_alive, unsigned version, bool head = false) {
    response_ = {};
    response_.version(version);
    response_.result(answer.status);
    response_.set(http::field::content_type, answer.content_type);
    response_.set(http::field::server, "agent");
    response_.keep_alive(keep_alive);
    response_.body() = head ? std::string() : answer.body;
    response_.prepare_payload();
    if (head) response_.content_length(answer.body.size());
    stream_.expires_after(limits().write_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                        if (self->closed_) return;
                        if (ec || !keep_alive) return self->close();
                        self->wait_for_request();
                      });
  }

  void forget() {
    if (!registered_) return;
    registered_ = false;
    connections_->open.erase(position_);
    --connections_->count;
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  http::response<http::string_body> response_;
  std::shared_ptr<HttpServer::Handler> handler_;
  std::shared_ptr<HttpConnections> connections_;
  std::list<HttpSession*>::iterator position_;
  bool registered_ = false;
  bool closed_ = false;
  Phase phase_ = Phase::idle;
  Clock::time_point since_ = Clock::now();
};

}  // namespace

HttpSession* HttpConnections::victim() const {
  HttpSession* idle = nullptr;
  HttpSession* busy = nullptr;
  for (HttpSession* session : open) {
    HttpSession*& best = session->phase() == Phase::idle ? idle : busy;
    if (!best || session->since() < best->since()) best = session;
  }
  return idle ? idle : busy;
}

namespace {

// Closes the connection the cap can spare best; false when there is none.
bool evict_one(HttpConnections& connections, const char* why) {
  HttpSession* victim = connections.victim();
  if (!victim) return false;
  const auto held = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - victim->since());
  log::get("http")->debug("{}: closing the connection {} longest ({} ms)", why,
                          victim->phase() == Phase::idle ? "idle" : "busy", held.count());
  victim->close();
  ++connections.evicted;
  return true;
}

}  // namespace

HttpServer::HttpServer(boost::asio::io_context& io, std::string listen, Handler handler, HttpLimits limits)
    : listen_(std::move(listen)),
      handler_(std::make_shared<Handler>(std::move(handler))),
      acceptor_(io),
      retry_timer_(io),
      connections_(std::make_shared<HttpConnections>(limits)) {}

HttpServer::~HttpServer() {
  stop();
}

Status HttpServer::start() {
  const auto colon = listen_.rfind(':');
  std::string host = listen_.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  const auto port = static_cast<unsigned short>(std::stoi(listen_.substr(colon + 1)));
  beast::error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  if (ec)
    return make_error(ErrorKind::usage, "http.listen '" + listen_ + "': '" + host + "' is not an IP address");
  const tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec)
    return make_error(ErrorKind::environment, "cannot listen on " + listen_ + ": " + ec.message(),
                      "choose another http.listen, or stop what uses the port");
  log::get("http")->info("serving /metrics, /healthz and /readyz on {}:{}", host,
                         acceptor_.local_endpoint().port());
  accept();
  return {};
}

void HttpServer::stop() {
  connections_->stopped = true;
  beast::error_code ignored;
  acceptor_.close(ignored);
  retry_timer_.cancel();
  while (!connections_->open.empty()) connections_->open.front()->close();
}

unsigned short HttpServer::port() const {
  beast::error_code ec;
  const auto endpoint = acceptor_.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

std::size_t HttpServer::open_connections() const {
  return connections_->count.load();
}

std::uint64_t HttpServer::evicted_connections() const {
  return connections_->evicted.load();
}

void HttpServer::accept() {
  // The handlers hold the connections, not the server: after stop() they touch nothing else.
  acceptor_.async_accept([this, connections = connections_](beast::error_code ec, tcp::socket socket) {
    if (connections->stopped || ec == boost::asio::error::operation_aborted) return;
    if (ec) {
      // Out of file descriptors: give one back so the connection waiting (likely a probe) can
      // be taken. Whatever the error, retry after a pause instead of spinning on it.
      if (ec == boost::asio::error::no_descriptors ||
          ec == boost::system::errc::too_many_files_open_in_system)
        evict_one(*connections, "out of file descriptors");
      return accept_later();
    }
    // Never refuse: make room instead, so a probe on a fresh connection is always served.
    while (connections->open.size() >= connections->limits.max_connections &&
           evict_one(*connections, "connection cap reached")) {
    }
    std::make_shared<HttpSession>(std::move(socket), handler_, connections)->start();
    accept();
  });
}

void HttpServer::accept_later() {
  retry_timer_.expires_after(std::chrono::milliseconds(50));
  retry_timer_.async_wait([this, connections = connections_](const beast::error_code& ec) {
    if (connections->stopped || ec) return;
    accept();
  });
}

}  // namespace agent
