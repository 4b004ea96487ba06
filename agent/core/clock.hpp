#pragma once
// The clock seam: everything that reads the time or waits goes through a Clock, so waits,
// deadlines and schedules are unit-tested on a fake clock in microseconds.
#include <chrono>

namespace agent {

class CancelToken;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point now() const = 0;
  virtual std::chrono::steady_clock::time_point steady_now() const = 0;
  // Sleeps for `duration` or until `cancel` fires; returns false when cancelled.
  virtual bool sleep_for(std::chrono::milliseconds duration, const CancelToken& cancel) = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override;
  std::chrono::steady_clock::time_point steady_now() const override;
  bool sleep_for(std::chrono::milliseconds duration, const CancelToken& cancel) override;
};

}  // namespace agent
