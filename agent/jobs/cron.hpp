#pragma once
// Cron schedules: parsing the 5-field form and finding the next time one fires in a time zone.
// Daylight saving never makes a schedule run twice or silently drop a run: a local time that a
// spring-forward skips runs once at the end of the gap, one that a fall-back repeats runs once,
// at its first occurrence.
#include <date/tz.h>

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace agent {

// A 5-field cron expression: minute hour day-of-month month day-of-week.
struct CronExpression {
  std::bitset<60> minutes;        // 0-59
  std::bitset<24> hours;          // 0-23
  std::bitset<32> days_of_month;  // 1-31 (bit 0 unused)
  std::bitset<13> months;         // 1-12 (bit 0 unused)
  std::bitset<7> days_of_week;    // 0-6, Sunday = 0 (a 7 in the text lands here too)
  // As in Vixie cron and cronie: a day field that starts with '*' (so '*' and '*/2') is not a
  // restriction. When both are restrictions a day matches if either does, otherwise both must.
  bool day_of_month_restricted = false;
  bool day_of_week_restricted = false;
  std::string text;  // as given, for logs and status
};

// Fields: *, numbers, ranges a-b, lists a,b,c, steps */n and a-b/n, month names JAN-DEC and day
// names SUN-SAT (case-insensitive), day-of-week 0-7 (0 and 7 are Sunday). Also the macros
// @hourly, @daily (= @midnight), @weekly, @monthly, @yearly (= @annually).
// Errors are ErrorKind::usage and name the field and the bad text.
Result<CronExpression> parse_cron(std::string_view text);

// Why the expression never fires, or std::nullopt when it fires at some time: "0 0 31 2 *" and
// "0 0 30 2 *" name days February never has; "0 0 29 2 *" fires in leap years and is fine. Only
// the calendar decides this (every local date exists in every zone), so it needs no zone. The
// text names the day-of-month and the months, for a message such as "cron expression '...':
// <reason>"; the config loader refuses such a schedule with it.
std::optional<std::string> never_fires_reason(const CronExpression& cron);
inline bool ever_fires(const CronExpression& cron) {
  return !never_fires_reason(cron).has_value();
}

// The first time strictly after `after` at which the expression fires, reading it in `zone`.
// A local time skipped by a spring-forward fires once, at the first instant after the gap (all
// skipped matches of one gap collapse into that run); a local time repeated by a fall-back fires
// once, at its first occurrence. std::nullopt exactly when ever_fires() is false: the search
// spans one whole 400-year cycle of the Gregorian calendar, after which dates and weekdays repeat
// (so a February 29 that must also be a Sunday, up to 40 years away, is still found); months the
// expression does not name are skipped whole, so even that search is quick.
std::optional<std::chrono::sys_seconds> next_fire(const CronExpression& cron, const date::time_zone& zone,
                                                  std::chrono::sys_seconds after);

}  // namespace agent
