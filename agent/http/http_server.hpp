#pragma once
// The agent's one HTTP port, with Boost.Beast on the agent's event loop: read deadlines, a
// header size limit, no request bodies, and a cap on connections that always keeps room for a
// probe.
//
// A connection is either idle (waiting for the first byte of its next request: a keep-alive
// connection between requests, or a fresh one that has sent nothing yet) or busy (reading one
// request, or writing its response). When the cap is reached, a new connection is never
// refused: the connection idle longest is closed to make room, or, when none is idle, the one
// busy longest (on a pod network a real request is read in milliseconds, so a request still
// unread after seconds is a slow or hostile client). A kubelet probe on a fresh connection is
// therefore always served, whatever the other clients do.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "http/router.hpp"

namespace agent {

struct HttpConnections;  // the open connections, shared by the server and its sessions

struct HttpLimits {
  std::size_t max_connections = 64;
  std::size_t max_header_bytes = 8 * 1024;
  // An idle connection (nothing of a request received yet) is closed after this. Kubelet probes
  // open a connection per probe and Prometheus scrapes every 15-60 s, so keep-alive between
  // scrapes buys nothing; a short idle time frees slots without anyone noticing.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(5)};
  // From a request's first byte to its last header byte, whatever the client's pace: a client
  // trickling headers (slowloris) holds a slot at most this long.
  std::chrono::milliseconds request_timeout{std::chrono::seconds(5)};
  // Writing one response to a client that does not read.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(10)};
};

class HttpServer {
 public:
  using Handler = std::function<HttpAnswer(std::string_view method, std::string_view target)>;

  HttpServer(boost::asio::io_context& io, std::string listen, Handler handler, HttpLimits limits = {});
  ~HttpServer();
  Status start();
  // Stops accepting and closes every open connection. On the loop thread (or with it stopped).
  void stop();
  unsigned short port() const;

  // Counters, readable from any thread.
  std::size_t open_connections() const;
  std::uint64_t evicted_connections() const;  // closed to make room under the cap

  static constexpr std::size_t kMaxConnections = HttpLimits{}.max_connections;
  static constexpr std::size_t kMaxHeaderBytes = HttpLimits{}.max_header_bytes;

 private:
  void accept();
  void accept_later();

  std::string listen_;
  std::shared_ptr<Handler> handler_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  std::shared_ptr<HttpConnections> connections_;
};

}  // namespace agent
