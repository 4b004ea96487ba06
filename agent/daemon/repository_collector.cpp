#include "daemon/repository_collector.hpp"

#include <algorithm>

#include "core/log.hpp"
#include "exec/commands.hpp"
#include "pipelines/backup_pipeline.hpp"
#include "pipelines/drill_pipeline.hpp"

namespace agent {

RepositoryCollector::RepositoryCollector(const AgentConfig& config, ProcessRunner& runner,
                                         PgConnector& connector, AgentMetrics& metrics)
    : config_(config), runner_(runner), connector_(connector), metrics_(metrics) {}

RepositoryCollector::~RepositoryCollector() {
  stop();
}

void RepositoryCollector::start() {
  thread_ = std::thread([this] { loop(); });
}

void RepositoryCollector::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cancel_.cancel();  // a `pgbackrest info` that hangs on a dead repository ends now
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<bool> RepositoryCollector::repository_readable() const {
  std::lock_guard lock(mutex_);
  return readable_;
}

std::string RepositoryCollector::repository_error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

// One thread reads, so reads never overlap: the full read every metrics.refresh_seconds and,
// while the agent's backup runs, a read of its progress every metrics.progress_seconds between
// them. The first wait is short too, so a backup that starts is seen within progress_seconds.
void RepositoryCollector::loop() {
  using Steady = std::chrono::steady_clock;
  auto next_full = Steady::now();
  for (;;) {
    // The collector thread's exception boundary: a failed read is a failed read, not an end.
    try {
      if (Steady::now() >= next_full) {
        collect();
        next_full = Steady::now() + std::chrono::seconds(config_.metrics.refresh_seconds);
      } else if (metrics_.backup_progress_wanted()) {
        collect_progress();
      }
    } catch (const std::exception& e) {
      log::get("metrics")->error("reading the repository failed with an unexpected exception: {}", e.what());
    } catch (...) {
      log::get("metrics")->error("reading the repository failed with an unexpected exception");
    }
    const auto wait =
        std::min<Steady::duration>(std::chrono::seconds(std::max(1, config_.metrics.progress_seconds)),
                                   std::max<Steady::duration>(next_full - Steady::now(), {}));
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, wait, [this] { return stop_; });
    if (stop_) return;
  }
}

// The running backup's bytes done and in all, from the stanza's backup lock (pgBackRest 2.48+;
// an older one reports none, and nothing is shown). A failed read leaves the last progress.
void RepositoryCollector::collect_progress() {
  auto info = read_stanza_info(config_, runner_, cancel_);
  if (!info) {
    log::get("metrics")->debug("reading the backup's progress failed: {}", info.error().message);
    return;
  }
  metrics_.record_backup_progress(info->backup_lock);
}

void RepositoryCollector::collect() {
  auto logger = log::get("metrics");
  const auto begin = std::chrono::steady_clock::now();
  auto info = read_stanza_info(config_, runner_, cancel_);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  metrics_.record_repository_read(info, std::chrono::system_clock::now(), seconds);
  if (info) metrics_.record_backup_progress(info->backup_lock);
  // Readable: every repository could be read. One that could not is a partial failure, named.
  std::string problem = info ? std::string() : info.error().message;
  if (info)
    for (const auto& repo : repositories(*info))
      if (!repo.readable())
        problem +=
            (problem.empty() ? "" : "; ") + ("repo" + std::to_string(repo.key) + ": " + repo.status_message);
  {
    std::lock_guard lock(mutex_);
    if (problem != error_ || !readable_) {
      if (problem.empty())
        logger->info("repository readable{}", readable_ ? " again" : "");
      else
        logger->warn("cannot read the repository: {}", problem);
    }
    readable_ = problem.empty();
    error_ = problem;
  }
  collect_drills();
  // WAL archiving of the live server; a standby or a stopped server simply has none to report.
  auto session = connector_.connect(
      conninfo(config_.postgres.host, config_.postgres.port, config_.postgres.user, "postgres"));
  if (!session) return;
  if (auto stats = (*session)->archiver_stats()) metrics_.record_archiver(*stats);
}

// Restore drills, from their manifests (those `agent drill` ran by itself too): counted once each.
void RepositoryCollector::collect_drills() {
  metrics_.set_drill_max_age(drill_max_age_seconds(config_, std::chrono::system_clock::now()));
  const auto history = read_drill_history(config_.state_dir + "/drills");
  std::map<std::string, std::uint64_t> new_results;
  for (const auto& drill : history.drills)
    if (counted_drills_.insert(drill.id).second) ++new_results[drill.result];
  std::optional<DrillOutcome> last;
  if (!history.drills.empty()) {
    const auto& newest = history.drills.back();
    last = DrillOutcome{newest.id,
                        newest.result,
                        newest.finished_epoch,
                        newest.total_seconds,
                        newest.phase_seconds,
                        newest.replay_gap_seconds,
                        newest.objects_checked,
                        newest.objects_failed};
  }
  metrics_.record_drills(last, history.last_success, history.last_failure, new_results);
}

}  // namespace agent
