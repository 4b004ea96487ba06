#pragma once
// The backup jobs `agent run` finished survive it: each one's record (as `agent status` lists it
// under "recent": type, trigger, reason, repository, requested, started and finished times,
// outcome with pgBackRest's error code, the backup it made) is added to state_dir/history.json
// when the job ends, so `agent status` after a restart still says what ran and who asked.
// Bounded: the newest kMaxEntries are kept.
//
// The file is JSON, written atomically: {"version": 1, "jobs": [{...}, ...]} (newest first).
// A corrupt one is kept aside (renamed to NAME.corrupt-<time>) and the history starts empty;
// `recovered_from` says so.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace agent {

class JobHistory {
 public:
  static constexpr std::size_t kMaxEntries = 50;

  // A missing file is an empty history.
  static Result<JobHistory> open(std::string path);

  // Adds a finished job's record (a JSON object) as the newest and writes the file.
  Status add(nlohmann::json entry);

  const std::vector<nlohmann::json>& entries() const { return entries_; }  // newest first
  const std::string& recovered_from() const { return recovered_from_; }

 private:
  explicit JobHistory(std::string path) : path_(std::move(path)) {}

  std::string path_;
  std::vector<nlohmann::json> entries_;
  std::string recovered_from_;
};

}  // namespace agent
