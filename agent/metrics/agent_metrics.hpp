#pragma once
// Every metric the agent exports, declared in one place and fed from job results, repository
// reads and pg_stat_archiver. Ages are computed when scraped, from stored timestamps, so a
// freshness series is never stale by the refresh interval; repository values come from
// `pgbackrest info`, so they are right after a restart and the same on every pod. Every
// repository value carries the repository (`repo`, its key: "1" for repo1), one repository's
// failure leaves the others' series as they are.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "jobs/backup_request.hpp"
#include "jobs/job_result.hpp"
#include "pg/session.hpp"
#include "pgbackrest/info.hpp"

namespace prometheus {
class Registry;
class Gauge;
class Counter;
template <typename T>
class Family;
}  // namespace prometheus

namespace agent {

// A restore drill as the metrics see it (from its manifest, pipelines/drill_pipeline.hpp).
struct DrillOutcome {
  std::string id;
  std::string result;  // passed, failed, error
  std::int64_t finished_epoch = 0;
  double total_seconds = 0;
  std::map<std::string, double> phase_seconds;
  std::optional<double> replay_gap_seconds;
  std::uint64_t objects_checked = 0;
  std::uint64_t objects_failed = 0;
};

// What the last reads said about one repository, for `agent status`.
struct RepositorySummary {
  int repo = 0;
  bool readable = false;                        // the last read could read it
  std::string problem;                          // why not
  std::optional<std::int64_t> last_read_epoch;  // the last read that could
  std::map<std::string, BackupRecord> newest_by_type;
  std::size_t backups = 0;
  // The recoverable window: from the oldest usable backup's stop to the newest archived WAL
  // (the live server's last archived time, for a repository whose archive is the newest) or,
  // without it, the newest backup's stop.
  std::optional<std::int64_t> window_start_epoch;
  std::optional<std::int64_t> window_end_epoch;
  bool window_end_from_wal = false;
};

// The running backup's progress, from the stanza's backup lock in `pgbackrest info` (2.48+).
struct BackupProgress {
  int repo = 0;  // the repository it backs up into (0: not known yet)
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0;
};

// The running restore of the agent's dump or drill, from pgBackRest's per-file lines.
struct RestoreProgress {
  std::string kind;  // dump, drill
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0;
};

class AgentMetrics {
 public:
  AgentMetrics(std::string stanza, bool crunchy_compat);
  ~AgentMetrics();

  void record_repository_read(const Result<StanzaInfo>& info, std::chrono::system_clock::time_point at,
                              double seconds);
  void record_archiver(const ArchiverStats& stats);
  void record_backup(const BackupResult& result, std::chrono::system_clock::time_point finished);
  void record_skip(const std::string& reason, std::uint64_t count = 1);
  // A part that degraded (state_dir unusable, annotation trigger off) rather than stop the agent.
  void set_component_ok(const std::string& component, bool ok);
  // The config file read again (SIGHUP, or a change seen on disk): applied or refused.
  void record_config_reload(bool applied, std::chrono::system_clock::time_point at);
  void set_queue(std::size_t waiting, std::optional<BackupType> running);
  void record_dump(const DumpResult& dump);
  // The newest drill, the newest passed and failed (or errored) ones' finish times, and how many
  // drills not counted before ended with each result.
  void record_drills(const std::optional<DrillOutcome>& last, std::optional<std::int64_t> last_success,
                     std::optional<std::int64_t> last_failure,
                     const std::map<std::string, std::uint64_t>& new_results);
  // Age after which the absence of a successful drill alerts (drill.max_age_hours, schedules.drill).
  void set_drill_max_age(double seconds);
  void record_dump_failed(std::chrono::system_clock::time_point at);
  // The longest gap between scheduled backups per (repository, type), as the age metric counts
  // types (jobs/schedule_interval.hpp); replaces the previous set.
  void set_expected_intervals(const std::map<std::pair<int, std::string>, std::chrono::seconds>& intervals);
  // alerts.min_window_hours, for the window alert; 0: no minimum.
  void set_min_window(std::chrono::seconds minimum);

  // A backup job of the agent's started (into `repo`, 0: the default one) or ended: between the
  // two, reads of `pgbackrest info` feed its progress; at the end its series go.
  void begin_backup_progress(int repo);
  void end_backup_progress();
  bool backup_progress_wanted();
  // The stanza's backup lock from a read: sizes while the agent's backup runs, else ignored.
  void record_backup_progress(const LockProgress& lock);
  // The running backup's progress; none before pgBackRest reports a size, or without a backup.
  std::optional<BackupProgress> backup_progress();

  // The restore of the agent's dump or drill (`kind`: dump, drill) has restored `bytes_done` of
  // `bytes_total`; its series stay until end_restore_progress (the job ends).
  void record_restore_progress(const std::string& kind, std::uint64_t bytes_done, std::uint64_t bytes_total);
  void end_restore_progress();
  // The running restore's progress; none before its first file, or without a restore.
  std::optional<RestoreProgress> restore_progress();

  // The Prometheus text format, with ages computed for `now`.
  std::string scrape(std::chrono::system_clock::time_point now);

  // The repositories as the last reads left them, in key order.
  std::vector<RepositorySummary> repositories();
  // Why the last read of `pgbackrest info` failed as a whole; empty when it worked.
  std::string read_error();

 private:
  struct Families;
  // One repository's last known state.
  struct Repo {
    std::map<std::string, BackupRecord> newest_by_type;
    std::optional<std::int64_t> oldest_full;
    std::optional<std::int64_t> oldest;  // the window's start
    std::string archive_max;             // its archive's newest WAL segment
    std::size_t backups = 0;
    bool readable = false;
    std::string problem;
    std::optional<std::int64_t> last_read_epoch;
    prometheus::Gauge* archive_range_series = nullptr;
  };
  void forget_repo(int key);
  // Where the repository's recoverable window ends, and whether WAL says so (mutex held).
  std::optional<std::pair<std::int64_t, bool>> window_end(const Repo& repo) const;
  std::map<std::pair<int, std::string>, std::chrono::seconds> intervals_;
  std::string newest_archive_;  // the newest WAL segment over every repository
  std::string stanza_;
  bool crunchy_compat_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
  struct DrillFamilies;
  std::unique_ptr<DrillFamilies> drill_;
  std::mutex mutex_;
  // Bumped by every recording method; the cached text is reused only for the same generation
  // within the same second.
  std::atomic<std::uint64_t> generation_{0};
  std::optional<std::string> cached_text_;
  std::int64_t cached_second_ = 0;
  std::uint64_t cached_generation_ = 0;
  std::map<int, Repo> repos_;  // by key, from the repository reads
  // A read that failed before any repository was known: its series have an empty repo label.
  bool failed_unknown_ = false;
  std::string read_error_;
  std::optional<ArchiverStats> archiver_;
  std::optional<int> progress_repo_;  // set while the agent's backup runs
  std::optional<BackupProgress> progress_;
  std::optional<RestoreProgress> restore_progress_;  // set while a dump's or drill's restore runs
  // pgMonitor-compatible series, when enabled.
  prometheus::Family<prometheus::Gauge>* ccp_full_age_ = nullptr;
  prometheus::Family<prometheus::Gauge>* ccp_diff_age_ = nullptr;
  prometheus::Family<prometheus::Gauge>* ccp_incr_age_ = nullptr;
  prometheus::Family<prometheus::Gauge>* ccp_runtime_ = nullptr;
  prometheus::Family<prometheus::Gauge>* ccp_repo_size_ = nullptr;
  prometheus::Family<prometheus::Gauge>* ccp_oldest_full_ = nullptr;
  prometheus::Family<prometheus::Gauge>* ccp_since_archive_ = nullptr;
  prometheus::Family<prometheus::Gauge>* ccp_since_fail_ = nullptr;
};

}  // namespace agent
