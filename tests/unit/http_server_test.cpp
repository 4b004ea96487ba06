// The HTTP server on real loopback sockets: a probe on a fresh connection is answered within a
// second however the other clients hold the connection slots (keep-alive idlers, busy
// keep-alive clients, slowloris), and the idle and request deadlines close what they should.
#include "http/http_server.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <future>
#include <optional>
#include <thread>
#include <vector>

namespace agent {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

struct Response {
  int status = 0;
  std::string body;
};

// A blocking loopback client whose every wait is bounded by a deadline.
class Client {
 public:
  explicit Client(unsigned short port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }

  bool connected() const { return fd_ >= 0; }

  bool send(std::string_view data) {
    while (fd_ >= 0 && !data.empty()) {
      const auto sent = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (sent <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(sent));
    }
    return fd_ >= 0;
  }

  // One response (status line, headers with Content-Length, body); nothing on close, error or
  // deadline.
  std::optional<Response> read_response(Clock::time_point deadline) {
    std::size_t end = 0;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!fill(deadline)) return std::nullopt;
    const std::string head = buffer_.substr(0, end + 4);
    Response response;
    if (head.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
    response.status = std::stoi(head.substr(9, 3));
    std::size_t length = 0;
    if (const auto at = head.find("Content-Length: "); at != std::string::npos)
      length = std::stoul(head.substr(at + 16));
    while (buffer_.size() < end + 4 + length)
      if (!fill(deadline)) return std::nullopt;
    response.body = buffer_.substr(end + 4, length);
    buffer_.erase(0, end + 4 + length);
    return response;
  }

  std::optional<Response> get(std::string_view path, bool keep_alive, Clock::time_point deadline) {
    const std::string request = "GET " + std::string(path) + " HTTP/1.1\r\nHost: agent\r\n" +
                                (keep_alive ? "" : "Connection: close\r\n") + "\r\n";
    if (!send(request)) return std::nullopt;
    return read_response(deadline);
  }

  // True when the server closed the connection (end of stream or reset) before the deadline.
  bool closed_by_server(Clock::time_point deadline) {
    while (fd_ >= 0) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, remaining_ms(deadline)) <= 0) return false;
      char chunk[4096];
      const auto got = ::recv(fd_, chunk, sizeof chunk, 0);
      if (got <= 0) return true;
    }
    return false;
  }

  // Without waiting: has the server closed it yet?
  bool closed_now() { return closed_by_server(Clock::now()); }

 private:
  bool fill(Clock::time_point deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (fd_ < 0 || ::poll(&p, 1, remaining_ms(deadline)) <= 0) return false;
    char chunk[16 * 1024];
    const auto got = ::recv(fd_, chunk, sizeof chunk, 0);
    if (got <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(got));
    return true;
  }

  int fd_ = -1;
  std::string buffer_;
};

// What the agent answers, minus the agent: the real router over a healthy state.
HttpAnswer answer(std::string_view method, std::string_view target) {
  RouteState state;
  state.now = Clock::now();
  state.health.config_loaded = true;
  state.health.last_loop_heartbeat = state.now;
  state.scrape = [] { return std::string(2000, '#') + "\n"; };
  return route(method, target, state);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpLimits limits = {}) {
    server_ = std::make_unique<HttpServer>(io_, "127.0.0.1:0", answer, limits);
    ASSERT_TRUE(static_cast<bool>(server_->start()));
    port_ = server_->port();
    ASSERT_NE(port_, 0);
    loop_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (loop_.joinable()) {
      io_.stop();
      loop_.join();
    }
    server_.reset();
  }

  // Waits (bounded) until the server holds exactly `count` connections.
  bool open_becomes(std::size_t count, milliseconds within = milliseconds(2000)) {
    const auto deadline = Clock::now() + within;
    while (server_->open_connections() != count) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(milliseconds(1));
    }
    return true;
  }

  // A probe as the kubelet sends it: a fresh connection, one GET, answered within a second.
  void expect_probe_answered(int round) {
    const auto begin = Clock::now();
    Client probe(port_);
    ASSERT_TRUE(probe.connected()) << "round " << round;
    const auto response = probe.get("/healthz", false, begin + seconds(1));
    const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - begin);
    ASSERT_TRUE(response.has_value()) << "round " << round << ": no answer within 1 s";
    EXPECT_EQ(response->status, 200) << "round " << round;
    EXPECT_LT(took, milliseconds(1000)) << "round " << round;
  }

  boost::asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  std::thread loop_;
  unsigned short port_ = 0;
};

constexpr std::size_t kCap = HttpServer::kMaxConnections;
constexpr int kProbes = 20;

TEST_F(HttpServerTest, ProbeIsServedWhileKeepAliveClientsHoldEverySlot) {
  ASSERT_EQ(kCap, 64u);
  // Long idle timeout: here the slots are freed by eviction alone.
  start({.idle_timeout = seconds(60)});
  std::vector<std::unique_ptr<Client>> held;
  for (std::size_t i = 0; i < kCap; ++i) {
    held.push_back(std::make_unique<Client>(port_));
    const auto response = held.back()->get("/metrics", true, Clock::now() + seconds(2));
    ASSERT_TRUE(response && response->status == 200) << "client " << i;
  }
  ASSERT_TRUE(open_becomes(kCap));
  for (int round = 0; round < kProbes; ++round) {
    expect_probe_answered(round);
    EXPECT_EQ(server_->evicted_connections(), static_cast<std::uint64_t>(round + 1));
    // Back to the cap with one more keep-alive client once the probe's connection is gone.
    ASSERT_TRUE(open_becomes(kCap - 1)) << server_->open_connections();
    held.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(held.back()->get("/metrics", true, Clock::now() + seconds(2)));
    ASSERT_TRUE(open_becomes(kCap));
  }
  // The connections idle longest were the ones closed, in order; the others still work.
  for (std::size_t i = 0; i < held.size(); ++i) {
    if (i < static_cast<std::size_t>(kProbes))
      EXPECT_TRUE(held[i]->closed_by_server(Clock::now() + seconds(1))) << "client " << i;
    else
      EXPECT_FALSE(held[i]->closed_now()) << "client " << i;
  }
  const auto later = held.back()->get("/healthz", true, Clock::now() + seconds(1));
  ASSERT_TRUE(later.has_value());
  EXPECT_EQ(later->status, 200);
  EXPECT_LE(server_->open_connections(), kCap);
}

TEST_F(HttpServerTest, ProbeIsServedWhileKeepAliveClientsPollEverySecond) {
  start();
  std::vector<std::unique_ptr<Client>> clients;
  for (std::size_t i = 0; i < kCap; ++i) {
    clients.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(clients.back()->get("/metrics", true, Clock::now() + seconds(2))) << "client " << i;
  }
  ASSERT_TRUE(open_becomes(kCap));
  // Each client sends a GET every second, spread over the second, and reconnects when closed.
  std::atomic<bool> stop{false};
  std::atomic<int> served{0};
  std::thread pollers([&] {
    const auto begin = Clock::now();
    const auto give_up = begin + seconds(10);
    std::vector<Clock::time_point> due(kCap);
    for (std::size_t i = 0; i < kCap; ++i) due[i] = begin + milliseconds(1000 * i / kCap);
    while (!stop && Clock::now() < give_up) {
      for (std::size_t i = 0; i < kCap && !stop; ++i) {
        if (Clock::now() < due[i]) continue;
        due[i] += seconds(1);
        auto response = clients[i]->get("/metrics", true, Clock::now() + seconds(1));
        if (!response) {  // closed to make room: a keep-alive client reconnects
          clients[i] = std::make_unique<Client>(port_);
          response = clients[i]->get("/metrics", true, Clock::now() + seconds(1));
        }
        if (response && response->status == 200) ++served;
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
  });
  for (int round = 0; round < kProbes; ++round) {
    expect_probe_answered(round);
    std::this_thread::sleep_for(milliseconds(100));
  }
  stop = true;
  pollers.join();
  EXPECT_GE(served.load(), static_cast<int>(kCap)) << "the pollers were served too";
  EXPECT_LE(server_->open_connections(), kCap);
}

TEST_F(HttpServerTest, ProbeIsServedWhileSlowClientsHoldEverySlot) {
  // Each slow client sent part of a request and waits: busy, never idle.
  start({.idle_timeout = seconds(60), .request_timeout = seconds(60)});
  const std::string partial = "GET /metrics HTTP/1.1\r\nHost: agent\r\n";
  std::vector<std::unique_ptr<Client>> slow;
  const auto add_slow = [&] {
    slow.push_back(std::make_unique<Client>(port_));
    return slow.back()->send(partial);
  };
  for (std::size_t i = 0; i < kCap; ++i) ASSERT_TRUE(add_slow()) << "client " << i;
  ASSERT_TRUE(open_becomes(kCap));
  for (int round = 0; round < kProbes; ++round) {
    expect_probe_answered(round);
    ASSERT_TRUE(open_becomes(kCap - 1));
    ASSERT_TRUE(add_slow());
    ASSERT_TRUE(open_becomes(kCap));
  }
  EXPECT_EQ(server_->evicted_connections(), static_cast<std::uint64_t>(kProbes));
  // The oldest were closed.
  EXPECT_TRUE(slow.front()->closed_by_server(Clock::now() + seconds(1)));
  EXPECT_FALSE(slow.back()->closed_now());
}

TEST_F(HttpServerTest, TricklingClientIsCutOffAtTheRequestDeadline) {
  start({.request_timeout = milliseconds(500)});
  Client slowloris(port_);
  const auto begin = Clock::now();
  ASSERT_TRUE(slowloris.send("GET /metrics HTTP/1.1\r\n"));
  bool closed = false;
  // A header line every 100 ms keeps the connection busy but never finishes the request.
  for (int i = 0; i < 30 && !closed; ++i) {
    slowloris.send("X-Trickle: " + std::to_string(i) + "\r\n");
    closed = slowloris.closed_by_server(Clock::now() + milliseconds(100));
  }
  const auto took = Clock::now() - begin;
  EXPECT_TRUE(closed);
  EXPECT_GE(took, milliseconds(450));
  EXPECT_LT(took, milliseconds(1500));
  EXPECT_TRUE(open_becomes(0));
}

TEST_F(HttpServerTest, IdleConnectionsAreClosedAfterTheIdleTimeout) {
  start({.idle_timeout = milliseconds(300)});
  Client silent(port_);  // connects, never sends
  Client keep_alive(port_);
  const auto begin = Clock::now();
  const auto response = keep_alive.get("/healthz", true, begin + seconds(1));
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ(response->status, 200);
  EXPECT_TRUE(silent.closed_by_server(begin + seconds(2)));
  EXPECT_TRUE(keep_alive.closed_by_server(begin + seconds(2)));
  EXPECT_GE(Clock::now() - begin, milliseconds(250));
  EXPECT_TRUE(open_becomes(0));
}

TEST_F(HttpServerTest, ServesPipelinedRequestsInOrder) {
  start();
  Client client(port_);
  ASSERT_TRUE(client.send(
      "GET /healthz HTTP/1.1\r\nHost: agent\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: agent\r\n\r\n"));
  const auto first = client.read_response(Clock::now() + seconds(1));
  const auto second = client.read_response(Clock::now() + seconds(1));
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(second->status, 404);
}

TEST_F(HttpServerTest, RefusesOversizedHeadersAndGoesOn) {
  start();
  Client big(port_);
  ASSERT_TRUE(big.send("GET /metrics HTTP/1.1\r\nHost: agent\r\nX-Filler: " + std::string(32 * 1024, 'a') +
                       "\r\n\r\n"));
  const auto refused = big.read_response(Clock::now() + seconds(1));
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 431);
  expect_probe_answered(0);
}

TEST_F(HttpServerTest, StopClosesOpenConnections) {
  start();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(clients.back()->get("/healthz", true, Clock::now() + seconds(1)));
  }
  ASSERT_TRUE(open_becomes(3));
  std::promise<void> stopped;
  boost::asio::post(io_, [&] {
    server_->stop();
    stopped.set_value();
  });
  ASSERT_EQ(stopped.get_future().wait_for(seconds(1)), std::future_status::ready);
  for (auto& client : clients) EXPECT_TRUE(client->closed_by_server(Clock::now() + seconds(1)));
  EXPECT_EQ(server_->open_connections(), 0u);
  Client late(port_);
  EXPECT_FALSE(late.connected() && late.get("/healthz", false, Clock::now() + milliseconds(300)));
}

}  // namespace
}  // namespace agent
