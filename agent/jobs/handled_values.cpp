#include "jobs/handled_values.hpp"

#include <date/date.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/files.hpp"

namespace agent {

namespace {

constexpr int kFormatVersion = 1;
constexpr const char* kTimeFormat = "%FT%TZ";

Error corrupt(const std::string& path, const std::string& why) {
  return make_error(ErrorKind::environment, "cannot use the handled-annotations file " + path + ": " + why,
                    "fix or remove the file; without it the agent records the annotation's current value as "
                    "handled and only a later, new value triggers a backup");
}

// "2026-11-23T10:00:00Z", the form save() writes. (date::parse trips -Wmaybe-uninitialized.)
std::optional<std::chrono::system_clock::time_point> parse_utc(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, used = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
      static_cast<std::size_t>(used) != text.size())
    return std::nullopt;
  const date::year_month_day day{date::year{y}, date::month{static_cast<unsigned>(mo)},
                                 date::day{static_cast<unsigned>(d)}};
  if (!day.ok() || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60) return std::nullopt;
  return date::sys_days{day} + std::chrono::hours{h} + std::chrono::minutes{mi} + std::chrono::seconds{sec};
}

}  // namespace

Result<HandledValues> HandledValues::load(std::string path) {
  HandledValues state(std::move(path));
  std::ifstream in(state.path_, std::ios::binary);
  if (!in) {
    const int saved = errno;
    if (saved == ENOENT) return state;
    return corrupt(state.path_, std::string("cannot open it: ") + std::strerror(saved));
  }
  std::stringstream content;
  content << in.rdbuf();
  if (in.bad()) return corrupt(state.path_, "cannot read it");
  state.persisted_ = true;

  // Every field is checked: a file that parses but is not ours must not pass as empty.
  const auto json = nlohmann::json::parse(content.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return corrupt(state.path_, "it is not a JSON object");
  if (!json.contains("version") || json["version"] != kFormatVersion)
    return corrupt(state.path_, "unknown format version");
  if (!json.contains("values") || !json["values"].is_array())
    return corrupt(state.path_, "\"values\" is not a list");
  for (const auto& value : json["values"]) {
    if (!value.is_string()) return corrupt(state.path_, "\"values\" holds something that is not a string");
    state.values_.push_back(value.get<std::string>());
  }
  while (state.values_.size() > kMaxValues) state.values_.pop_front();
  if (json.contains("last_value") && json["last_value"].is_string())
    state.last_value_ = json["last_value"].get<std::string>();
  if (json.contains("last_handled_at") && json["last_handled_at"].is_string()) {
    const auto at = parse_utc(json["last_handled_at"].get<std::string>());
    if (!at) return corrupt(state.path_, "\"last_handled_at\" is not a time like 2026-11-23T10:00:00Z");
    state.last_handled_at_ = *at;
  }
  return state;
}

bool HandledValues::contains(const std::string& value) const {
  return std::find(values_.begin(), values_.end(), value) != values_.end();
}

Status HandledValues::remember(const std::string& value, std::chrono::system_clock::time_point at) {
  // Work on a copy so a failed write leaves memory and disk in agreement.
  HandledValues next = *this;
  if (!next.contains(value)) next.values_.push_back(value);
  while (next.values_.size() > kMaxValues) next.values_.pop_front();
  next.last_value_ = value;
  next.last_handled_at_ = at;
  if (auto saved = next.save(); !saved) return saved;
  *this = std::move(next);
  return {};
}

Status HandledValues::save() {
  nlohmann::json json = {{"version", kFormatVersion}, {"values", values_}};
  if (last_value_) json["last_value"] = *last_value_;
  if (last_handled_at_)
    json["last_handled_at"] = date::format(kTimeFormat, date::floor<std::chrono::seconds>(*last_handled_at_));
  // replace: a value that is not valid UTF-8 must not make the state unsavable. Such a value is
  // then stored altered and would not match itself after a restart, a corner we accept: the
  // kubelet writes annotations, which the API server keeps as UTF-8 strings.
  const std::string text = json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (auto written = write_file_atomically(path_, text); !written)
    return written.error().with_context("while saving the handled annotation values");
  persisted_ = true;
  return {};
}

}  // namespace agent
