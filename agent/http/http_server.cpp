#include "http/http_server.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "core/log.hpp"

namespace agent {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, std::shared_ptr<HttpServer::Handler> handler,
              std::shared_ptr<std::size_t> active)
      : stream_(std::move(socket)), handler_(std::move(handler)), active_(std::move(active)) {
    ++*active_;
  }
  ~HttpSession() { --*active_; }

  void read() {
    parser_.emplace();
    parser_->header_limit(HttpServer::kMaxHeaderBytes);
    parser_->body_limit(0);  // no endpoint takes a body
    // A slow or silent client cannot hold the connection past the deadline.
    stream_.expires_after(HttpServer::kReadTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

 private:
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
    stream_.expires_after(HttpServer::kReadTimeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                        if (ec || !keep_alive) return self->close();
                        self->read();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{HttpServer::kMaxHeaderBytes * 2};
  std::optional<http::request_parser<http::empty_body>> parser_;
  http::response<http::string_body> response_;
  std::shared_ptr<HttpServer::Handler> handler_;
  std::shared_ptr<std::size_t> active_;
};

}  // namespace

HttpServer::HttpServer(boost::asio::io_context& io, std::string listen, Handler handler)
    : listen_(std::move(listen)),
      handler_(std::make_shared<Handler>(std::move(handler))),
      acceptor_(io),
      active_(std::make_shared<std::size_t>(0)) {}

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
  beast::error_code ignored;
  acceptor_.close(ignored);
}

unsigned short HttpServer::port() const {
  beast::error_code ec;
  const auto endpoint = acceptor_.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void HttpServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted) return;
    if (!ec) {
      if (*active_ >= kMaxConnections) {
        beast::error_code ignored;
        socket.close(ignored);  // over the cap: refuse rather than queue
      } else {
        std::make_shared<HttpSession>(std::move(socket), handler_, active_)->read();
      }
    }
    accept();
  });
}

}  // namespace agent
