#pragma once
// Reads the temporary server's log lines for what SQL cannot tell: whether recovery stopped
// because it reached the target (a manual pg_wal_replay_pause() also reads "paused"), and,
// when the WAL ends first, the last time it could reach.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace agent {

struct RecoveryLogFacts {
  bool target_reached = false;             // "recovery stopping before/after ..."
  bool paused_at_target = false;           // "pausing at the end of recovery"
  bool ended_before_target = false;        // "recovery ended before configured recovery target was reached"
  std::optional<std::string> stop_detail;  // the "recovery stopping ..." line
  std::optional<std::string> last_completed_transaction;  // its "log time"
  std::optional<std::string> last_fatal;                  // last FATAL or PANIC line
  std::uint64_t lines = 0;
};

class RecoveryLog {
 public:
  void feed(std::string_view line);
  RecoveryLogFacts facts() const;

 private:
  mutable std::mutex mutex_;
  RecoveryLogFacts facts_;
};

}  // namespace agent
