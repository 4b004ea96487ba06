#include "jobs/cron.hpp"

#include <date/date.h>

#include <array>
#include <cctype>
#include <cstdint>
#include <vector>

namespace agent {

namespace {

const char* const kCronHint =
    "use 5 fields: minute hour day-of-month month day-of-week, e.g. '*/15 * * * *', "
    "or one of @hourly, @daily, @weekly, @monthly, @yearly";

constexpr std::array<std::string_view, 12> kMonthNames{"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kDayNames{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct Macro {
  std::string_view name;
  std::string_view expansion;
};

constexpr std::array<Macro, 7> kMacros{{
    {"@hourly", "0 * * * *"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},
    {"@monthly", "0 0 1 * *"},
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
}};

struct FieldSpec {
  const char* name;
  int low;
  int high;
  const std::string_view* names = nullptr;  // names[i] stands for low + i
  std::size_t name_count = 0;
  const char* name_range = "";  // for messages: "JAN-DEC"
};

constexpr std::array<FieldSpec, 5> kFields{{
    {"minute", 0, 59},
    {"hour", 0, 23},
    {"day-of-month", 1, 31},
    {"month", 1, 12, kMonthNames.data(), kMonthNames.size(), "JAN-DEC"},
    // 7 is accepted as a second Sunday; the caller folds it onto 0.
    {"day-of-week", 0, 7, kDayNames.data(), kDayNames.size(), "SUN-SAT"},
}};

// The Gregorian calendar repeats itself, weekdays included, every 400 years (146097 days, a
// whole number of weeks): finding nothing in one cycle means nothing is ever found.
constexpr int kHorizonDays = 146097;

// The most days a month ever has: February 29 exists in leap years.
constexpr std::array<unsigned, 13> kLongestMonth{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    const std::size_t begin = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    if (i > begin) words.push_back(text.substr(begin, i - begin));
  }
  return words;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t begin = 0;
  for (;;) {
    const std::size_t end = text.find(separator, begin);
    parts.push_back(text.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    if (end == std::string_view::npos) return parts;
    begin = end + 1;
  }
}

// Digits only; large values saturate so "99999999999" still reads as "out of range", not as garbage.
std::optional<int> number(std::string_view token) {
  if (token.empty()) return std::nullopt;
  int value = 0;
  for (const char c : token) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    if (value < 1000) value = value * 10 + (c - '0');
  }
  return value;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Error refuse(const std::string& why) const {
    return make_error(ErrorKind::usage, "cron expression '" + std::string(text_) + "': " + why, kCronHint);
  }

  // One field as a bit mask: bit v set when value v matches.
  Result<std::uint64_t> field(std::string_view token, const FieldSpec& spec) const {
    std::uint64_t mask = 0;
    for (const auto item : split(token, ',')) {
      if (item.empty())
        return refuse(std::string(spec.name) + " has an empty list item in '" + std::string(token) + "'");
      auto bits = list_item(item, spec);
      if (!bits) return bits.error();
      mask |= *bits;
    }
    return mask;
  }

 private:
  Result<std::uint64_t> list_item(std::string_view item, const FieldSpec& spec) const {
    const std::string name(spec.name);
    const std::string quoted = "'" + std::string(item) + "'";
    const auto malformed = [&] {
      return refuse(name + " " + quoted + " is not valid; expected *, N, N-M, */S or N-M/S");
    };

    const auto slash = split(item, '/');
    if (slash.size() > 2) return malformed();
    const std::string_view base = slash[0];
    int step = 1;
    if (slash.size() == 2) {
      const auto parsed = number(slash[1]);
      if (!parsed) return malformed();
      const int widest = spec.high - spec.low + 1;
      if (*parsed < 1 || *parsed > widest)
        return refuse(name + " step " + std::string(slash[1]) + " in " + quoted + " is outside 1-" +
                      std::to_string(widest));
      step = *parsed;
    }

    int first = spec.low;
    int last = spec.high;
    if (base != "*") {
      const auto dash = split(base, '-');
      if (dash.size() > 2 || dash[0].empty() || (dash.size() == 2 && dash[1].empty())) return malformed();
      auto low = value(dash[0], spec);
      if (!low) return low.error();
      first = last = *low;
      if (dash.size() == 2) {
        auto high = value(dash[1], spec);
        if (!high) return high.error();
        last = *high;
        if (first > last)
          return refuse(name + " range " + std::string(base) +
                        " is reversed; ranges do not wrap around, use a list such as 22-23,0-2");
      } else if (slash.size() == 2) {
        // "5/15" means different things in different crons; make the person say which.
        return refuse(name + " " + quoted + " has a step without a range; write */S or N-M/S, e.g. " +
                      std::string(dash[0]) + "-" + std::to_string(spec.high) + "/" + std::string(slash[1]));
      }
    }

    std::uint64_t mask = 0;
    for (int v = first; v <= last; v += step) mask |= std::uint64_t{1} << v;
    return mask;
  }

  Result<int> value(std::string_view token, const FieldSpec& spec) const {
    const std::string name(spec.name);
    if (const auto parsed = number(token)) {
      if (*parsed < spec.low || *parsed > spec.high)
        return refuse(name + " " + std::string(token) + " is outside " + std::to_string(spec.low) + "-" +
                      std::to_string(spec.high));
      return *parsed;
    }
    const std::string wanted = upper(token);
    for (std::size_t i = 0; i < spec.name_count; ++i)
      if (spec.names[i] == wanted) return spec.low + static_cast<int>(i);
    if (spec.name_count == 0) return refuse(name + " '" + std::string(token) + "' is not a number");
    return refuse(name + " '" + std::string(token) + "' is not a number or a name (" + spec.name_range + ")");
  }

  std::string_view text_;
};

bool day_matches(const CronExpression& cron, date::local_days day) {
  const date::year_month_day ymd{day};
  if (!cron.months[static_cast<unsigned>(ymd.month())]) return false;
  const bool dom = cron.days_of_month[static_cast<unsigned>(ymd.day())];
  const bool dow = cron.days_of_week[date::weekday{day}.c_encoding()];
  if (cron.day_of_month_restricted && cron.day_of_week_restricted) return dom || dow;
  return dom && dow;  // an unrestricted field has every bit set
}

// The instant a matching local time stands for: a skipped time runs when the gap ends, a repeated
// time at its first (earlier-offset) occurrence.
std::chrono::sys_seconds resolve(const date::time_zone& zone, date::local_seconds local) {
  const auto info = zone.get_info(local);
  if (info.result == date::local_info::nonexistent) return info.first.end;
  return std::chrono::sys_seconds{local.time_since_epoch() - info.first.offset};
}

// "FEB", "APR or JUN", "APR, JUN, SEP or NOV".
std::string month_list(const std::bitset<13>& months) {
  std::vector<std::string_view> names;
  for (unsigned m = 1; m <= 12; ++m)
    if (months[m]) names.push_back(kMonthNames[m - 1]);
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + std::string(names[i]);
  return out;
}

}  // namespace

std::optional<std::string> never_fires_reason(const CronExpression& cron) {
  // Both day fields restricted: a day matches when either does, and every weekday comes in
  // every month. Otherwise a day must match both; the day-of-week field holds at least one
  // weekday, and each (month, day) that exists falls on every weekday in some year. So only the
  // day-of-month field against the months can rule every day out.
  if (cron.day_of_month_restricted && cron.day_of_week_restricted) return std::nullopt;
  std::string days;
  for (unsigned d = 1; d <= 31; ++d) {
    if (!cron.days_of_month[d]) continue;
    for (unsigned m = 1; m <= 12; ++m)
      if (cron.months[m] && d <= kLongestMonth[m]) return std::nullopt;
    days += (days.empty() ? "" : " or ") + std::to_string(d);
  }
  const bool one_month = cron.months.count() == 1;
  return "it never fires: " + std::string(one_month ? "" : "none of ") + month_list(cron.months) +
         (one_month ? " has no day " : " has a day ") + days + "; name a day that exists in " +
         (one_month ? "that month" : "one of them") +
         " (February has 29 days in leap years), or use the day-of-week field";
}

Result<CronExpression> parse_cron(std::string_view text) {
  const Parser parser(text);
  auto words = split_words(text);
  if (words.size() == 1 && words[0].front() == '@') {
    const std::string macro = lower(words[0]);
    std::string_view expansion;
    for (const auto& known : kMacros)
      if (known.name == macro) expansion = known.expansion;
    if (expansion.empty())
      return parser.refuse("unknown macro '" + std::string(words[0]) +
                           "'; known: @hourly, @daily, @midnight, @weekly, @monthly, @yearly, @annually");
    words = split_words(expansion);
  }
  if (words.size() != kFields.size())
    return parser.refuse("expected 5 fields (minute hour day-of-month month day-of-week), got " +
                         std::to_string(words.size()));

  std::array<std::uint64_t, 5> masks{};
  for (std::size_t i = 0; i < kFields.size(); ++i) {
    auto mask = parser.field(words[i], kFields[i]);
    if (!mask) return mask.error();
    masks[i] = *mask;
  }
  constexpr std::uint64_t kSunday = 1;
  constexpr std::uint64_t kSeventhDay = std::uint64_t{1} << 7;
  if (masks[4] & kSeventhDay) masks[4] = (masks[4] & ~kSeventhDay) | kSunday;

  CronExpression cron;
  cron.minutes = std::bitset<60>(masks[0]);
  cron.hours = std::bitset<24>(masks[1]);
  cron.days_of_month = std::bitset<32>(masks[2]);
  cron.months = std::bitset<13>(masks[3]);
  cron.days_of_week = std::bitset<7>(masks[4]);
  cron.day_of_month_restricted = words[2].front() != '*';
  cron.day_of_week_restricted = words[4].front() != '*';
  cron.text = std::string(text);
  return cron;
}

std::optional<std::chrono::sys_seconds> next_fire(const CronExpression& cron, const date::time_zone& zone,
                                                  std::chrono::sys_seconds after) {
  using std::chrono::hours;
  using std::chrono::minutes;
  // Walking local wall-clock minutes (not instants) is what makes a fall-back's repeated hour
  // come up once: its minutes map to instants at or before `after` the second time round.
  const auto start = date::floor<minutes>(zone.to_local(after)) + minutes{1};
  const auto first_day = date::floor<date::days>(start);
  const auto last_day = first_day + date::days{kHorizonDays};
  for (auto day = first_day; day <= last_day; day += date::days{1}) {
    const date::year_month_day ymd{day};
    if (!cron.months[static_cast<unsigned>(ymd.month())]) {
      // Straight to the first of the next month; the loop's increment is undone.
      day = date::local_days{ymd.year() / ymd.month() / date::last};
      continue;
    }
    if (!day_matches(cron, day)) continue;
    for (std::size_t h = 0; h < cron.hours.size(); ++h) {
      if (!cron.hours[h]) continue;
      for (std::size_t m = 0; m < cron.minutes.size(); ++m) {
        if (!cron.minutes[m]) continue;
        const auto candidate = day + hours{h} + minutes{m};
        if (candidate < start) continue;
        const auto instant = resolve(zone, candidate);
        if (instant > after) return instant;
      }
    }
  }
  return std::nullopt;
}

}  // namespace agent
