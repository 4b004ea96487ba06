#include "time/target_time.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <optional>

namespace agent {

const char* const kTargetTimeForms =
    "'2024-11-04 09:40:00-08:00' (numeric offset: -08, -0800, -08:00, +00), "
    "'2024-02-06 19:50:11 PST' (a common abbreviation: UTC, GMT, PST/PDT, MST/MDT, CST/CDT, "
    "EST/EDT, AKST/AKDT, HST, AST/ADT, NST/NDT, WET/WEST, BST, CET/CEST, EET/EEST, JST, "
    "AEST/AEDT, NZST/NZDT), '2024-11-04T17:40:00Z' (ISO 8601), or "
    "'2024-11-04 09:40:00 America/Vancouver' (an IANA zone name); seconds may carry a fraction";

namespace {

struct Abbreviation {
  const char* name;
  int offset_minutes;
};

// Unambiguous abbreviations only (IST, for one, means three different zones).
constexpr std::array<Abbreviation, 30> kAbbreviations{{
    {"UTC", 0},
    {"GMT", 0},
    {"Z", 0},
    {"PST", -8 * 60},
    {"PDT", -7 * 60},
    {"MST", -7 * 60},
    {"MDT", -6 * 60},
    {"CST", -6 * 60},
    {"CDT", -5 * 60},
    {"EST", -5 * 60},
    {"EDT", -4 * 60},
    {"AKST", -9 * 60},
    {"AKDT", -8 * 60},
    {"HST", -10 * 60},
    {"AST", -4 * 60},
    {"ADT", -3 * 60},
    {"NST", -(3 * 60 + 30)},
    {"NDT", -(2 * 60 + 30)},
    {"WET", 0},
    {"WEST", 60},
    {"BST", 60},
    {"CET", 60},
    {"CEST", 120},
    {"EET", 120},
    {"EEST", 180},
    {"JST", 9 * 60},
    {"AEST", 10 * 60},
    {"AEDT", 11 * 60},
    {"NZST", 12 * 60},
    {"NZDT", 13 * 60},
}};

class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}
  bool done() const { return pos_ >= text_.size(); }
  char peek() const { return done() ? '\0' : text_[pos_]; }
  bool accept(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  // Reads exactly `count` digits.
  std::optional<int> digits(std::size_t count) {
    if (pos_ + count > text_.size()) return std::nullopt;
    int value = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const char c = text_[pos_ + i];
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
      value = value * 10 + (c - '0');
    }
    pos_ += count;
    return value;
  }
  std::string_view rest() const { return text_.substr(pos_); }
  void skip_spaces() {
    while (peek() == ' ') ++pos_;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

Error refuse(std::string_view text, const std::string& why) {
  return make_error(ErrorKind::usage, "invalid target time '" + std::string(text) + "': " + why,
                    std::string("use one of: ") + kTargetTimeForms);
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Result<TargetTime> parse_target_time(std::string_view text) {
  using namespace std::chrono;
  Scanner in(text);
  in.skip_spaces();
  const auto year = in.digits(4);
  if (!year || !in.accept('-')) return refuse(text, "expected a date as YYYY-MM-DD");
  const auto month = in.digits(2);
  if (!month || !in.accept('-')) return refuse(text, "expected a date as YYYY-MM-DD");
  const auto day = in.digits(2);
  if (!day) return refuse(text, "expected a date as YYYY-MM-DD");
  const date::year_month_day ymd{date::year{*year}, date::month{static_cast<unsigned>(*month)},
                                 date::day{static_cast<unsigned>(*day)}};
  if (!ymd.ok()) return refuse(text, "no such calendar date");
  if (in.done()) return refuse(text, "a date alone is not a point in time; add a time and zone");
  if (!in.accept('T') && !in.accept('t') && !in.accept(' '))
    return refuse(text, "expected ' ' or 'T' between date and time");

  const auto hour = in.digits(2);
  if (!hour || !in.accept(':')) return refuse(text, "expected a time as HH:MM[:SS[.ffffff]]");
  const auto minute = in.digits(2);
  if (!minute) return refuse(text, "expected a time as HH:MM[:SS[.ffffff]]");
  int second = 0;
  long long micros = 0;
  if (in.accept(':')) {
    const auto s = in.digits(2);
    if (!s) return refuse(text, "expected seconds as SS");
    second = *s;
    if (in.accept('.') || in.accept(',')) {
      int places = 0;
      while (std::isdigit(static_cast<unsigned char>(in.peek()))) {
        const int digit = in.peek() - '0';
        in.digits(1);
        if (places < 6) micros = micros * 10 + digit;
        ++places;
      }
      if (places == 0) return refuse(text, "expected digits after the decimal point");
      for (int i = places; i < 6; ++i) micros *= 10;
    }
  }
  if (*hour > 23 || *minute > 59 || second > 59) return refuse(text, "time of day out of range");

  const auto local_micros =
      date::local_days{ymd} + hours{*hour} + minutes{*minute} + seconds{second} + microseconds{micros};

  // The zone part: Z, a numeric offset, an abbreviation or an IANA name.
  const bool had_space = in.peek() == ' ';
  in.skip_spaces();
  if (in.done())
    return refuse(text,
                  "it has no time zone or offset, so pgBackRest and PostgreSQL could read it "
                  "in different zones");

  std::optional<minutes> offset;
  const char sign = in.peek();
  if (sign == '+' || sign == '-') {
    in.accept(sign);
    const auto oh = in.digits(2);
    if (!oh) return refuse(text, "expected an offset as +HH, +HHMM or +HH:MM");
    int om = 0;
    if (in.accept(':')) {
      const auto m = in.digits(2);
      if (!m) return refuse(text, "expected an offset as +HH, +HHMM or +HH:MM");
      om = *m;
    } else if (!in.done()) {
      const auto m = in.digits(2);
      if (!m) return refuse(text, "expected an offset as +HH, +HHMM or +HH:MM");
      om = *m;
    }
    if (*oh > 15 || om > 59) return refuse(text, "offset out of range");
    const int total = *oh * 60 + om;
    offset = minutes{sign == '-' ? -total : total};
    if (!in.done()) return refuse(text, "unexpected text after the offset");
  } else {
    const std::string zone(in.rest());
    const std::string zone_upper = upper(zone);
    for (const auto& abbreviation : kAbbreviations) {
      if (zone_upper == abbreviation.name) {
        if (zone_upper == "Z" && had_space) break;  // "... Z" with a space is a typo, not ISO
        offset = minutes{abbreviation.offset_minutes};
        break;
      }
    }
    if (!offset) {
      if (zone.find('/') == std::string::npos)
        return refuse(text, "unknown or ambiguous time zone '" + zone + "'");
      const date::time_zone* tz = nullptr;
      try {
        tz = date::locate_zone(zone);
      } catch (const std::exception&) {
        return refuse(text, "unknown time zone '" + zone + "'");
      }
      const auto info = tz->get_info(date::local_seconds{floor<seconds>(local_micros)});
      if (info.result == date::local_info::nonexistent)
        return refuse(text, "this local time does not exist in " + zone +
                                " (clocks moved forward); give an explicit offset instead");
      if (info.result == date::local_info::ambiguous)
        return refuse(text, "this local time happens twice in " + zone +
                                " (clocks moved back); give an explicit offset instead");
      offset = duration_cast<minutes>(info.first.offset);
    }
  }

  const SysMicros instant{local_micros.time_since_epoch() - *offset};
  return TargetTime{instant, std::string(text)};
}

namespace {
std::string format_utc(SysMicros instant, char separator, const char* suffix) {
  using namespace std::chrono;
  const auto day = floor<date::days>(instant);
  const date::year_month_day ymd{day};
  const date::hh_mm_ss<microseconds> tod{instant - day};
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02u%c%02lld:%02lld:%02lld", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), separator,
                static_cast<long long>(tod.hours().count()), static_cast<long long>(tod.minutes().count()),
                static_cast<long long>(tod.seconds().count()));
  std::string out(buffer);
  if (tod.subseconds().count() != 0) {
    std::snprintf(buffer, sizeof buffer, ".%06lld", static_cast<long long>(tod.subseconds().count()));
    out += buffer;
  }
  return out + suffix;
}
}  // namespace

std::string format_for_pgbackrest(SysMicros instant) {
  return format_utc(instant, ' ', "+00");
}
std::string format_iso_utc(SysMicros instant) {
  return format_utc(instant, 'T', "Z");
}

}  // namespace agent
