#include "jobs/handled_values.hpp"

#include <date/date.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/files.hpp"

namespace agent {

namespace {

constexpr int kFormatVersion = 1;
constexpr const char* kTimeFormat = "%FT%TZ";

const char* const kStrictHint =
    "fix or remove the file; without it the agent records the annotation's current value as "
    "handled and only a later, new value triggers a backup";

Error corrupt(const std::string& path, const std::string& why) {
  return make_error(ErrorKind::environment, "cannot use the handled-annotations file " + path + ": " + why,
                    kStrictHint);
}

// Until the state is usable the trigger requests nothing; every hint says so.
Error unusable_error(std::string message, const std::string& what_to_do) {
  return make_error(ErrorKind::environment, std::move(message),
                    what_to_do +
                        "; until then the annotation trigger requests no backup (it looks again on "
                        "every read of the annotations, no restart needed)");
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

std::string parent_directory(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// The directory must exist and take new files, or nothing we remember would survive.
std::optional<Error> directory_problem(const std::string& path) {
  const std::string dir = parent_directory(path);
  const std::string fix = "create it, writable by the agent's user, or set state_dir to such a directory";
  struct stat info {};
  if (stat(dir.c_str(), &info) != 0) {
    const int saved = errno;
    if (saved == ENOENT) return unusable_error("the state directory " + dir + " does not exist", fix);
    return unusable_error("cannot inspect the state directory " + dir + ": " + std::strerror(saved), fix);
  }
  if (!S_ISDIR(info.st_mode))
    return unusable_error("the state directory " + dir + " is not a directory", fix);
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    const int saved = errno;
    return unusable_error(
        "the state directory " + dir + " is not writable: " + std::strerror(saved),
        "make it writable by the agent's user (on OpenShift: group 0 writable) or set state_dir elsewhere");
  }
  return std::nullopt;
}

// A value as the file keeps it: JSON strings are UTF-8, so bytes that are not valid UTF-8 are
// replaced (U+FFFD) when saved. Comparing in that form too keeps a value matching itself after
// a restart; two values that differ only in invalid bytes count as one, which can only ever
// skip a backup, never run one twice.
std::string as_stored(const std::string& value) {
  const std::string dumped =
      nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return nlohmann::json::parse(dumped).get<std::string>();
}

// `path`.corrupt-20261123T100000Z, or with -2, -3, ... when a file of that name is already there.
std::string aside_name(const std::string& path, std::chrono::system_clock::time_point now) {
  const std::string base =
      path + ".corrupt-" + date::format("%Y%m%dT%H%M%SZ", date::floor<std::chrono::seconds>(now));
  std::string name = base;
  struct stat info {};
  for (int n = 2; lstat(name.c_str(), &info) == 0 && n < 1000; ++n) name = base + "-" + std::to_string(n);
  return name;
}

}  // namespace

std::string HandledValues::Recovery::describe(const std::string& path) const {
  return "the handled-annotations file " + path + " was corrupt (" + reason + "); kept it as " + kept_as +
         " and started afresh: the annotation's current value is recorded as handled without a backup, as on "
         "a first start, so no old value runs again. If a backup was wanted for the current value, set the "
         "annotation to a new value";
}

std::optional<std::string> HandledValues::parse(const std::string& text) {
  // Every field is checked: a file that parses but is not ours must not pass as empty.
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object())
    return text.empty() ? "it is empty" : "it is not a JSON object";
  if (!json.contains("version") || json["version"] != kFormatVersion) return "unknown format version";
  if (!json.contains("values") || !json["values"].is_array()) return "\"values\" is not a list";
  for (const auto& value : json["values"]) {
    if (!value.is_string()) return "\"values\" holds something that is not a string";
    values_.push_back(value.get<std::string>());
  }
  while (values_.size() > kMaxValues) values_.pop_front();
  if (json.contains("last_value") && json["last_value"].is_string())
    last_value_ = json["last_value"].get<std::string>();
  if (json.contains("last_handled_at") && json["last_handled_at"].is_string()) {
    const auto at = parse_utc(json["last_handled_at"].get<std::string>());
    if (!at) return "\"last_handled_at\" is not a time like 2026-11-23T10:00:00Z";
    last_handled_at_ = *at;
  }
  return std::nullopt;
}

Result<HandledValues> HandledValues::load(std::string path) {
  HandledValues state(std::move(path));
  const FileRead file = read_regular_file_nonblocking(state.path_, kMaxFileBytes);
  switch (file.outcome) {
    case FileRead::Outcome::ok:
      break;
    case FileRead::Outcome::missing:
      return state;
    case FileRead::Outcome::too_large:
      return corrupt(state.path_,
                     "it is larger than " + std::to_string(kMaxFileBytes / (1024 * 1024)) + " MiB");
    case FileRead::Outcome::not_regular:
    case FileRead::Outcome::failed:
      return corrupt(state.path_, file.problem);
  }
  state.persisted_ = true;
  if (auto why = state.parse(file.content)) return corrupt(state.path_, *why);
  return state;
}

HandledValues HandledValues::open(std::string path, std::chrono::system_clock::time_point now) {
  HandledValues state(std::move(path));
  const FileRead file = read_regular_file_nonblocking(state.path_, kMaxFileBytes);
  std::optional<std::string> corrupt_because;
  switch (file.outcome) {
    case FileRead::Outcome::missing:
      break;  // a first start, unless the directory itself is missing (checked below)
    case FileRead::Outcome::not_regular:
    case FileRead::Outcome::failed:
      // We cannot see what it holds, so we cannot say which values were handled.
      state.problem_ = unusable_error("cannot read the handled-annotations file: " + file.problem,
                                      "move it away or fix its permissions");
      return state;
    case FileRead::Outcome::too_large:
      corrupt_because = "it is larger than " + std::to_string(kMaxFileBytes / (1024 * 1024)) + " MiB";
      break;
    case FileRead::Outcome::ok:
      corrupt_because = state.parse(file.content);
      state.persisted_ = !corrupt_because.has_value();
      break;
  }
  if (corrupt_because) {
    HandledValues fresh(state.path_);
    const std::string kept_as = aside_name(fresh.path_, now);
    if (rename(fresh.path_.c_str(), kept_as.c_str()) != 0) {
      const int saved = errno;
      fresh.problem_ =
          unusable_error("the handled-annotations file " + fresh.path_ + " is corrupt (" + *corrupt_because +
                             ") and cannot be moved aside to " + kept_as + ": " + std::strerror(saved),
                         "move or remove " + fresh.path_ +
                             " (the agent then records the annotation's current value without a "
                             "backup and acts on later values)");
      return fresh;
    }
    fresh.recovery_ = Recovery{*corrupt_because, kept_as, now};
    state = std::move(fresh);
  }
  if (auto problem = directory_problem(state.path_)) state.problem_ = std::move(problem);
  return state;
}

HandledValues HandledValues::unusable(std::string path, Error why) {
  HandledValues state(std::move(path));
  state.problem_ = std::move(why);
  return state;
}

bool HandledValues::retry(std::chrono::system_clock::time_point now) {
  if (usable()) return true;
  HandledValues next = open(path_, now);
  if (!next.recovery_) next.recovery_ = recovery_;
  *this = std::move(next);
  return usable();
}

bool HandledValues::contains(const std::string& value) const {
  return std::find(values_.begin(), values_.end(), as_stored(value)) != values_.end();
}

Status HandledValues::remember(const std::string& value, std::chrono::system_clock::time_point at) {
  if (problem_) return *problem_;
  // Work on a copy so a failed write leaves memory and disk in agreement.
  HandledValues next = *this;
  const std::string stored = as_stored(value);
  if (!next.contains(stored)) next.values_.push_back(stored);
  while (next.values_.size() > kMaxValues) next.values_.pop_front();
  next.last_value_ = stored;
  next.last_handled_at_ = at;
  if (auto saved = next.save(); !saved) return saved;
  *this = std::move(next);
  return {};
}

Status HandledValues::save() {
  if (problem_) return *problem_;
  nlohmann::json json = {{"version", kFormatVersion}, {"values", values_}};
  if (last_value_) json["last_value"] = *last_value_;
  if (last_handled_at_)
    json["last_handled_at"] = date::format(kTimeFormat, date::floor<std::chrono::seconds>(*last_handled_at_));
  // Every value is as_stored already; replace only keeps a slip from making the state unsavable.
  const std::string text = json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (auto written = write_file_atomically(path_, text); !written)
    return written.error().with_context("while saving the handled annotation values");
  persisted_ = true;
  return {};
}

}  // namespace agent
