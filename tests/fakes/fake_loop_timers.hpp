#pragma once
// Time for orchestration tests: a Clock and the event loop's timers on one fake time line.
// advance() moves time and fires, on the calling thread (the test's, which turns the loop),
// every timer that falls due, in deadline order. The clock may be read from job threads.
#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "core/cancel.hpp"
#include "core/clock.hpp"
#include "daemon/loop_timers.hpp"

namespace agent::testing {

class FakeLoopTime final : public Clock, public LoopTimers {
 public:
  std::chrono::system_clock::time_point now() const override {
    std::lock_guard lock(mutex_);
    return wall_start_ + elapsed_;
  }
  std::chrono::steady_clock::time_point steady_now() const override {
    std::lock_guard lock(mutex_);
    return std::chrono::steady_clock::time_point{} + elapsed_;
  }
  bool sleep_for(std::chrono::milliseconds duration, const CancelToken& cancel) override {
    // Job threads do not move the loop's time; a short real wait keeps them cancellable.
    return !cancel.wait_for(std::min(duration, std::chrono::milliseconds(5)));
  }
  void set_wall(std::chrono::system_clock::time_point t) {
    std::lock_guard lock(mutex_);
    wall_start_ = t - elapsed_;
  }

  std::unique_ptr<LoopTimer> make_timer() override { return std::make_unique<Timer>(*this); }

  // Moves time forward by `duration`, firing what falls due on the way.
  void advance(std::chrono::milliseconds duration) {
    const auto end = elapsed_now() + duration;
    for (;;) {
      Timer* next = nullptr;
      for (auto* timer : timers_)
        if (timer->armed && timer->deadline <= end && (!next || timer->deadline < next->deadline))
          next = timer;
      if (!next) break;
      {
        std::lock_guard lock(mutex_);
        elapsed_ = std::max(elapsed_, next->deadline);
      }
      next->armed = false;
      auto handler = std::move(next->handler);
      handler();
    }
    std::lock_guard lock(mutex_);
    elapsed_ = end;
  }
  std::size_t armed_timers() const {
    return static_cast<std::size_t>(
        std::count_if(timers_.begin(), timers_.end(), [](auto* t) { return t->armed; }));
  }

 private:
  struct Timer final : LoopTimer {
    explicit Timer(FakeLoopTime& owner) : time(owner) { time.timers_.push_back(this); }
    ~Timer() override { std::erase(time.timers_, this); }
    void start(std::chrono::milliseconds delay, std::function<void()> fire) override {
      deadline = time.elapsed_now() + delay;
      handler = std::move(fire);
      armed = true;
    }
    void cancel() override { armed = false; }
    FakeLoopTime& time;
    std::chrono::milliseconds deadline{0};
    std::function<void()> handler;
    bool armed = false;
  };

  std::chrono::milliseconds elapsed_now() const {
    std::lock_guard lock(mutex_);
    return elapsed_;
  }

  mutable std::mutex mutex_;
  std::chrono::system_clock::time_point wall_start_{std::chrono::seconds(1'700'000'000)};
  std::chrono::milliseconds elapsed_{0};
  std::vector<Timer*> timers_;  // loop thread only
};

}  // namespace agent::testing
