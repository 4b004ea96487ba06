// Fuzz target: a recovery target time as a person types it (`agent dump --target`, the control
// socket's "target"). Whatever is accepted must be one instant that survives the trip through
// the text handed to pgBackRest and PostgreSQL, and through the ISO form in logs.
#include <date/date.h>

#include "fuzz_check.hpp"
#include "time/target_time.hpp"

namespace {

void check_round_trip(const agent::TargetTime& parsed, const std::string& formatted) {
  const auto again = agent::parse_target_time(formatted);
  agent::fuzz::check(again.ok(), "a formatted target time does not parse again", formatted);
  agent::fuzz::check(again->instant == parsed.instant, "a formatted target time reads as another instant",
                     formatted);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parsed = agent::parse_target_time(agent::fuzz::as_text(data, size));
  if (!parsed) {
    agent::fuzz::check(!parsed.error().message.empty(), "a refusal without a message");
    return 0;
  }
  const std::string for_pgbackrest = agent::format_for_pgbackrest(parsed->instant);
  const std::string iso = agent::format_iso_utc(parsed->instant);
  // The text takes years 0000-9999; an offset can move the instant just outside them, where
  // the four-digit forms cannot say it.
  const date::year year = date::year_month_day{date::floor<date::days>(parsed->instant)}.year();
  if (year >= date::year{0} && year <= date::year{9999}) {
    check_round_trip(*parsed, for_pgbackrest);
    check_round_trip(*parsed, iso);
  }
  return 0;
}
