#pragma once
// The one throttle for progress lines on long work: at most one line per interval, so a
// restore, a replay or a dump says it is alive without flooding the log.
#include <chrono>

namespace agent {

class LogThrottle {
 public:
  // Every progress line of the agent waits this long after the previous one (or the start).
  static constexpr std::chrono::seconds kProgressInterval{10};

  explicit LogThrottle(std::chrono::steady_clock::time_point start,
                       std::chrono::steady_clock::duration interval = kProgressInterval)
      : next_(start + interval), interval_(interval) {}
  // True when a line may go out at `now`; the next one then waits a whole interval.
  bool due(std::chrono::steady_clock::time_point now) {
    if (now < next_) return false;
    next_ = now + interval_;
    return true;
  }

 private:
  std::chrono::steady_clock::time_point next_;
  std::chrono::steady_clock::duration interval_;
};

}  // namespace agent
