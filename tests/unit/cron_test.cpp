#include "jobs/cron.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace agent {
namespace {

using std::chrono::sys_seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// America/Vancouver 2026: spring forward Sunday 2026-03-08 02:00 PST -> 03:00 PDT (10:00 UTC);
// fall back Sunday 2026-11-01 02:00 PDT -> 01:00 PST (09:00 UTC).
const date::time_zone& vancouver() {
  return *date::locate_zone("America/Vancouver");
}
const date::time_zone& utc_zone() {
  return *date::locate_zone("UTC");
}

sys_seconds utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  return date::sys_days{date::year{y} / date::month{mo} / date::day{d}} + std::chrono::hours{h} +
         std::chrono::minutes{mi} + std::chrono::seconds{s};
}

std::string text(sys_seconds instant) {
  return date::format("%F %R", instant);
}

CronExpression cron(const std::string& expression) {
  auto parsed = parse_cron(expression);
  EXPECT_TRUE(parsed.ok()) << expression << ": " << (parsed.ok() ? "" : parsed.error().describe());
  return parsed.ok() ? *parsed : CronExpression{};
}

// The next `count` fire times in UTC, each found from the one before.
std::vector<std::string> fires(const std::string& expression, const date::time_zone& zone, sys_seconds after,
                               int count) {
  const auto schedule = cron(expression);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    const auto next = next_fire(schedule, zone, after);
    if (!next) break;
    out.push_back(text(*next));
    after = *next;
  }
  return out;
}

std::string first_fire(const std::string& expression, const date::time_zone& zone, sys_seconds after) {
  const auto next = fires(expression, zone, after, 1);
  return next.empty() ? "never" : next.front();
}

// Every fire in [begin, end), in order.
std::vector<sys_seconds> fires_between(const std::string& expression, const date::time_zone& zone,
                                       sys_seconds begin, sys_seconds end) {
  const auto schedule = cron(expression);
  std::vector<sys_seconds> out;
  auto after = begin - std::chrono::seconds{1};
  while (const auto next = next_fire(schedule, zone, after)) {
    if (*next >= end) break;
    out.push_back(*next);
    after = *next;
  }
  return out;
}

void expect_same_schedule(const CronExpression& a, const CronExpression& b) {
  EXPECT_EQ(a.minutes, b.minutes);
  EXPECT_EQ(a.hours, b.hours);
  EXPECT_EQ(a.days_of_month, b.days_of_month);
  EXPECT_EQ(a.months, b.months);
  EXPECT_EQ(a.days_of_week, b.days_of_week);
  EXPECT_EQ(a.day_of_month_restricted, b.day_of_month_restricted);
  EXPECT_EQ(a.day_of_week_restricted, b.day_of_week_restricted);
}

// --- parsing ---------------------------------------------------------------------------------

TEST(CronParse, StarsAndSteps) {
  const auto every_quarter = cron("*/15 * * * *");
  EXPECT_EQ(every_quarter.minutes, std::bitset<60>((1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45)));
  EXPECT_TRUE(every_quarter.hours.all());
  EXPECT_EQ(every_quarter.days_of_month.count(), 31U);
  EXPECT_FALSE(every_quarter.days_of_month[0]);
  EXPECT_EQ(every_quarter.months.count(), 12U);
  EXPECT_TRUE(every_quarter.days_of_week.all());
  EXPECT_FALSE(every_quarter.day_of_month_restricted);
  EXPECT_FALSE(every_quarter.day_of_week_restricted);
  EXPECT_EQ(every_quarter.text, "*/15 * * * *");
}

TEST(CronParse, RangesListsAndRangeSteps) {
  const auto office = cron("5,10,20-22 9-17/2 1,15 * 1-5");
  EXPECT_EQ(office.minutes.count(), 5U);
  for (int m : {5, 10, 20, 21, 22}) EXPECT_TRUE(office.minutes[m]) << m;
  EXPECT_EQ(office.hours.count(), 5U);
  for (int h : {9, 11, 13, 15, 17}) EXPECT_TRUE(office.hours[h]) << h;
  EXPECT_EQ(office.days_of_month.count(), 2U);
  EXPECT_TRUE(office.days_of_month[1] && office.days_of_month[15]);
  EXPECT_EQ(office.days_of_week, std::bitset<7>("0111110"));
  EXPECT_TRUE(office.day_of_month_restricted);
  EXPECT_TRUE(office.day_of_week_restricted);
}

TEST(CronParse, NamesAreCaseInsensitive) {
  expect_same_schedule(cron("0 0 * jan,Jul *"), cron("0 0 * 1,7 *"));
  expect_same_schedule(cron("0 0 * * MON-fri"), cron("0 0 * * 1-5"));
  expect_same_schedule(cron("0 0 * JAN-DEC/3 sun,SAT"), cron("0 0 * 1,4,7,10 0,6"));
}

TEST(CronParse, SevenIsSunday) {
  expect_same_schedule(cron("0 0 * * 7"), cron("0 0 * * 0"));
  expect_same_schedule(cron("0 0 * * 5-7"), cron("0 0 * * 0,5,6"));
  EXPECT_TRUE(cron("0 0 * * 0-7").days_of_week.all());
}

TEST(CronParse, Macros) {
  expect_same_schedule(cron("@hourly"), cron("0 * * * *"));
  expect_same_schedule(cron("@daily"), cron("0 0 * * *"));
  expect_same_schedule(cron("@midnight"), cron("0 0 * * *"));
  expect_same_schedule(cron("@weekly"), cron("0 0 * * 0"));
  expect_same_schedule(cron("@monthly"), cron("0 0 1 * *"));
  expect_same_schedule(cron("@yearly"), cron("0 0 1 1 *"));
  expect_same_schedule(cron("@annually"), cron("0 0 1 1 *"));
  expect_same_schedule(cron(" @Daily "), cron("0 0 * * *"));
  EXPECT_EQ(cron("@daily").text, "@daily");  // logs show what the person wrote
}

TEST(CronParse, ExtraWhitespaceIsFine) {
  expect_same_schedule(cron("  */5\t*  * * *  "), cron("*/5 * * * *"));
}

// Like Vixie cron and cronie: a day field starting with '*' does not count as a restriction.
TEST(CronParse, DayFieldsStartingWithStarAreNotRestrictions) {
  const auto odd_days = cron("0 0 */2 * 1");
  EXPECT_FALSE(odd_days.day_of_month_restricted);
  EXPECT_TRUE(odd_days.day_of_week_restricted);
}

struct BadCron {
  const char* expression;
  const char* message;  // the whole message after "cron expression '<expression>': "
};

// So a failing case prints its expression, not sixteen bytes.
void PrintTo(const BadCron& bad, std::ostream* out) {
  *out << "'" << bad.expression << "'";
}

class CronParseError : public ::testing::TestWithParam<BadCron> {};

TEST_P(CronParseError, NamesTheFieldAndTheBadText) {
  const auto& bad = GetParam();
  const auto parsed = parse_cron(bad.expression);
  ASSERT_FALSE(parsed.ok()) << bad.expression;
  EXPECT_EQ(parsed.error().kind, ErrorKind::usage);
  EXPECT_EQ(parsed.error().message, "cron expression '" + std::string(bad.expression) + "': " + bad.message);
  EXPECT_THAT(parsed.error().hint,
              HasSubstr("use 5 fields: minute hour day-of-month month day-of-week, e.g. '*/15 * * * *'"));
}

INSTANTIATE_TEST_SUITE_P(
    Cron, CronParseError,
    ::testing::Values(
        BadCron{"", "expected 5 fields (minute hour day-of-month month day-of-week), got 0"},
        BadCron{"* * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 3"},
        BadCron{"* * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6"},
        BadCron{"61 * * * *", "minute 61 is outside 0-59"}, BadCron{"* 24 * * *", "hour 24 is outside 0-23"},
        BadCron{"* * 0 * *", "day-of-month 0 is outside 1-31"},
        BadCron{"* * 32 * *", "day-of-month 32 is outside 1-31"},
        BadCron{"* * * 13 *", "month 13 is outside 1-12"},
        BadCron{"* * * * 8", "day-of-week 8 is outside 0-7"},
        BadCron{"99999999999 * * * *", "minute 99999999999 is outside 0-59"},
        BadCron{"*/0 * * * *", "minute step 0 in '*/0' is outside 1-60"},
        BadCron{"* */25 * * *", "hour step 25 in '*/25' is outside 1-24"},
        BadCron{"5-1 * * * *",
                "minute range 5-1 is reversed; ranges do not wrap around, use a list such as 22-23,0-2"},
        BadCron{"* * * * SAT-SUN",
                "day-of-week range SAT-SUN is reversed; ranges do not wrap around, use a list such as "
                "22-23,0-2"},
        BadCron{"* * * FOO *", "month 'FOO' is not a number or a name (JAN-DEC)"},
        BadCron{"* * * MON *", "month 'MON' is not a number or a name (JAN-DEC)"},
        BadCron{"* * * * JAN", "day-of-week 'JAN' is not a number or a name (SUN-SAT)"},
        BadCron{"* * * * Funday", "day-of-week 'Funday' is not a number or a name (SUN-SAT)"},
        BadCron{"x * * * *", "minute 'x' is not a number"},
        BadCron{"* 1,,2 * * *", "hour has an empty list item in '1,,2'"},
        BadCron{"* * 1- * *", "day-of-month '1-' is not valid; expected *, N, N-M, */S or N-M/S"},
        BadCron{"1-2-3 * * * *", "minute '1-2-3' is not valid; expected *, N, N-M, */S or N-M/S"},
        BadCron{"*/5/2 * * * *", "minute '*/5/2' is not valid; expected *, N, N-M, */S or N-M/S"},
        BadCron{"*/x * * * *", "minute '*/x' is not valid; expected *, N, N-M, */S or N-M/S"},
        BadCron{"5/15 * * * *", "minute '5/15' has a step without a range; write */S or N-M/S, e.g. 5-59/15"},
        BadCron{"@reboot",
                "unknown macro '@reboot'; known: @hourly, @daily, @midnight, @weekly, @monthly, @yearly, "
                "@annually"}),
    // Readable test names: the index, since the expressions are full of punctuation.
    [](const ::testing::TestParamInfo<BadCron>& param) { return "case" + std::to_string(param.index); });

// --- next_fire on ordinary days ----------------------------------------------------------------

TEST(CronNextFire, DailyInUtc) {
  EXPECT_THAT(fires("0 2 * * *", utc_zone(), utc(2026, 1, 10), 3),
              ElementsAre("2026-01-10 02:00", "2026-01-11 02:00", "2026-01-12 02:00"));
}

TEST(CronNextFire, StrictlyAfter) {
  EXPECT_EQ(first_fire("0 2 * * *", utc_zone(), utc(2026, 1, 10, 1, 59, 59)), "2026-01-10 02:00");
  EXPECT_EQ(first_fire("0 2 * * *", utc_zone(), utc(2026, 1, 10, 2, 0, 0)), "2026-01-11 02:00");
  EXPECT_EQ(first_fire("0 2 * * *", utc_zone(), utc(2026, 1, 10, 2, 0, 30)), "2026-01-11 02:00");
  EXPECT_EQ(first_fire("* * * * *", utc_zone(), utc(2026, 1, 10, 2, 0, 30)), "2026-01-10 02:01");
}

TEST(CronNextFire, DailyInVancouverFollowsTheOffset) {
  // 02:00 PST is 10:00 UTC in winter; 02:00 PDT is 09:00 UTC in summer.
  EXPECT_EQ(first_fire("0 2 * * *", vancouver(), utc(2026, 1, 10)), "2026-01-10 10:00");
  EXPECT_EQ(first_fire("0 2 * * *", vancouver(), utc(2026, 7, 1)), "2026-07-01 09:00");
  // At 2026-01-10 20:00 UTC it is 12:00 on the 10th in Vancouver: that day's 02:00 has passed.
  EXPECT_EQ(first_fire("0 2 * * *", vancouver(), utc(2026, 1, 10, 20)), "2026-01-11 10:00");
}

TEST(CronNextFire, Weekdays) {
  // Friday 2026-01-02 after 02:00 -> Monday 2026-01-05.
  EXPECT_THAT(fires("0 2 * * 1-5", utc_zone(), utc(2026, 1, 2, 3), 2),
              ElementsAre("2026-01-05 02:00", "2026-01-06 02:00"));
  EXPECT_THAT(fires("0 2 * * MON-FRI", utc_zone(), utc(2026, 1, 2, 3), 2),
              ElementsAre("2026-01-05 02:00", "2026-01-06 02:00"));
}

TEST(CronNextFire, FirstOfTheMonth) {
  EXPECT_THAT(fires("0 0 1 * *", utc_zone(), utc(2026, 1, 15), 3),
              ElementsAre("2026-02-01 00:00", "2026-03-01 00:00", "2026-04-01 00:00"));
}

TEST(CronNextFire, Sundays) {
  // Thursday 2026-01-01 -> Sunday 2026-01-04.
  EXPECT_THAT(fires("0 0 * * SUN", utc_zone(), utc(2026, 1, 1), 2),
              ElementsAre("2026-01-04 00:00", "2026-01-11 00:00"));
  EXPECT_THAT(fires("0 0 * * 7", utc_zone(), utc(2026, 1, 1), 2),
              ElementsAre("2026-01-04 00:00", "2026-01-11 00:00"));
}

TEST(CronNextFire, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // Fridays (the 2nd, 9th, 16th) and the 13th (a Tuesday in January 2026).
  EXPECT_THAT(fires("0 0 13 * FRI", utc_zone(), utc(2026, 1, 1), 4),
              ElementsAre("2026-01-02 00:00", "2026-01-09 00:00", "2026-01-13 00:00", "2026-01-16 00:00"));
}

TEST(CronNextFire, DayOfMonthAndDayOfWeekWhenOneStartsWithStar) {
  // '*/10' is not a restriction, so both must match: the 1st, 11th, 21st or 31st on a Friday.
  // The first in 2026 is Friday 2026-05-01.
  EXPECT_EQ(first_fire("0 0 */10 * FRI", utc_zone(), utc(2026, 1, 1)), "2026-05-01 00:00");
}

TEST(CronNextFire, DailyMacro) {
  EXPECT_THAT(fires("@daily", utc_zone(), utc(2026, 1, 1, 12, 34), 2),
              ElementsAre("2026-01-02 00:00", "2026-01-03 00:00"));
  EXPECT_EQ(first_fire("@daily", vancouver(), utc(2026, 1, 1, 12, 34)), "2026-01-02 08:00");
}

TEST(CronNextFire, YearlyIsFoundAYearAhead) {
  EXPECT_EQ(first_fire("@yearly", utc_zone(), utc(2026, 1, 1)), "2027-01-01 00:00");
}

TEST(CronNextFire, LeapDay) {
  EXPECT_THAT(fires("0 0 29 2 *", utc_zone(), utc(2026, 1, 1), 2),
              ElementsAre("2028-02-29 00:00", "2032-02-29 00:00"));
}

TEST(CronNextFire, ImpossibleDateNeverFires) {
  EXPECT_FALSE(next_fire(cron("0 0 30 2 *"), utc_zone(), utc(2026, 1, 1)).has_value());
  EXPECT_FALSE(next_fire(cron("0 0 31 4,6,9,11 *"), vancouver(), utc(2026, 1, 1)).has_value());
}

TEST(CronNextFire, LeapDayAcrossTheSkippedLeapYearOf2100) {
  // 2100 is not a leap year: eight years between leap days, beyond a short search horizon.
  EXPECT_EQ(first_fire("0 0 29 2 *", utc_zone(), utc(2097, 1, 1)), "2104-02-29 00:00");
}

TEST(CronNextFire, LeapDayOnAGivenWeekdayIsFoundDecadesAhead) {
  // '*/7' in the day-of-week field is Sunday (0 and 7) and, starting with '*', no restriction
  // in the Vixie sense: February 29 must also be a Sunday. 2032, then 2060.
  EXPECT_THAT(fires("0 0 29 2 */7", utc_zone(), utc(2026, 1, 1), 2),
              ElementsAre("2032-02-29 00:00", "2060-02-29 00:00"));
}

// --- schedules that never fire -----------------------------------------------------------------

TEST(CronNeverFires, DaysFebruaryNeverHas) {
  EXPECT_EQ(
      never_fires_reason(cron("0 0 31 2 *")),
      "it never fires: FEB has no day 31; name a day that exists in that month (February has 29 days in "
      "leap years), or use the day-of-week field");
  EXPECT_THAT(never_fires_reason(cron("0 0 30 2 *")).value_or(""), HasSubstr("FEB has no day 30;"));
  EXPECT_THAT(never_fires_reason(cron("0 0 30,31 FEB *")).value_or(""),
              HasSubstr("FEB has no day 30 or 31;"));
  EXPECT_THAT(never_fires_reason(cron("0 0 31 4,6,9,11 *")).value_or(""),
              HasSubstr("none of APR, JUN, SEP or NOV has a day 31;"));
  // Day-of-week starting with '*' is no restriction in the Vixie sense, so both must match.
  EXPECT_TRUE(never_fires_reason(cron("0 0 31 2 */2")).has_value());
  EXPECT_FALSE(ever_fires(cron("0 0 31 2 *")));
}

TEST(CronNeverFires, DatesThatExistFire) {
  for (const char* expression :
       {"0 0 29 2 *", "0 0 28-31 2 *", "0 0 31 * *", "0 0 31 2,3 *", "0 0 30 4 *", "@yearly", "@monthly",
        "*/15 * * * *", "0 0 29 2 */7",
        // Both day fields restricted: either matching is enough, so every Monday in February.
        "0 0 31 2 MON"}) {
    EXPECT_EQ(never_fires_reason(cron(expression)), std::nullopt) << expression;
    EXPECT_TRUE(ever_fires(cron(expression))) << expression;
  }
}

TEST(CronNeverFires, AgreesWithNextFire) {
  // The quick calendar check and the 400-year search must say the same of every expression.
  for (const char* expression :
       {"0 0 31 2 *", "0 0 30 2 *", "0 0 29 2 *", "0 0 31 4,6,9,11 *", "0 0 31 4,6,9,11,12 *", "0 0 31 2 */2",
        "0 0 31 2 MON", "0 0 */31 2 *", "0 0 30-31 2 */3", "0 0 29 2 */7", "0 0 1 1 *", "5 4 31 11 *"}) {
    const auto schedule = cron(expression);
    EXPECT_EQ(ever_fires(schedule), next_fire(schedule, utc_zone(), utc(2026, 1, 1)).has_value())
        << expression;
  }
}

TEST(CronNeverFires, SearchingFourHundredYearsForNothingIsQuick) {
  const auto schedule = cron("0 0 31 2 *");
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(next_fire(schedule, vancouver(), utc(2026, 1, 1)).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(500));
}

// --- daylight saving: spring forward (02:00 PST -> 03:00 PDT, 10:00 UTC) ---------------------

TEST(CronSpringForward, SkippedQuarterHoursCollapseIntoOneRun) {
  // 01:45 PST is 09:45 UTC. 02:00-02:45 do not exist; they run once, at 03:00 PDT (10:00 UTC).
  EXPECT_THAT(fires("*/15 * * * *", vancouver(), utc(2026, 3, 8, 9, 30), 4),
              ElementsAre("2026-03-08 09:45", "2026-03-08 10:00", "2026-03-08 10:15", "2026-03-08 10:30"));
  EXPECT_EQ(first_fire("*/15 * * * *", vancouver(), utc(2026, 3, 8, 9, 45)), "2026-03-08 10:00");
  EXPECT_EQ(first_fire("*/15 * * * *", vancouver(), utc(2026, 3, 8, 10, 0)), "2026-03-08 10:15");
}

TEST(CronSpringForward, SkippedDailyTimeRunsAtTheEndOfTheGap) {
  // 02:30 does not exist on 2026-03-08: 03:00 PDT (10:00 UTC). The next day 02:30 PDT is 09:30 UTC.
  EXPECT_THAT(fires("30 2 * * *", vancouver(), utc(2026, 3, 8, 8), 2),
              ElementsAre("2026-03-08 10:00", "2026-03-09 09:30"));
}

TEST(CronSpringForward, SeveralSkippedTimesStillRunOnce) {
  EXPECT_THAT(fires("15,45 2 * * *", vancouver(), utc(2026, 3, 8, 8), 3),
              ElementsAre("2026-03-08 10:00", "2026-03-09 09:15", "2026-03-09 09:45"));
}

// --- daylight saving: fall back (02:00 PDT -> 01:00 PST, 09:00 UTC) ---------------------------

TEST(CronFallBack, RepeatedHourRunsOnlyTheFirstTime) {
  // 01:00-01:45 PDT is 08:00-08:45 UTC; the repeat, 01:00-01:45 PST (09:00-09:45 UTC), is skipped;
  // 02:00 PST is 10:00 UTC.
  EXPECT_THAT(fires("*/15 * * * *", vancouver(), utc(2026, 11, 1, 7, 45), 6),
              ElementsAre("2026-11-01 08:00", "2026-11-01 08:15", "2026-11-01 08:30", "2026-11-01 08:45",
                          "2026-11-01 10:00", "2026-11-01 10:15"));
}

TEST(CronFallBack, AskingFromInsideTheRepeatedHour) {
  // 09:10 UTC is 01:10 PST, the second time round: 01:15 has already run (at 08:15 UTC).
  EXPECT_EQ(first_fire("*/15 * * * *", vancouver(), utc(2026, 11, 1, 9, 10)), "2026-11-01 10:00");
  EXPECT_EQ(first_fire("*/15 * * * *", vancouver(), utc(2026, 11, 1, 9, 0)), "2026-11-01 10:00");
}

TEST(CronFallBack, RepeatedDailyTimeRunsOnce) {
  // 01:30 PDT (08:30 UTC), not 01:30 PST; the next day 01:30 PST is 09:30 UTC.
  EXPECT_THAT(fires("30 1 * * *", vancouver(), utc(2026, 11, 1, 7), 2),
              ElementsAre("2026-11-01 08:30", "2026-11-02 09:30"));
  EXPECT_EQ(first_fire("0 2 * * *", vancouver(), utc(2026, 11, 1, 7)), "2026-11-01 10:00");
}

// --- whole days across the transitions ----------------------------------------------------------

TEST(CronDaylightSavingDays, SpringForwardDayHas92QuarterHourRuns) {
  // Local day 2026-03-08 = [00:00 PST, 24:00 PDT) = [08:00 UTC, 07:00 UTC next day): 23 real hours.
  // 96 quarter-hours on the wall clock, less the 4 that do not exist (02:00-02:45) = 92.
  // The 4 skipped ones collapse into 03:00 PDT, which is itself a quarter-hour, so no run is added.
  const auto runs = fires_between("*/15 * * * *", vancouver(), utc(2026, 3, 8, 8), utc(2026, 3, 9, 7));
  ASSERT_EQ(runs.size(), 92U);
  EXPECT_EQ(text(runs.front()), "2026-03-08 08:00");
  EXPECT_EQ(text(runs.back()), "2026-03-09 06:45");
  // 01:45 PST -> 03:00 PDT is 15 real minutes, so the runs stay evenly spaced.
  for (std::size_t i = 1; i < runs.size(); ++i)
    EXPECT_EQ(runs[i] - runs[i - 1], std::chrono::minutes{15}) << text(runs[i]);
}

TEST(CronDaylightSavingDays, FallBackDayHas96QuarterHourRuns) {
  // Local day 2026-11-01 = [00:00 PDT, 24:00 PST) = [07:00 UTC, 08:00 UTC next day): 25 real hours,
  // 100 real quarter-hours. The 4 repeated ones (01:00-01:45 PST) do not run again: 100 - 4 = 96,
  // one per wall-clock quarter-hour.
  const auto runs = fires_between("*/15 * * * *", vancouver(), utc(2026, 11, 1, 7), utc(2026, 11, 2, 8));
  ASSERT_EQ(runs.size(), 96U);
  EXPECT_EQ(text(runs.front()), "2026-11-01 07:00");
  EXPECT_EQ(text(runs.back()), "2026-11-02 07:45");
  // One gap of 75 real minutes (08:45 -> 10:00 UTC, over the repeated hour); all others are 15.
  int long_gaps = 0;
  for (std::size_t i = 1; i < runs.size(); ++i) {
    if (runs[i] - runs[i - 1] == std::chrono::minutes{15}) continue;
    ++long_gaps;
    EXPECT_EQ(text(runs[i - 1]), "2026-11-01 08:45");
    EXPECT_EQ(text(runs[i]), "2026-11-01 10:00");
  }
  EXPECT_EQ(long_gaps, 1);
}

}  // namespace
}  // namespace agent
