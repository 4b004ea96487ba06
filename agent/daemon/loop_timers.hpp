#pragma once
// The event loop's timers as a seam. The daemon's timed decisions (schedules, the grace
// period, the hard stop, the heartbeat) arm a LoopTimer, so orchestration tests run them on
// a fake clock instead of waiting in real time. Handlers run on the loop thread.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>

namespace agent {

class LoopTimer {
 public:
  virtual ~LoopTimer() = default;
  // Fires `handler` once after `delay`, replacing any pending start (which then never fires).
  virtual void start(std::chrono::milliseconds delay, std::function<void()> handler) = 0;
  // The pending handler never fires.
  virtual void cancel() = 0;
};

class LoopTimers {
 public:
  virtual ~LoopTimers() = default;
  virtual std::unique_ptr<LoopTimer> make_timer() = 0;
};

// Steady-clock timers on `io`.
std::unique_ptr<LoopTimers> make_asio_timers(boost::asio::io_context& io);

}  // namespace agent
