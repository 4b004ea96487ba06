#include "jobs/schedule_interval.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <gtest/gtest.h>

#include <string>

namespace agent {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::sys_seconds;

// America/Vancouver 2026: spring forward Sunday 2026-03-08 02:00 PST -> 03:00 PDT;
// fall back Sunday 2026-11-01 02:00 PDT -> 01:00 PST.
const date::time_zone& vancouver() {
  return *date::locate_zone("America/Vancouver");
}

sys_seconds utc(int y, unsigned mo, unsigned d, int h = 0) {
  return date::sys_days{date::year{y} / date::month{mo} / date::day{d}} + hours{h};
}

CronExpression cron(const std::string& expression) {
  auto parsed = parse_cron(expression);
  EXPECT_TRUE(parsed.ok()) << expression;
  return parsed.ok() ? *parsed : CronExpression{};
}

TEST(ScheduleInterval, AWeeklyScheduleIsAWeekApartAndAnHourMoreAcrossTheFallBack) {
  const auto weekly = cron("0 3 * * 0");
  // Far from any change: exactly a week.
  EXPECT_EQ(longest_gap({&weekly}, vancouver(), utc(2026, 6, 1)), hours{7 * 24});
  // Sunday 2026-10-25 03:00 PDT (10:00 UTC) to Sunday 2026-11-01 03:00 PST (11:00 UTC).
  EXPECT_EQ(longest_gap({&weekly}, vancouver(), utc(2026, 10, 10)), hours{7 * 24 + 1});
  // Across the spring-forward the gap is 167 h; the longest over five weeks stays a week.
  EXPECT_EQ(longest_gap({&weekly}, vancouver(), utc(2026, 2, 20)), hours{7 * 24});
}

TEST(ScheduleInterval, ADailyScheduleIsTwentyFiveHoursOnTheFallBackNight) {
  const auto daily = cron("30 1 * * *");
  EXPECT_EQ(longest_gap({&daily}, vancouver(), utc(2026, 6, 1)), hours{24});
  // 01:30 PDT on 2026-11-01 runs once (its first occurrence); the next is 01:30 PST on 11-02.
  EXPECT_EQ(longest_gap({&daily}, vancouver(), utc(2026, 10, 20)), hours{25});
  // A time skipped by the spring-forward runs at 03:00 PDT: 23.5 h gaps, never longer than a day.
  const auto skipped = cron("30 2 * * *");
  EXPECT_EQ(longest_gap({&skipped}, vancouver(), utc(2026, 3, 1)), hours{24});
}

TEST(ScheduleInterval, MonthlySchedulesTakeTwoFiresBeyondTheHorizon) {
  const auto monthly = cron("0 0 1 * *");
  EXPECT_EQ(longest_gap({&monthly}, *date::locate_zone("UTC"), utc(2026, 1, 15)), hours{28 * 24});
}

TEST(ScheduleInterval, TypesAreCoveredAsTheAgeMetricCoversThem) {
  const auto full_daily = cron("0 2 * * *");
  const auto incr = cron("*/15 * * * *");
  const auto full_weekly = cron("0 3 * * 0");
  const auto diff = cron("0 3 * * 1-6");
  const std::vector<ScheduledBackup> schedules{{BackupType::full, 1, &full_daily},
                                               {BackupType::incr, 1, &incr},
                                               {BackupType::full, 2, &full_weekly},
                                               {BackupType::diff, 2, &diff}};
  const auto intervals = expected_intervals(schedules, *date::locate_zone("UTC"), utc(2026, 6, 1));
  EXPECT_EQ(intervals.at({1, "full"}), hours{24});
  EXPECT_EQ(intervals.at({1, "diff"}), hours{24});  // a full is a newer diff too
  EXPECT_EQ(intervals.at({1, "incr"}), minutes{15});
  EXPECT_EQ(intervals.at({2, "full"}), hours{7 * 24});
  EXPECT_EQ(intervals.at({2, "diff"}), hours{24});  // Sunday's full, Monday to Saturday's diff
  EXPECT_EQ(intervals.at({2, "incr"}), hours{24});
  EXPECT_EQ(intervals.size(), 6u);
  // Only an incremental schedule: no full or diff interval is claimed.
  const auto only_incr = expected_intervals({{BackupType::incr, 3, &incr}}, vancouver(), utc(2026, 6, 1));
  EXPECT_EQ(only_incr.size(), 1u);
  // Every 15 minutes in Vancouver: the fall-back night's repeated hour runs once, so 01:45 PDT
  // is followed by 02:00 PST, 75 minutes later.
  const auto autumn = expected_intervals({{BackupType::incr, 1, &incr}}, vancouver(), utc(2026, 10, 20));
  EXPECT_EQ(autumn.at({1, "incr"}), minutes{75});
}

}  // namespace
}  // namespace agent
