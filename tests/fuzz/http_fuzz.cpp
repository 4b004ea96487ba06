// Fuzz target: the HTTP port (/metrics, /healthz, /readyz), open to anything that reaches the
// pod. The bytes of one connection go through what HttpSession in agent/http/http_server.cpp
// does: Boost.Beast's request parser with the server's header limit, no body and the same read
// buffer, requests one after another while the client keeps the connection alive, each routed
// (agent::route) and answered through Beast's serializer. The input's first byte, when below
// 0x20, makes the "network" deliver the rest that many plus one bytes at a time (a request split
// across reads); readable seeds are delivered whole. route() also gets the raw input split at
// its first space as method and target, bytes the parser would refuse included.
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <string>

#include "fuzz_check.hpp"
#include "http/http_server.hpp"
#include "http/router.hpp"

namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;

// A SyncReadStream over the input, `chunk` bytes per read.
class InputStream {
 public:
  InputStream(std::string_view data, std::size_t chunk) : data_(data), chunk_(chunk) {}

  template <typename MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, beast::error_code& ec) {
    if (data_.empty()) {
      ec = boost::asio::error::eof;
      return 0;
    }
    ec = {};
    const std::size_t n =
        boost::asio::buffer_copy(buffers, boost::asio::buffer(data_.data(), std::min(chunk_, data_.size())));
    data_.remove_prefix(n);
    return n;
  }
  template <typename MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    beast::error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw beast::system_error(ec);
    return n;
  }

 private:
  std::string_view data_;
  std::size_t chunk_;
};

// A SyncWriteStream that keeps what is written.
class OutputStream {
 public:
  template <typename ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, beast::error_code& ec) {
    ec = {};
    const std::size_t n = boost::asio::buffer_size(buffers);
    const std::size_t old = text.size();
    text.resize(old + n);
    boost::asio::buffer_copy(boost::asio::buffer(text.data() + old, n), buffers);
    return n;
  }
  template <typename ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers) {
    beast::error_code ec;
    return write_some(buffers, ec);
  }

  std::string text;
};

agent::RouteState route_state() {
  agent::RouteState state;
  state.now = std::chrono::steady_clock::now();
  state.health.config_loaded = true;
  state.health.last_loop_heartbeat = state.now;
  state.health.repository_readable = true;
  state.scrape = [] { return std::string("# TYPE agent_up gauge\nagent_up 1\n"); };
  return state;
}

void check_answer(std::string_view method, const agent::HttpAnswer& answer) {
  const bool allowed = method == "GET" || method == "HEAD";
  agent::fuzz::check(allowed == (answer.status != 405), "405 for GET or HEAD, or not for another method");
  agent::fuzz::check(
      answer.status == 200 || answer.status == 404 || answer.status == 405 || answer.status == 503,
      "a status the router does not give");
  agent::fuzz::check(!answer.body.empty(), "an answer without a body");
}

// HttpSession::respond, into `out`.
void respond(OutputStream& out, const agent::HttpAnswer& answer, bool keep_alive, unsigned version,
             bool head) {
  http::response<http::string_body> response;
  response.version(version);
  response.result(answer.status);
  response.set(http::field::content_type, answer.content_type);
  response.set(http::field::server, "agent");
  response.keep_alive(keep_alive);
  response.body() = head ? std::string() : answer.body;
  response.prepare_payload();
  if (head) response.content_length(answer.body.size());
  beast::error_code ec;
  out.text.clear();
  http::write(out, response, ec);
  agent::fuzz::check(!ec, "the answer cannot be written", ec.message());
  agent::fuzz::check(out.text.rfind("HTTP/", 0) == 0, "an answer that is not HTTP", out.text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = agent::fuzz::as_text(data, size);
  static const agent::RouteState state = route_state();

  const std::size_t space = input.find(' ');
  const std::string_view raw_method = input.substr(0, space);
  const std::string_view raw_target = space == std::string_view::npos ? "" : input.substr(space + 1);
  check_answer(raw_method, agent::route(raw_method, raw_target, state));

  std::size_t chunk = input.size() + 1;
  if (!input.empty() && static_cast<unsigned char>(input.front()) < 0x20) {
    chunk = static_cast<unsigned char>(input.front()) + 1u;
    input.remove_prefix(1);
  }
  InputStream stream(input, chunk);
  OutputStream out;
  beast::flat_buffer buffer{agent::HttpServer::kMaxHeaderBytes * 2};
  for (int request_count = 0; request_count < 64; ++request_count) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(agent::HttpServer::kMaxHeaderBytes));
    parser.body_limit(0);
    beast::error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::header_limit || ec == http::error::body_limit ||
        ec == http::error::buffer_overflow) {
      respond(out, {431, "text/plain; charset=utf-8", "request too large\n"}, false, 11, false);
      break;
    }
    if (ec) break;
    const auto& request = parser.get();
    const std::string_view method(request.method_string().data(), request.method_string().size());
    const std::string_view target(request.target().data(), request.target().size());
    const agent::HttpAnswer answer = agent::route(method, target, state);
    check_answer(method, answer);
    respond(out, answer, request.keep_alive(), request.version(), request.method() == http::verb::head);
    if (!request.keep_alive()) break;
  }
  return 0;
}
