// Fuzz target: a cron schedule (config schedules.full/diff/incr) and its next fire times.
//
// Input: the expression on the first line; the bytes after the first newline choose the time
// zone and the instant to start from, so the seeds stay readable text. Properties:
//  - whatever parses fires on some minute of some hour of some day (no empty field);
//  - next_fire finds a time exactly when ever_fires() says there is one, strictly later, and
//    within one 400-year Gregorian cycle;
//  - a fire time is a local time the expression matches, or the end of a daylight-saving gap;
//  - in UTC, the fire time is the first matching minute a plain minute-by-minute walk finds.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <chrono>
#include <string>

#include "fuzz_check.hpp"
#include "jobs/cron.hpp"

namespace {

using std::chrono::sys_seconds;

// Zones with the awkward transitions: 30- and 45-minute offsets and shifts, a 2-hour shift,
// a skipped calendar day (Apia, 2011-12-30), negative DST (Dublin), Ramadan DST (Casablanca).
constexpr std::array<const char*, 12> kZoneNames{
    "UTC",
    "America/Vancouver",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Pacific/Apia",
    "Africa/Casablanca",
    "America/Santiago",
    "Antarctica/Troll",
    "Europe/Dublin",
};

const std::array<const date::time_zone*, kZoneNames.size()>& zones() {
  static const auto located = [] {
    std::array<const date::time_zone*, kZoneNames.size()> out{};
    for (std::size_t i = 0; i < kZoneNames.size(); ++i) out[i] = date::locate_zone(kZoneNames[i]);
    return out;
  }();
  return located;
}

bool day_matches(const agent::CronExpression& cron, date::local_days day) {
  const date::year_month_day ymd{day};
  if (!cron.months[static_cast<unsigned>(ymd.month())]) return false;
  const bool dom = cron.days_of_month[static_cast<unsigned>(ymd.day())];
  const bool dow = cron.days_of_week[date::weekday{day}.c_encoding()];
  if (cron.day_of_month_restricted && cron.day_of_week_restricted) return dom || dow;
  return dom && dow;
}

// The plain reading of the expression, independent of cron.cpp's walk.
bool matches(const agent::CronExpression& cron, date::local_seconds local) {
  const auto day = date::floor<date::days>(local);
  const date::hh_mm_ss time{local - day};
  return time.seconds().count() == 0 && cron.minutes[static_cast<std::size_t>(time.minutes().count())] &&
         cron.hours[static_cast<std::size_t>(time.hours().count())] && day_matches(cron, day);
}

std::string describe(const agent::CronExpression& cron, const date::time_zone& zone, sys_seconds after,
                     sys_seconds fire) {
  return "'" + cron.text + "' in " + std::string(zone.name()) + " after " + date::format("%F %T", after) +
         " fired at " + date::format("%F %T", fire);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input = agent::fuzz::as_text(data, size);
  const std::size_t newline = input.find('\n');
  const std::string_view text = input.substr(0, newline);
  const auto cron = agent::parse_cron(text);
  if (!cron) {
    agent::fuzz::check(!cron.error().message.empty(), "a refusal without a message");
    return 0;
  }
  agent::fuzz::check(cron->minutes.any() && cron->hours.any() && cron->days_of_month.any() &&
                         cron->months.any() && cron->days_of_week.any(),
                     "an expression that parses has a field that matches nothing", cron->text);

  const std::string_view rest = newline == std::string_view::npos ? "" : input.substr(newline + 1);
  FuzzedDataProvider provider(reinterpret_cast<const std::uint8_t*>(rest.data()), rest.size());
  const auto& zone = *zones()[provider.ConsumeIntegralInRange<std::size_t>(0, kZoneNames.size() - 1)];
  // 1900-01-01 .. 2200-01-01: well past both ends of the agent's lifetime.
  sys_seconds after{
      std::chrono::seconds{provider.ConsumeIntegralInRange<std::int64_t>(-2208988800, 7258118400)}};

  const bool ever = agent::ever_fires(*cron);
  const auto horizon = std::chrono::days{146097 + 2};
  for (int call = 0; call < 3; ++call) {
    const auto fire = agent::next_fire(*cron, zone, after);
    agent::fuzz::check(
        fire.has_value() == ever,
        ever ? "next_fire found nothing for an expression that fires"
             : "next_fire found a time for an expression that never fires",
        cron->text + " in " + std::string(zone.name()) + " after " + date::format("%F %T", after));
    if (!fire) break;
    agent::fuzz::check(*fire > after, "next_fire did not move forward", describe(*cron, zone, after, *fire));
    agent::fuzz::check(*fire <= after + horizon, "next_fire went past its horizon",
                       describe(*cron, zone, after, *fire));
    const bool at_transition = zone.get_info(*fire).begin == *fire;
    agent::fuzz::check(matches(*cron, zone.to_local(*fire)) || at_transition,
                       "a fire time the expression does not match", describe(*cron, zone, after, *fire));
    if (call == 0 && zone.name() == "UTC") {
      // Two days of minutes: the first match must be the fire time.
      auto minute = date::floor<std::chrono::minutes>(after) + std::chrono::minutes{1};
      for (int i = 0; i < 2 * 24 * 60; ++i, minute += std::chrono::minutes{1}) {
        if (!matches(*cron, date::local_seconds{minute.time_since_epoch()})) continue;
        agent::fuzz::check(*fire == minute, "next_fire skipped a matching minute",
                           describe(*cron, zone, after, *fire));
        break;
      }
    }
    after = *fire;
  }
  return 0;
}
