#pragma once
// A clock that only moves when told to, or when someone sleeps on it.
#include "core/cancel.hpp"
#include "core/clock.hpp"

namespace agent::testing {

class FakeClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override { return wall_; }
  std::chrono::steady_clock::time_point steady_now() const override { return steady_; }
  bool sleep_for(std::chrono::milliseconds duration, const CancelToken& cancel) override {
    if (cancel.cancelled()) return false;
    advance(duration);
    ++sleeps;
    if (on_sleep) on_sleep();
    return !cancel.cancelled();
  }
  void advance(std::chrono::milliseconds duration) {
    wall_ += duration;
    steady_ += duration;
  }
  void set_wall(std::chrono::system_clock::time_point t) { wall_ = t; }

  int sleeps = 0;
  std::function<void()> on_sleep;

 private:
  std::chrono::system_clock::time_point wall_{std::chrono::seconds(1'700'000'000)};
  std::chrono::steady_clock::time_point steady_{};
};

}  // namespace agent::testing
