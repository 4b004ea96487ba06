#include "daemon/loop_timers.hpp"

#include <boost/asio/steady_timer.hpp>

namespace agent {

namespace {

class AsioTimer final : public LoopTimer {
 public:
  explicit AsioTimer(boost::asio::io_context& io) : timer_(io) {}
  void start(std::chrono::milliseconds delay, std::function<void()> handler) override {
    timer_.expires_after(delay);
    timer_.async_wait([handler = std::move(handler)](const boost::system::error_code& ec) {
      if (!ec) handler();
    });
  }
  void cancel() override { timer_.cancel(); }

 private:
  boost::asio::steady_timer timer_;
};

class AsioTimers final : public LoopTimers {
 public:
  explicit AsioTimers(boost::asio::io_context& io) : io_(io) {}
  std::unique_ptr<LoopTimer> make_timer() override { return std::make_unique<AsioTimer>(io_); }

 private:
  boost::asio::io_context& io_;
};

}  // namespace

std::unique_ptr<LoopTimers> make_asio_timers(boost::asio::io_context& io) {
  return std::make_unique<AsioTimers>(io);
}

}  // namespace agent
