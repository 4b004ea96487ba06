#include "core/clock.hpp"

#include "core/cancel.hpp"

namespace agent {

std::chrono::system_clock::time_point SystemClock::now() const {
  return std::chrono::system_clock::now();
}

std::chrono::steady_clock::time_point SystemClock::steady_now() const {
  return std::chrono::steady_clock::now();
}

bool SystemClock::sleep_for(std::chrono::milliseconds duration, const CancelToken& cancel) {
  return !cancel.wait_for(duration);
}

}  // namespace agent
