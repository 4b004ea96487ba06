#pragma once
// How far apart scheduled backups are, for the alerts: a backup older than its schedule's
// longest gap (plus a grace) means a run was missed or failed. Derived from the cron expressions
// in their zone, so a weekly full does not look late on day 6 and a daylight-saving change (a
// 25-hour day) does not page.
#include <date/tz.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "jobs/backup_request.hpp"
#include "jobs/cron.hpp"

namespace agent {

// How far ahead the gaps are looked for: five weeks hold every weekday five times, a weekly
// schedule's every gap, and any daylight-saving change within that time.
inline constexpr std::chrono::hours kIntervalHorizon{24 * 7 * 5};

// The longest gap between consecutive fires of any of `crons` (their fires merged), from `from`
// over `horizon`, reading them in `zone`. At least two fires are taken even when they lie beyond
// the horizon (a monthly or yearly schedule). std::nullopt when fewer than two fires exist.
std::optional<std::chrono::seconds> longest_gap(const std::vector<const CronExpression*>& crons,
                                                const date::time_zone& zone, std::chrono::sys_seconds from,
                                                std::chrono::hours horizon = kIntervalHorizon);

struct ScheduledBackup {
  BackupType type = BackupType::incr;
  int repo = 0;  // already resolved: the repository its backups go to
  const CronExpression* cron = nullptr;
};

// The expected interval per (repository, type) with the meaning of agent_backup_age_seconds:
// "full" from the full schedules; "diff" from the full and diff ones (a full is also a newer
// diff); "incr" from all of them. A type that no schedule covers is left out.
std::map<std::pair<int, std::string>, std::chrono::seconds> expected_intervals(
    const std::vector<ScheduledBackup>& schedules, const date::time_zone& zone, std::chrono::sys_seconds from,
    std::chrono::hours horizon = kIntervalHorizon);

}  // namespace agent
