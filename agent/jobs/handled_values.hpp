#pragma once
// The annotation values that already triggered (or were deliberately skipped), kept on disk so
// a value never triggers twice, not even across restarts of the agent.
//
// The file is JSON, written atomically (write_file_atomically):
//   {"version": 1, "values": ["oldest", ..., "newest"],
//    "last_value": "newest", "last_handled_at": "2026-11-23T10:00:00Z"}
//
// A broken state disables only the annotation trigger, never the agent (open() never fails):
// - A file whose content is not ours (not JSON, empty, another format version, a value that is
//   not a string, larger than kMaxFileBytes) is kept aside as
//   `handled-annotations.json.corrupt-<UTC time, e.g. 20261123T100000Z>` and the state starts
//   afresh, unpersisted: the trigger's next read then records the annotation's current value
//   as handled without a backup, exactly as on a first-ever start. So an old value is never
//   run again; the price is that a value set while the file was broken is not run either (set
//   the annotation to a new value to get that backup). recovery() says this happened.
// - A state that cannot be used safely (the file cannot be read: permissions, I/O, a FIFO or a
//   directory in its place; a corrupt file that cannot be moved aside; a state directory that
//   is missing or not writable) makes the state unusable: remember() and save() refuse, so the
//   trigger asks for no backup at all until it is fixed. problem() says what and what to do;
//   retry() looks again (the trigger calls it on every read, so a fix needs no restart).
#include <chrono>
#include <deque>
#include <optional>
#include <string>

#include "core/error.hpp"

namespace agent {

class HandledValues {
 public:
  // A value older than the last 100 is forgotten: nobody sets an annotation back to a value
  // from 100 backups ago, and the file stays small.
  static constexpr std::size_t kMaxValues = 100;
  // 100 values within the API server's 256 KiB for all annotations, escaped: a larger file is
  // not one we wrote.
  static constexpr std::size_t kMaxFileBytes = 32 * 1024 * 1024;

  // What open() did with a corrupt file.
  struct Recovery {
    std::string reason;   // "it is not a JSON object"
    std::string kept_as;  // the path the corrupt file was renamed to
    std::chrono::system_clock::time_point at;
    // One line for the log and `agent status`: what happened, what it means, what to do.
    std::string describe(const std::string& path) const;
  };

  // Never fails (see the top of this file): a usable state, possibly fresh after keeping a
  // corrupt file aside (recovery()), or an unusable one (problem()). `now` names the kept file.
  static HandledValues open(std::string path,
                            std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
  // An unusable state for `path` from the start, e.g. when the state directory cannot be
  // created; retry() then opens `path` as open() does.
  static HandledValues unusable(std::string path, Error why);

  // The strict form: a missing file is an empty state (see persisted); an unreadable or corrupt
  // one is an ErrorKind::environment error and stays where it is.
  static Result<HandledValues> load(std::string path);

  // False: remember() and save() refuse and the annotation trigger requests nothing.
  bool usable() const { return !problem_.has_value(); }
  // Why the state is unusable (message and hint), when it is.
  const std::optional<Error>& problem() const { return problem_; }
  // Set when a corrupt file was kept aside and the state started afresh (kept across retry()).
  const std::optional<Recovery>& recovery() const { return recovery_; }
  // When unusable: opens the file again as open() does; true when the state is usable now.
  bool retry(std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  // Values are compared and kept as the file keeps them: JSON strings are UTF-8, so bytes that
  // are not valid UTF-8 read as U+FFFD. A value then still matches itself after a restart.
  bool contains(const std::string& value) const;
  // Adds `value` (dropping the oldest beyond kMaxValues) and persists before returning; refuses
  // (the state's problem) while the state is unusable.
  Status remember(const std::string& value,
                  std::chrono::system_clock::time_point at = std::chrono::system_clock::now());
  // Persists the current state as it is; lets a first start leave its mark even with no value.
  Status save();

  // False while there is no file: load() found none (or a corrupt one was kept aside) and
  // nothing was saved since, i.e. the agent has no memory of earlier values (see
  // AnnotationTrigger's first read, which then records the current value without a backup).
  bool persisted() const { return persisted_; }
  const std::string& path() const { return path_; }
  const std::deque<std::string>& values() const { return values_; }  // oldest first
  // For status: the last value handled and when.
  const std::optional<std::string>& last_value() const { return last_value_; }
  const std::optional<std::chrono::system_clock::time_point>& last_handled_at() const {
    return last_handled_at_;
  }

 private:
  explicit HandledValues(std::string path) : path_(std::move(path)) {}
  // The values in `text`, or why it is not a state file of ours.
  std::optional<std::string> parse(const std::string& text);

  std::string path_;
  bool persisted_ = false;
  std::deque<std::string> values_;
  std::optional<std::string> last_value_;
  std::optional<std::chrono::system_clock::time_point> last_handled_at_;
  std::optional<Error> problem_;
  std::optional<Recovery> recovery_;
};

}  // namespace agent
