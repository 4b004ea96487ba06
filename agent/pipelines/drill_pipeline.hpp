#pragma once
// `agent drill`: the dump's steps restore the copy and pause it at the target (never
// promoted), then the drill's checks read it (drill_checks.hpp), the copy is shut down cleanly
// and pg_checksums reads its files. The result, with the backup set, the replay gap (measured
// RPO) and every step's duration (their sum is the measured RTO), is a manifest in
// state_dir/drills, written atomically: DRILL-ID.json and last.json.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "pipelines/drill_checks.hpp"
#include "pipelines/drill_job.hpp"
#include "pipelines/dump_pipeline.hpp"

namespace agent {

struct DrillReport {
  std::string id;              // UTC start time, 20241104T094000Z
  std::string result;          // passed, failed (a check found a problem) or error (the drill could not run)
  std::optional<Error> error;  // result error: what stopped it, with the step
  std::string mode;
  std::string target;  // ISO UTC
  std::string trigger;
  bool narrowed_by_caller = false;  // DrillJob's: --database or --assert
  PausedCopy copy;
  std::vector<StepTiming> timings;
  double total_seconds = 0;
  DrillFindings findings;
  std::string manifest_path;  // "" when it could not be written
  std::int64_t finished_epoch = 0;

  std::uint64_t objects_checked() const;
  std::uint64_t objects_failed() const;
  // The first failing check's object and reason, "" when none failed.
  std::string first_failure() const;
};

// Runs the drill and writes its manifest. Never fails itself: a drill that cannot run is a
// report whose result is "error".
DrillReport run_drill(const DrillJob& job, DumpServices& services);

std::string drill_manifest_json(const DrillReport& report, const DrillJob& job);

// The exit code of `agent drill`: 0 passed, 4 (verification) failed, else the error's.
int drill_exit_code(const DrillReport& report);

// What the manifests in `dir` (state_dir/drills) say: the newest drill, and the newest passed
// and failed (or errored) ones' finish times. Unreadable files are skipped.
struct DrillManifestSummary {
  std::string id;
  std::string result;
  std::int64_t finished_epoch = 0;
  double total_seconds = 0;
  std::map<std::string, double> phase_seconds;
  std::optional<double> replay_gap_seconds;
  std::uint64_t objects_checked = 0;
  std::uint64_t objects_failed = 0;
};
struct DrillHistory {
  std::vector<DrillManifestSummary> drills;  // oldest first (by id)
  std::optional<std::int64_t> last_success;
  std::optional<std::int64_t> last_failure;
};
std::optional<DrillManifestSummary> parse_drill_manifest(const std::string& text);
DrillHistory read_drill_history(const std::string& dir);

// Age after which no successful drill alerts: drill.max_age_hours when set, else twice the
// interval between schedules.drill's next two runs plus an hour, else 8 days.
double drill_max_age_seconds(const AgentConfig& config, std::chrono::system_clock::time_point now);

}  // namespace agent
