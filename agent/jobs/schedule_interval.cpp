#include "jobs/schedule_interval.hpp"

#include <algorithm>

namespace agent {

std::optional<std::chrono::seconds> longest_gap(const std::vector<const CronExpression*>& crons,
                                                const date::time_zone& zone, std::chrono::sys_seconds from,
                                                std::chrono::hours horizon) {
  const auto end = from + horizon;
  std::vector<std::chrono::sys_seconds> fires;
  for (const auto* cron : crons) {
    if (cron == nullptr) continue;
    auto at = from;
    // Every fire within the horizon, and at least two of each schedule.
    for (int taken = 0;; ++taken) {
      const auto next = next_fire(*cron, zone, at);
      if (!next || (*next > end && taken >= 2)) break;
      fires.push_back(*next);
      at = *next;
    }
  }
  std::sort(fires.begin(), fires.end());
  fires.erase(std::unique(fires.begin(), fires.end()), fires.end());
  if (fires.size() < 2) return std::nullopt;
  std::chrono::seconds longest{0};
  // Gaps that end beyond the horizon count only when the horizon held fewer than two fires.
  for (std::size_t i = 1; i < fires.size(); ++i) {
    if (fires[i] > end && i > 1) break;
    longest = std::max(longest, fires[i] - fires[i - 1]);
  }
  return longest;
}

namespace {
// A backup of type `made` answers the freshness question about `asked` (as the age metric).
bool covers(BackupType made, BackupType asked) {
  return static_cast<int>(made) >= static_cast<int>(asked);
}
}  // namespace

std::map<std::pair<int, std::string>, std::chrono::seconds> expected_intervals(
    const std::vector<ScheduledBackup>& schedules, const date::time_zone& zone, std::chrono::sys_seconds from,
    std::chrono::hours horizon) {
  std::map<int, std::vector<const ScheduledBackup*>> by_repo;
  for (const auto& schedule : schedules) by_repo[schedule.repo].push_back(&schedule);
  std::map<std::pair<int, std::string>, std::chrono::seconds> intervals;
  for (const auto& [repo, list] : by_repo) {
    for (const BackupType asked : {BackupType::full, BackupType::diff, BackupType::incr}) {
      std::vector<const CronExpression*> crons;
      for (const auto* schedule : list)
        if (covers(schedule->type, asked)) crons.push_back(schedule->cron);
      if (crons.empty()) continue;
      if (const auto gap = longest_gap(crons, zone, from, horizon))
        intervals[{repo, backup_type_name(asked)}] = *gap;
    }
  }
  return intervals;
}

}  // namespace agent
