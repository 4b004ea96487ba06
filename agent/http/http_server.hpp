#pragma once
// The agent's one HTTP port, with Boost.Beast on the agent's event loop: read deadlines, a
// header size limit, no request bodies, and a cap on connections.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "http/router.hpp"

namespace agent {

class HttpServer {
 public:
  using Handler = std::function<HttpAnswer(std::string_view method, std::string_view target)>;

  HttpServer(boost::asio::io_context& io, std::string listen, Handler handler);
  ~HttpServer();
  Status start();
  void stop();
  unsigned short port() const;

  static constexpr std::size_t kMaxConnections = 64;
  static constexpr std::size_t kMaxHeaderBytes = 8 * 1024;
  static constexpr std::chrono::seconds kReadTimeout{10};

 private:
  void accept();

  std::string listen_;
  std::shared_ptr<Handler> handler_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::shared_ptr<std::size_t> active_;
};

}  // namespace agent
