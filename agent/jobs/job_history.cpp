#include "jobs/job_history.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "core/files.hpp"

namespace agent {

namespace {

constexpr int kFormatVersion = 1;

std::string utc_stamp() {
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &tm);
  return text;
}

}  // namespace

Result<JobHistory> JobHistory::open(std::string path) {
  JobHistory history(std::move(path));
  std::ifstream in(history.path_, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return history;
    return make_error(ErrorKind::environment,
                      "cannot open the job history " + history.path_ + ": " + std::strerror(errno),
                      "check the permissions of state_dir");
  }
  std::stringstream content;
  content << in.rdbuf();
  const auto json = nlohmann::json::parse(content.str(), nullptr, /*allow_exceptions=*/false);
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
  // A broken history must not stop the agent; it is kept for a person to read.
  const std::string aside = history.path_ + ".corrupt-" + utc_stamp();
  if (std::rename(history.path_.c_str(), aside.c_str()) != 0)
    return make_error(ErrorKind::environment,
                      "the job history " + history.path_ + " is corrupt (" + problem +
                          ") and cannot be moved aside: " + std::strerror(errno),
                      "remove or fix it");
  history.recovered_from_ = "the job history was corrupt (" + problem + "); kept as " + aside;
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
