#include "pg/recovery_log.hpp"

namespace agent {

void RecoveryLog::feed(std::string_view line) {
  std::lock_guard lock(mutex_);
  ++facts_.lines;
  if (line.find("recovery stopping ") != std::string_view::npos) {
    facts_.target_reached = true;
    const auto at = line.find("recovery stopping ");
    facts_.stop_detail = std::string(line.substr(at));
  }
  if (line.find("pausing at the end of recovery") != std::string_view::npos) facts_.paused_at_target = true;
  if (line.find("recovery ended before configured recovery target was reached") != std::string_view::npos)
    facts_.ended_before_target = true;
  static constexpr std::string_view kLastCompleted = "last completed transaction was at log time ";
  if (const auto at = line.find(kLastCompleted); at != std::string_view::npos)
    facts_.last_completed_transaction = std::string(line.substr(at + kLastCompleted.size()));
  if (line.find("FATAL:") != std::string_view::npos || line.find("PANIC:") != std::string_view::npos)
    facts_.last_fatal = std::string(line);
}

RecoveryLogFacts RecoveryLog::facts() const {
  std::lock_guard lock(mutex_);
  return facts_;
}

}  // namespace agent
