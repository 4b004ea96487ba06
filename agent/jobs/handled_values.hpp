#pragma once
// The annotation values that already triggered (or were deliberately skipped), kept on disk so
// a value never triggers twice, not even across restarts of the agent.
//
// The file is JSON, written atomically (write_file_atomically):
//   {"version": 1, "values": ["oldest", ..., "newest"],
//    "last_value": "newest", "last_handled_at": "2026-11-23T10:00:00Z"}
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

  // A missing file is an empty state (see persisted); an unreadable or corrupt one is an
  // ErrorKind::environment error: guessing would risk a second backup for an old value.
  static Result<HandledValues> load(std::string path);

  bool contains(const std::string& value) const;
  // Adds `value` (dropping the oldest beyond kMaxValues) and persists before returning.
  Status remember(const std::string& value,
                  std::chrono::system_clock::time_point at = std::chrono::system_clock::now());
  // Persists the current state as it is; lets a first start leave its mark even with no value.
  Status save();

  // False while there is no file: load() found none and nothing was saved since, i.e. the
  // agent has never run with this state before (see AnnotationTrigger's first read).
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

  std::string path_;
  bool persisted_ = false;
  std::deque<std::string> values_;
  std::optional<std::string> last_value_;
  std::optional<std::chrono::system_clock::time_point> last_handled_at_;
};

}  // namespace agent
