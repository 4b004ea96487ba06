#include "metrics/agent_metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>

#include "core/version.hpp"

namespace agent {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;

namespace {

// Marks the metrics as changed when a recording method returns, so that a cached scrape is
// never older than the values it shows. Where a method takes mutex_ it is declared after the
// lock, so the bump comes before the unlock: a scrape (which takes mutex_) that could see the
// new values, or a reader of the same state (backup_progress()), sees the new generation too.
struct GenerationBump {
  explicit GenerationBump(std::atomic<std::uint64_t>& generation) : generation_(generation) {}
  ~GenerationBump() { generation_.fetch_add(1); }
  GenerationBump(const GenerationBump&) = delete;
  GenerationBump& operator=(const GenerationBump&) = delete;
  std::atomic<std::uint64_t>& generation_;
};
const char* const kTypes[] = {"full", "diff", "incr"};

double epoch_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// A backup of type `newest_type` answers a freshness question about `asked`: a full covers
// everything, a diff covers diffs and incrementals.
bool covers(const std::string& newest_type, const std::string& asked) {
  if (newest_type == "full") return true;
  if (newest_type == "diff") return asked != "full";
  return asked == "incr";
}
}  // namespace

struct AgentMetrics::Families {
  explicit Families(prometheus::Registry& r)
      : last_completion(BuildGauge()
                            .Name("agent_backup_last_completion_timestamp_seconds")
                            .Help("Stop time of the newest backup of this type in the repository `repo`")
                            .Register(r)),
        age(BuildGauge()
                .Name("agent_backup_age_seconds")
                .Help("Seconds, at scrape time, since the newest backup covering this type stopped "
                      "(full: full; diff: full or diff; incr: any)")
                .Register(r)),
        last_duration(BuildGauge()
                          .Name("agent_backup_last_duration_seconds")
                          .Help("How long the newest backup of this type took")
                          .Register(r)),
        last_size(BuildGauge()
                      .Name("agent_backup_last_size_bytes")
                      .Help("Database size of the newest backup of this type")
                      .Register(r)),
        last_repo_size(BuildGauge()
                           .Name("agent_backup_last_repository_size_bytes")
                           .Help("Repository size of the newest backup of this type")
                           .Register(r)),
        count(BuildGauge()
                  .Name("agent_repository_backups")
                  .Help("Backups in the repository `repo`, by type")
                  .Register(r)),
        oldest(
            BuildGauge()
                .Name("agent_backup_oldest_completion_timestamp_seconds")
                .Help("Stop time of the oldest backup in the repository `repo`: the start of its recoverable "
                      "window")
                .Register(r)),
        archive_range(BuildGauge()
                          .Name("agent_repository_wal_archive_info")
                          .Help("The WAL range in the archive of the repository `repo` (min and max segment)")
                          .Register(r)),
        info_success(BuildGauge()
                         .Name("agent_repository_info_success")
                         .Help("1 if the last `pgbackrest info` could read the repository `repo`, 0 if not "
                               "(repo=\"\": it failed before any repository was known)")
                         .Register(r)),
        info_last_success(BuildGauge()
                              .Name("agent_repository_info_last_success_timestamp_seconds")
                              .Help("When `pgbackrest info` last read the repository `repo`")
                              .Register(r)),
        info_duration(BuildGauge()
                          .Name("agent_repository_info_duration_seconds")
                          .Help("How long the last `pgbackrest info` read took")
                          .Register(r)),
        info_errors(BuildCounter()
                        .Name("agent_repository_info_errors_total")
                        .Help("`pgbackrest info` reads that could not read the repository `repo`")
                        .Register(r)),
        backups(BuildCounter()
                    .Name("agent_backups_total")
                    .Help("Backup jobs the agent ran, by repository, type, trigger and result")
                    .Register(r)),
        last_success(BuildGauge()
                         .Name("agent_backup_last_success_timestamp_seconds")
                         .Help("When the agent's last successful backup of this type into `repo` finished")
                         .Register(r)),
        last_failure(BuildGauge()
                         .Name("agent_backup_last_failure_timestamp_seconds")
                         .Help("When the agent's last failed backup of this type into `repo` finished")
                         .Register(r)),
        lock_waits(BuildCounter()
                       .Name("agent_backup_lock_waits_total")
                       .Help("Times a backup found the stanza's backup lock held by another process "
                             "(pgBackRest 050, e.g. the operator's own schedule) and waited for it")
                       .Register(r)),
        skipped(BuildCounter()
                    .Name("agent_jobs_skipped_total")
                    .Help("Backup requests skipped, by reason")
                    .Register(r)),
        queue_length(BuildGauge()
                         .Name("agent_queue_length")
                         .Help("Backups waiting behind the running one")
                         .Register(r)),
        running(
            BuildGauge().Name("agent_backup_running").Help("1 while a backup of this type runs").Register(r)),
        dump_completion(BuildGauge()
                            .Name("agent_dump_last_completion_timestamp_seconds")
                            .Help("When the last successful dump finished")
                            .Register(r)),
        dump_duration(BuildGauge()
                          .Name("agent_dump_last_duration_seconds")
                          .Help("How long the last dump took")
                          .Register(r)),
        dump_size(BuildGauge().Name("agent_dump_last_size_bytes").Help("Size of the last dump").Register(r)),
        dump_gap(BuildGauge()
                     .Name("agent_dump_last_replay_gap_seconds")
                     .Help("Seconds between the last dump's target and its last replayed transaction")
                     .Register(r)),
        archived_count(BuildGauge()
                           .Name("agent_pg_archiver_archived_wal_files")
                           .Help("pg_stat_archiver.archived_count of the live server")
                           .Register(r)),
        failed_count(BuildGauge()
                         .Name("agent_pg_archiver_failed_attempts")
                         .Help("pg_stat_archiver.failed_count of the live server")
                         .Register(r)),
        last_archived(BuildGauge()
                          .Name("agent_pg_archiver_last_archived_timestamp_seconds")
                          .Help("pg_stat_archiver.last_archived_time of the live server")
                          .Register(r)),
        last_failed(BuildGauge()
                        .Name("agent_pg_archiver_last_failed_timestamp_seconds")
                        .Help("pg_stat_archiver.last_failed_time of the live server")
                        .Register(r)),
        build_info(BuildGauge().Name("agent_build_info").Help("The agent's version").Register(r)),
        component_ok(BuildGauge()
                         .Name("agent_component_ok")
                         .Help("1 when a part of the agent works, 0 when it is off because of broken state "
                               "or config (state_dir, request_journal, annotation_trigger, control_socket)")
                         .Register(r)),
        config_reload_success(
            BuildGauge()
                .Name("agent_config_last_reload_success")
                .Help("1 when the last reload of the config file was applied, 0 when it was "
                      "refused (the running config stays; the log says why)")
                .Register(r)),
        expected_interval(
            BuildGauge()
                .Name("agent_backup_expected_interval_seconds")
                .Help(
                    "Longest gap between consecutive scheduled backups covering this type into `repo` over "
                    "the coming five weeks, read in the schedules' zone (types as agent_backup_age_seconds)")
                .Register(r)),
        window_start(
            BuildGauge()
                .Name("agent_recovery_window_start_timestamp_seconds")
                .Help("Start of the repository's recoverable window: the oldest usable backup's stop")
                .Register(r)),
        window_end(
            BuildGauge()
                .Name("agent_recovery_window_end_timestamp_seconds")
                .Help("End of the repository's recoverable window: the last archived WAL (the live "
                      "server's, when the repository's archive is the newest) or the newest backup's stop")
                .Register(r)),
        window_seconds(BuildGauge()
                           .Name("agent_recovery_window_seconds")
                           .Help("Length of the repository's recoverable window (end - start)")
                           .Register(r)),
        window_min(
            BuildGauge()
                .Name("agent_recovery_window_min_seconds")
                .Help("alerts.min_window_hours in seconds: the window the alert expects at least (0: none)")
                .Register(r)),
        dumps(
            BuildCounter().Name("agent_dumps_total").Help("Dumps run by `agent run`, by result").Register(r)),
        dump_last_failure(BuildGauge()
                              .Name("agent_dump_last_failure_timestamp_seconds")
                              .Help("When the last failed dump run by `agent run` ended")
                              .Register(r)),
        config_reload_time(BuildGauge()
                               .Name("agent_config_last_reload_timestamp_seconds")
                               .Help("When the config file was last read again (applied or refused)")
                               .Register(r)),
        progress_bytes(BuildGauge()
                           .Name("agent_backup_progress_bytes")
                           .Help("Bytes the running backup into `repo` has copied, as pgBackRest's lock says "
                                 "(2.48+); only while it runs")
                           .Register(r)),
        progress_total_bytes(BuildGauge()
                                 .Name("agent_backup_progress_total_bytes")
                                 .Help("Bytes the running backup into `repo` will copy in all (2.48+); only "
                                       "while it runs")
                                 .Register(r)),
        restore_progress_bytes(
            BuildGauge()
                .Name("agent_restore_progress_bytes")
                .Help("Bytes the restore of the agent's running dump or drill (`kind`) has "
                      "restored, from pgBackRest's per-file lines; only while the job runs")
                .Register(r)),
        restore_progress_total_bytes(
            BuildGauge()
                .Name("agent_restore_progress_total_bytes")
                .Help("Bytes the restore of the agent's running dump or drill (`kind`) "
                      "restores in all: the backup set's size; only while the job runs")
                .Register(r)) {}

  Family<Gauge>& last_completion;
  Family<Gauge>& age;
  Family<Gauge>& last_duration;
  Family<Gauge>& last_size;
  Family<Gauge>& last_repo_size;
  Family<Gauge>& count;
  Family<Gauge>& oldest;
  Family<Gauge>& archive_range;
  Family<Gauge>& info_success;
  Family<Gauge>& info_last_success;
  Family<Gauge>& info_duration;
  Family<Counter>& info_errors;
  Family<Counter>& backups;
  Family<Gauge>& last_success;
  Family<Gauge>& last_failure;
  Family<Counter>& lock_waits;
  Family<Counter>& skipped;
  Family<Gauge>& queue_length;
  Family<Gauge>& running;
  Family<Gauge>& dump_completion;
  Family<Gauge>& dump_duration;
  Family<Gauge>& dump_size;
  Family<Gauge>& dump_gap;
  Family<Gauge>& archived_count;
  Family<Gauge>& failed_count;
  Family<Gauge>& last_archived;
  Family<Gauge>& last_failed;
  Family<Gauge>& build_info;
  Family<Gauge>& component_ok;
  Family<Gauge>& config_reload_success;
  Family<Gauge>& expected_interval;
  Family<Gauge>& window_start;
  Family<Gauge>& window_end;
  Family<Gauge>& window_seconds;
  Family<Gauge>& window_min;
  Family<Counter>& dumps;
  Family<Gauge>& dump_last_failure;
  Family<Gauge>& config_reload_time;
  Family<Gauge>& progress_bytes;
  Family<Gauge>& progress_total_bytes;
  Family<Gauge>& restore_progress_bytes;
  Family<Gauge>& restore_progress_total_bytes;
  Gauge* archive_range_series = nullptr;
};

// The restore drill's series (agent drill, schedules.drill), from the manifests in state_dir/drills.
struct AgentMetrics::DrillFamilies {
  explicit DrillFamilies(prometheus::Registry& r)
      : total(BuildCounter()
                  .Name("agent_drills_total")
                  .Help("Restore drills by result (passed, failed: a check found a problem, error: it could "
                        "not run)")
                  .Register(r)),
        last_success(BuildGauge()
                         .Name("agent_drill_last_success_timestamp_seconds")
                         .Help("When the newest passed restore drill finished")
                         .Register(r)),
        last_failure(BuildGauge()
                         .Name("agent_drill_last_failure_timestamp_seconds")
                         .Help("When the newest failed or errored restore drill finished")
                         .Register(r)),
        last_duration(BuildGauge()
                          .Name("agent_drill_last_duration_seconds")
                          .Help("How long the newest restore drill took, all phases")
                          .Register(r)),
        last_phase(BuildGauge()
                       .Name("agent_drill_last_phase_duration_seconds")
                       .Help("How long each phase of the newest restore drill took; check to verify is the "
                             "measured RTO")
                       .Register(r)),
        last_gap(
            BuildGauge()
                .Name("agent_drill_last_replay_gap_seconds")
                .Help(
                    "Target minus last replayed commit of the newest drill (with --latest: the measured RPO)")
                .Register(r)),
        objects_checked(BuildGauge()
                            .Name("agent_drill_last_objects_checked")
                            .Help("Objects (tables, indexes, blocks, assertions) the newest drill checked")
                            .Register(r)),
        objects_failed(BuildGauge()
                           .Name("agent_drill_last_objects_failed")
                           .Help("Objects the newest drill found a problem in")
                           .Register(r)),
        max_age(BuildGauge()
                    .Name("agent_drill_max_age_seconds")
                    .Help("Age after which no successful drill alerts (AgentDrillTooOld)")
                    .Register(r)) {}
  Family<Counter>& total;
  Family<Gauge>& last_success;
  Family<Gauge>& last_failure;
  Family<Gauge>& last_duration;
  Family<Gauge>& last_phase;
  Family<Gauge>& last_gap;
  Family<Gauge>& objects_checked;
  Family<Gauge>& objects_failed;
  Family<Gauge>& max_age;
};

AgentMetrics::AgentMetrics(std::string stanza, bool crunchy_compat)
    : stanza_(std::move(stanza)),
      crunchy_compat_(crunchy_compat),
      registry_(std::make_shared<prometheus::Registry>()),
      families_(std::make_unique<Families>(*registry_)),
      drill_(std::make_unique<DrillFamilies>(*registry_)) {
  families_->build_info.Add({{"version", kAgentVersion}}).Set(1);
  families_->queue_length.Add({{"stanza", stanza_}}).Set(0);
  for (const char* type : kTypes) families_->running.Add({{"stanza", stanza_}, {"type", type}}).Set(0);
  // Present from the start, so that increase() sees the first dump of either result.
  for (const char* result : {"succeeded", "failed"})
    families_->dumps.Add({{"stanza", stanza_}, {"result", result}});
  // Likewise the skip reasons (agent_jobs_skipped_total's documented values) and lock waits, so
  // the dashboard's increase() panels have a series before the first skip or wait.
  for (const char* reason :
       {"merged", "superseded", "queue-full", "standby", "server-unreachable", "shutting-down", "abandoned"})
    families_->skipped.Add({{"stanza", stanza_}, {"reason", reason}});
  families_->lock_waits.Add({{"stanza", stanza_}});
  families_->window_min.Add({{"stanza", stanza_}}).Set(0);
  if (crunchy_compat_) {
    auto& r = *registry_;
    const auto age_family = [&r](const char* name, const char* help) -> Family<Gauge>* {
      return &BuildGauge().Name(name).Help(help).Register(r);
    };
    ccp_full_age_ = age_family("ccp_backrest_last_full_backup_time_since_completion_seconds",
                               "pgMonitor: seconds since the newest full backup completed");
    ccp_diff_age_ = age_family("ccp_backrest_last_diff_backup_time_since_completion_seconds",
                               "pgMonitor: seconds since the newest full or differential backup completed");
    ccp_incr_age_ = age_family("ccp_backrest_last_incr_backup_time_since_completion_seconds",
                               "pgMonitor: seconds since the newest backup of any type completed");
    ccp_runtime_ = age_family("ccp_backrest_last_info_backup_runtime_seconds",
                              "pgMonitor: runtime of the newest backup of each type");
    ccp_repo_size_ = age_family("ccp_backrest_last_info_repo_backup_size_bytes",
                                "pgMonitor: repository size of the newest backup of each type");
    ccp_oldest_full_ = age_family("ccp_backrest_oldest_full_backup_time_seconds",
                                  "pgMonitor: stop time (epoch) of the oldest full backup");
    ccp_since_archive_ = age_family("ccp_archive_command_status_seconds_since_last_archive",
                                    "pgMonitor: seconds since the last WAL segment was archived");
    ccp_since_fail_ = age_family("ccp_archive_command_status_seconds_since_last_fail",
                                 "pgMonitor: how long archiving has failed past its last success (0 if not)");
  }
}

AgentMetrics::~AgentMetrics() = default;

namespace {
std::string repo_label(int repo) {
  return repo > 0 ? std::to_string(repo) : std::string();
}
}  // namespace

void AgentMetrics::record_repository_read(const Result<StanzaInfo>& info,
                                          std::chrono::system_clock::time_point at, double seconds) {
  std::lock_guard lock(mutex_);
  const GenerationBump bump(generation_);  // before the unlock (see GenerationBump)
  auto& f = *families_;
  const prometheus::Labels stanza{{"stanza", stanza_}};
  f.info_duration.Add(stanza).Set(seconds);
  const auto failed = [&](const std::string& repo) {
    const prometheus::Labels labels{{"stanza", stanza_}, {"repo", repo}};
    f.info_success.Add(labels).Set(0);
    f.info_errors.Add(labels).Increment();
  };
  if (!info) {
    // Every repository failed with it. The freshness series keep their last known values: a
    // broken repository must not look like missing data to the alerts.
    read_error_ = info.error().message;
    for (auto& [key, repo] : repos_) {
      repo.readable = false;
      repo.problem = read_error_;
      failed(repo_label(key));
    }
    if (repos_.empty()) {
      failed_unknown_ = true;
      failed("");
    }
    return;
  }
  read_error_.clear();
  newest_archive_ = info->archive_max;
  if (failed_unknown_) {
    const prometheus::Labels unknown{{"stanza", stanza_}, {"repo", ""}};
    f.info_success.Remove(&f.info_success.Add(unknown));
    f.info_errors.Remove(&f.info_errors.Add(unknown));
    failed_unknown_ = false;
  }
  const auto statuses = agent::repositories(*info);
  // A repository no longer in pgBackRest's config: its series go, rather than age forever.
  std::vector<int> gone;
  for (const auto& [key, repo] : repos_)
    if (std::none_of(statuses.begin(), statuses.end(),
                     [key = key](const RepoStatus& s) { return s.key == key; }))
      gone.push_back(key);
  for (const int key : gone) forget_repo(key);

  for (const auto& status : statuses) {
    const std::string label = repo_label(status.key);
    const prometheus::Labels labels{{"stanza", stanza_}, {"repo", label}};
    auto& repo = repos_[status.key];
    f.info_errors.Add(labels);  // present from the start, so that rate() sees the first error
    repo.readable = status.readable();
    if (!repo.readable) {
      // Partial: this repository failed, the others are read as usual.
      repo.problem = status.status_message;
      failed(label);
      continue;
    }
    repo.problem.clear();
    repo.last_read_epoch = std::chrono::floor<std::chrono::seconds>(at).time_since_epoch().count();
    f.info_success.Add(labels).Set(1);
    f.info_last_success.Add(labels).Set(epoch_seconds(at));

    const StanzaInfo view = repository_view(*info, status.key);
    repo.newest_by_type.clear();
    repo.oldest_full.reset();
    repo.backups = 0;
    std::map<std::string, int> counts;
    std::optional<std::int64_t> oldest;
    for (const auto& backup : view.backups) {
      if (backup.error) continue;
      ++repo.backups;
      ++counts[backup.type];
      auto& newest = repo.newest_by_type[backup.type];
      if (backup.stop_epoch >= newest.stop_epoch) newest = backup;
      if (!oldest || backup.stop_epoch < *oldest) oldest = backup.stop_epoch;
      if (backup.type == "full" && (!repo.oldest_full || backup.stop_epoch < *repo.oldest_full))
        repo.oldest_full = backup.stop_epoch;
    }
    for (const char* type : kTypes) {
      const prometheus::Labels typed{{"stanza", stanza_}, {"repo", label}, {"type", type}};
      f.count.Add(typed).Set(counts[type]);
      const auto it = repo.newest_by_type.find(type);
      if (it == repo.newest_by_type.end()) continue;
      const auto& b = it->second;
      f.last_completion.Add(typed).Set(static_cast<double>(b.stop_epoch));
      f.last_duration.Add(typed).Set(static_cast<double>(b.stop_epoch - b.start_epoch));
      f.last_size.Add(typed).Set(static_cast<double>(b.database_bytes));
      f.last_repo_size.Add(typed).Set(static_cast<double>(b.repo_bytes));
    }
    if (oldest) f.oldest.Add(labels).Set(static_cast<double>(*oldest));
    repo.oldest = oldest;
    repo.archive_max = view.archive_max;
    if (repo.archive_range_series) f.archive_range.Remove(repo.archive_range_series);
    repo.archive_range_series = nullptr;
    if (!view.archive_min.empty()) {
      repo.archive_range_series = &f.archive_range.Add(
          {{"stanza", stanza_}, {"repo", label}, {"min", view.archive_min}, {"max", view.archive_max}});
      repo.archive_range_series->Set(1);
    }
  }
}

// Every series of a repository, removed when pgBackRest no longer lists it.
void AgentMetrics::forget_repo(int key) {
  auto& f = *families_;
  const std::string label = repo_label(key);
  const prometheus::Labels labels{{"stanza", stanza_}, {"repo", label}};
  for (auto* family :
       {&f.oldest, &f.info_success, &f.info_last_success, &f.window_start, &f.window_end, &f.window_seconds})
    family->Remove(&family->Add(labels));
  f.info_errors.Remove(&f.info_errors.Add(labels));
  for (const char* type : kTypes) {
    const prometheus::Labels typed{{"stanza", stanza_}, {"repo", label}, {"type", type}};
    for (auto* family :
         {&f.count, &f.last_completion, &f.last_duration, &f.last_size, &f.last_repo_size, &f.age})
      family->Remove(&family->Add(typed));
  }
  if (auto* series = repos_[key].archive_range_series) f.archive_range.Remove(series);
  if (crunchy_compat_) {
    const prometheus::Labels ccp{{"stanza", stanza_}, {"repo", label}};
    for (auto* family : {ccp_full_age_, ccp_diff_age_, ccp_incr_age_, ccp_oldest_full_})
      family->Remove(&family->Add(ccp));
    for (const char* type : kTypes) {
      const prometheus::Labels typed{{"backup_type", type}, {"stanza", stanza_}, {"repo", label}};
      for (auto* family : {ccp_runtime_, ccp_repo_size_}) family->Remove(&family->Add(typed));
    }
  }
  repos_.erase(key);
}

std::vector<RepositorySummary> AgentMetrics::repositories() {
  std::lock_guard lock(mutex_);
  std::vector<RepositorySummary> summaries;
  for (const auto& [key, repo] : repos_) {
    RepositorySummary summary;
    summary.repo = key;
    summary.readable = repo.readable;
    summary.problem = repo.problem;
    summary.last_read_epoch = repo.last_read_epoch;
    summary.newest_by_type = repo.newest_by_type;
    summary.backups = repo.backups;
    summary.window_start_epoch = repo.oldest;
    if (const auto end = window_end(repo)) {
      summary.window_end_epoch = end->first;
      summary.window_end_from_wal = end->second;
    }
    summaries.push_back(std::move(summary));
  }
  return summaries;
}

std::string AgentMetrics::read_error() {
  std::lock_guard lock(mutex_);
  return read_error_;
}

void AgentMetrics::record_archiver(const ArchiverStats& stats) {
  std::lock_guard lock(mutex_);
  const GenerationBump bump(generation_);  // before the unlock (see GenerationBump)
  auto& f = *families_;
  const prometheus::Labels stanza{{"stanza", stanza_}};
  f.archived_count.Add(stanza).Set(static_cast<double>(stats.archived_count));
  f.failed_count.Add(stanza).Set(static_cast<double>(stats.failed_count));
  if (stats.last_archived_epoch)
    f.last_archived.Add(stanza).Set(static_cast<double>(*stats.last_archived_epoch));
  if (stats.last_failed_epoch) f.last_failed.Add(stanza).Set(static_cast<double>(*stats.last_failed_epoch));
  archiver_ = stats;
}

void AgentMetrics::record_backup(const BackupResult& result, std::chrono::system_clock::time_point finished) {
  const GenerationBump bump(generation_);  // after the change, on every return
  auto& f = *families_;
  const std::string type = backup_type_name(result.request.type);
  const std::string repo = repo_label(result.repo);
  f.backups
      .Add({{"stanza", stanza_},
            {"repo", repo},
            {"type", type},
            {"trigger", trigger_name(result.request.trigger)},
            {"result", backup_outcome_name(result.outcome)}})
      .Increment();
  const prometheus::Labels labels{{"stanza", stanza_}, {"repo", repo}, {"type", type}};
  auto& lock_waits = f.lock_waits.Add({{"stanza", stanza_}});
  if (result.lock_waits > 0) lock_waits.Increment(static_cast<double>(result.lock_waits));
  if (result.outcome == BackupOutcome::succeeded) f.last_success.Add(labels).Set(epoch_seconds(finished));
  if (result.outcome == BackupOutcome::failed) f.last_failure.Add(labels).Set(epoch_seconds(finished));
}

void AgentMetrics::record_skip(const std::string& reason, std::uint64_t count) {
  const GenerationBump bump(generation_);  // after the change, on every return
  families_->skipped.Add({{"stanza", stanza_}, {"reason", reason}}).Increment(static_cast<double>(count));
}

void AgentMetrics::record_config_reload(bool applied, std::chrono::system_clock::time_point at) {
  const GenerationBump bump(generation_);  // after the change, on every return
  families_->config_reload_success.Add({}).Set(applied ? 1 : 0);
  families_->config_reload_time.Add({}).Set(epoch_seconds(at));
}

void AgentMetrics::set_component_ok(const std::string& component, bool ok) {
  const GenerationBump bump(generation_);  // after the change, on every return
  families_->component_ok.Add({{"component", component}}).Set(ok ? 1 : 0);
}

void AgentMetrics::set_queue(std::size_t waiting, std::optional<BackupType> running) {
  const GenerationBump bump(generation_);  // after the change, on every return
  auto& f = *families_;
  f.queue_length.Add({{"stanza", stanza_}}).Set(static_cast<double>(waiting));
  for (const char* type : kTypes)
    f.running.Add({{"stanza", stanza_}, {"type", type}})
        .Set(running && backup_type_name(*running) == std::string(type) ? 1 : 0);
}

void AgentMetrics::begin_backup_progress(int repo) {
  std::lock_guard lock(mutex_);
  const GenerationBump bump(generation_);  // before the unlock (see GenerationBump)
  // pgBackRest's default repository is the lowest-numbered: the first the reads know.
  progress_repo_ = repo > 0 ? repo : (repos_.empty() ? 0 : repos_.begin()->first);
  progress_.reset();
}

void AgentMetrics::end_backup_progress() {
  std::lock_guard lock(mutex_);
  const GenerationBump bump(generation_);  // before the unlock (see GenerationBump)
  if (progress_) {
    const prometheus::Labels labels{{"stanza", stanza_}, {"repo", repo_label(progress_->repo)}};
    families_->progress_bytes.Remove(&families_->progress_bytes.Add(labels));
    families_->progress_total_bytes.Remove(&families_->progress_total_bytes.Add(labels));
  }
  progress_repo_.reset();
  progress_.reset();
}

bool AgentMetrics::backup_progress_wanted() {
  std::lock_guard lock(mutex_);
  return progress_repo_.has_value();
}

void AgentMetrics::record_backup_progress(const LockProgress& lock_progress) {
  std::lock_guard lock(mutex_);
  const GenerationBump bump(generation_);  // before the unlock (see GenerationBump)
  // A read that ends after the backup did, or a lock without sizes (before 2.48, or before the
  // backup knows its size): nothing to show, and the last sizes stay until the next read.
  if (!progress_repo_ || !lock_progress.held || !lock_progress.bytes_total || !lock_progress.bytes_done)
    return;
  progress_ = BackupProgress{*progress_repo_, *lock_progress.bytes_done, *lock_progress.bytes_total};
  const prometheus::Labels labels{{"stanza", stanza_}, {"repo", repo_label(progress_->repo)}};
  families_->progress_bytes.Add(labels).Set(static_cast<double>(progress_->bytes_done));
  families_->progress_total_bytes.Add(labels).Set(static_cast<double>(progress_->bytes_total));
}

std::optional<BackupProgress> AgentMetrics::backup_progress() {
  std::lock_guard lock(mutex_);
  return progress_;
}

void AgentMetrics::record_restore_progress(const std::string& kind, std::uint64_t bytes_done,
                                           std::uint64_t bytes_total) {
  std::lock_guard lock(mutex_);
  const GenerationBump bump(generation_);  // before the unlock (see GenerationBump)
  auto& f = *families_;
  if (restore_progress_ && restore_progress_->kind != kind) {
    const prometheus::Labels previous{{"stanza", stanza_}, {"kind", restore_progress_->kind}};
    f.restore_progress_bytes.Remove(&f.restore_progress_bytes.Add(previous));
    f.restore_progress_total_bytes.Remove(&f.restore_progress_total_bytes.Add(previous));
  }
  restore_progress_ = RestoreProgress{kind, bytes_done, bytes_total};
  const prometheus::Labels labels{{"stanza", stanza_}, {"kind", kind}};
  f.restore_progress_bytes.Add(labels).Set(static_cast<double>(bytes_done));
  f.restore_progress_total_bytes.Add(labels).Set(static_cast<double>(bytes_total));
}

void AgentMetrics::end_restore_progress() {
  std::lock_guard lock(mutex_);
  const GenerationBump bump(generation_);  // before the unlock (see GenerationBump)
  if (restore_progress_) {
    auto& f = *families_;
    const prometheus::Labels labels{{"stanza", stanza_}, {"kind", restore_progress_->kind}};
    f.restore_progress_bytes.Remove(&f.restore_progress_bytes.Add(labels));
    f.restore_progress_total_bytes.Remove(&f.restore_progress_total_bytes.Add(labels));
  }
  restore_progress_.reset();
}

std::optional<RestoreProgress> AgentMetrics::restore_progress() {
  std::lock_guard lock(mutex_);
  return restore_progress_;
}

void AgentMetrics::record_dump(const DumpResult& dump) {
  const GenerationBump bump(generation_);  // after the change, on every return
  auto& f = *families_;
  const prometheus::Labels stanza{{"stanza", stanza_}};
  f.dump_completion.Add(stanza).Set(epoch_seconds(dump.finished));
  f.dump_duration.Add(stanza).Set(dump.seconds);
  f.dump_size.Add(stanza).Set(static_cast<double>(dump.bytes));
  f.dump_gap.Add(stanza).Set(dump.replay_gap_seconds);
  f.dumps.Add({{"stanza", stanza_}, {"result", "succeeded"}}).Increment();
}

void AgentMetrics::record_dump_failed(std::chrono::system_clock::time_point at) {
  const GenerationBump bump(generation_);  // after the change, on every return
  auto& f = *families_;
  f.dump_last_failure.Add({{"stanza", stanza_}}).Set(epoch_seconds(at));
  f.dumps.Add({{"stanza", stanza_}, {"result", "failed"}}).Increment();
}

void AgentMetrics::set_expected_intervals(
    const std::map<std::pair<int, std::string>, std::chrono::seconds>& intervals) {
  std::lock_guard lock(mutex_);
  const GenerationBump bump(generation_);  // before the unlock (see GenerationBump)
  auto& f = *families_;
  const auto labels = [this](const std::pair<int, std::string>& key) {
    return prometheus::Labels{{"stanza", stanza_}, {"repo", repo_label(key.first)}, {"type", key.second}};
  };
  for (const auto& [key, seconds] : intervals_)
    if (!intervals.count(key)) f.expected_interval.Remove(&f.expected_interval.Add(labels(key)));
  for (const auto& [key, seconds] : intervals)
    f.expected_interval.Add(labels(key)).Set(static_cast<double>(seconds.count()));
  intervals_ = intervals;
}

void AgentMetrics::set_min_window(std::chrono::seconds minimum) {
  const GenerationBump bump(generation_);  // after the change, on every return
  families_->window_min.Add({{"stanza", stanza_}}).Set(static_cast<double>(minimum.count()));
}

std::optional<std::pair<std::int64_t, bool>> AgentMetrics::window_end(const Repo& repo) const {
  std::optional<std::int64_t> newest_stop;
  for (const auto& [type, backup] : repo.newest_by_type)
    newest_stop = std::max(newest_stop.value_or(backup.stop_epoch), backup.stop_epoch);
  if (!newest_stop) return std::nullopt;
  // The live server's last archived WAL speaks for a repository only when its archive holds the
  // newest segment of all: one whose archiving lags ends at its own newest backup.
  if (archiver_ && archiver_->last_archived_epoch && !repo.archive_max.empty() &&
      repo.archive_max == newest_archive_ && *archiver_->last_archived_epoch > *newest_stop)
    return std::pair{*archiver_->last_archived_epoch, true};
  return std::pair{*newest_stop, false};
}

void AgentMetrics::record_drills(const std::optional<DrillOutcome>& last,
                                 std::optional<std::int64_t> last_success,
                                 std::optional<std::int64_t> last_failure,
                                 const std::map<std::string, std::uint64_t>& new_results) {
  std::lock_guard lock(mutex_);
  const GenerationBump bump(generation_);  // before the unlock (see GenerationBump)
  auto& f = *drill_;
  const prometheus::Labels stanza{{"stanza", stanza_}};
  for (const auto& [result, count] : new_results)
    f.total.Add({{"stanza", stanza_}, {"result", result}}).Increment(static_cast<double>(count));
  if (last_success) f.last_success.Add(stanza).Set(static_cast<double>(*last_success));
  if (last_failure) f.last_failure.Add(stanza).Set(static_cast<double>(*last_failure));
  if (!last) return;
  f.last_duration.Add(stanza).Set(last->total_seconds);
  for (const auto& [phase, seconds] : last->phase_seconds)
    f.last_phase.Add({{"stanza", stanza_}, {"phase", phase}}).Set(seconds);
  if (last->replay_gap_seconds) f.last_gap.Add(stanza).Set(*last->replay_gap_seconds);
  f.objects_checked.Add(stanza).Set(static_cast<double>(last->objects_checked));
  f.objects_failed.Add(stanza).Set(static_cast<double>(last->objects_failed));
}

void AgentMetrics::set_drill_max_age(double seconds) {
  std::lock_guard lock(mutex_);
  const GenerationBump bump(generation_);  // before the unlock (see GenerationBump)
  drill_->max_age.Add({{"stanza", stanza_}}).Set(seconds);
}

std::string AgentMetrics::scrape(std::chrono::system_clock::time_point now) {
  std::lock_guard lock(mutex_);
  // Ages are whole-second values to Prometheus anyway: within one second, and while nothing
  // changed, every scraper gets the same text without serialising the registry again.
  const auto second = std::chrono::floor<std::chrono::seconds>(now).time_since_epoch().count();
  const auto generation = generation_.load();
  if (cached_text_ && cached_second_ == second && cached_generation_ == generation) return *cached_text_;
  auto& f = *families_;
  const double now_seconds = epoch_seconds(now);
  // Ages from the stored stop times, for this very moment, per repository.
  for (const auto& [key, repo] : repos_) {
    const std::string label = repo_label(key);
    std::map<std::string, std::int64_t> covering;
    for (const auto& [newest_type, backup] : repo.newest_by_type)
      for (const char* asked : kTypes)
        if (covers(newest_type, asked)) covering[asked] = std::max(covering[asked], backup.stop_epoch);
    for (const auto& [type, stop] : covering)
      f.age.Add({{"stanza", stanza_}, {"repo", label}, {"type", type}})
          .Set(now_seconds - static_cast<double>(stop));
    if (const auto end = window_end(repo); end && repo.oldest) {
      const prometheus::Labels labels{{"stanza", stanza_}, {"repo", label}};
      f.window_start.Add(labels).Set(static_cast<double>(*repo.oldest));
      f.window_end.Add(labels).Set(static_cast<double>(end->first));
      f.window_seconds.Add(labels).Set(static_cast<double>(end->first - *repo.oldest));
    }
    if (!crunchy_compat_) continue;
    // pgMonitor's `repo` is the backup's repo-key, as here.
    const prometheus::Labels labels{{"stanza", stanza_}, {"repo", label}};
    const auto set_age = [&](Family<Gauge>* family, const char* type) {
      if (covering.count(type)) family->Add(labels).Set(now_seconds - static_cast<double>(covering[type]));
    };
    set_age(ccp_full_age_, "full");
    set_age(ccp_diff_age_, "diff");
    set_age(ccp_incr_age_, "incr");
    for (const auto& [type, backup] : repo.newest_by_type) {
      const prometheus::Labels typed{{"backup_type", type}, {"stanza", stanza_}, {"repo", label}};
      ccp_runtime_->Add(typed).Set(static_cast<double>(backup.stop_epoch - backup.start_epoch));
      ccp_repo_size_->Add(typed).Set(static_cast<double>(backup.repo_bytes));
    }
    if (repo.oldest_full) ccp_oldest_full_->Add(labels).Set(static_cast<double>(*repo.oldest_full));
  }
  if (crunchy_compat_ && archiver_) {
    if (archiver_->last_archived_epoch)
      ccp_since_archive_->Add({}).Set(now_seconds - static_cast<double>(*archiver_->last_archived_epoch));
    // pgMonitor: how long failures have gone on past the last success, clamped at 0.
    double failing = 0;
    if (archiver_->last_failed_epoch && archiver_->last_archived_epoch)
      failing = std::max<double>(
          0, static_cast<double>(*archiver_->last_failed_epoch - *archiver_->last_archived_epoch));
    else if (archiver_->last_failed_epoch)
      failing = now_seconds - static_cast<double>(*archiver_->last_failed_epoch);
    ccp_since_fail_->Add({}).Set(failing);
  }
  cached_text_ = prometheus::TextSerializer().Serialize(registry_->Collect());
  cached_second_ = second;
  cached_generation_ = generation;
  return *cached_text_;
}

}  // namespace agent
