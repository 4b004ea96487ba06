#include "jobs/job_history.hpp"

#include "core/files.hpp"

namespace agent {

namespace {

constexpr int kFormatVersion = 1;

}  // namespace

Result<JobHistory> JobHistory::open(std::string path) {
  JobHistory history(std::move(path));
  auto text = read_state_file(history.path_, "job history");
  if (!text) return text.error();
  if (!*text) return history;
  const auto json = nlohmann::json::parse(**text, nullptr, /*allow_exceptions=*/false);
  std::string problem;
  if (json.is_discarded() || !json.is_object())
    problem = "it is not a JSON object";
  else if (!json.contains("version") || json["version"] != kFormatVersion)
    problem = "unknown format version";
  else if (!json.contains("jobs") || !json["jobs"].is_array())
    problem = "jobs is missing";
  else
    for (const auto& entry : json["jobs"])
      if (!entry.is_object()) problem = "a job is not an object";
  if (problem.empty()) {
    for (const auto& entry : json["jobs"]) {
      if (history.entries_.size() >= kMaxEntries) break;
      history.entries_.push_back(entry);
    }
    return history;
  }
  auto aside = move_corrupt_state_file_aside(history.path_, "job history", problem);
  if (!aside) return aside.error();
  history.recovered_from_ = "the job history was corrupt (" + problem + "); kept as " + *aside;
  return history;
}

Status JobHistory::add(nlohmann::json entry) {
  entries_.insert(entries_.begin(), std::move(entry));
  if (entries_.size() > kMaxEntries) entries_.resize(kMaxEntries);
  const nlohmann::json json = {{"version", kFormatVersion}, {"jobs", entries_}};
  // Reasons carry annotation values, which may be any bytes: never throw on invalid UTF-8.
  return write_file_atomically(path_,
                               json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace agent
