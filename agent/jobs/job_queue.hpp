#pragma once
// One queue of backups per stanza, so two pgBackRest backups never collide (pgBackRest would
// fail the second with "[050] unable to acquire lock"). Pure bookkeeping: the daemon owns the
// thread that runs jobs; this decides what runs next and what a new request turns into.
//
// Rules (backups into different repositories never answer for each other; they only wait in
// the same line, as pgBackRest's backup lock is the stanza's, whatever the repository):
//  - a scheduled request that a running or queued backup of the same or a larger type into the
//    same repository already covers is merged (counted as skipped, with the reason);
//  - a request of a larger type replaces queued scheduled backups of smaller types into the same
//    repository (a full due while an incremental waits supersedes it);
//  - a manual request (annotation or CLI) is never merged into a running backup, which started
//    before it was asked for: it waits its turn, or joins a queued backup that covers it;
//  - the queue is bounded: beyond its capacity a request is refused.
// Restore drills wait in the same line, by these rules:
//  - at most one drill waits; a drill asked for while one waits or runs is merged into it;
//  - a drill starts only when no backup runs or waits (it waits behind them: a backup's expire
//    may remove the set or the WAL a drill restores, and the drill should see the newest set)
//    and the scratch directory is free (no dump runs: one job on the scratch directory);
//  - while a drill reads the repository (restore, replay, pgBackRest's verify) no backup
//    starts; once it only reads its paused copy, backups start beside it.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "jobs/backup_request.hpp"

namespace agent {

struct QueuedBackup {
  std::uint64_t id = 0;
  BackupRequest request;
  std::vector<std::uint64_t> merged_ids;  // requests this job also answers
};

struct QueuedDrill {
  std::uint64_t id = 0;
  DrillRequest request;
  std::vector<std::uint64_t> merged_ids;
};

enum class Admission {
  queued,      // a new job waits (or starts at once if nothing runs)
  merged,      // answered by a running or queued job: nothing new
  superseded,  // queued, replacing smaller queued jobs
  refused,     // the queue is full
};

struct AdmissionResult {
  Admission admission = Admission::queued;
  std::uint64_t job_id = 0;  // the job that will answer the request
  std::string reason;        // why it was merged, superseded or refused
  std::vector<std::uint64_t> superseded_ids;
};

class JobQueue {
 public:
  explicit JobQueue(std::size_t capacity) : capacity_(capacity) {}

  AdmissionResult offer(const BackupRequest& request);
  // The next job to run, moved to running; nothing while one runs or none waits.
  std::optional<QueuedBackup> start_next();
  void finish_running();

  const std::optional<QueuedBackup>& running() const { return running_; }
  const std::deque<QueuedBackup>& pending() const { return pending_; }

  AdmissionResult offer_drill(const DrillRequest& request);
  // The waiting drill, moved to running, when no backup runs or waits and `scratch_busy` is
  // false (no dump runs); nothing otherwise.
  std::optional<QueuedDrill> start_drill(bool scratch_busy);
  // The running drill is done with the repository: backups may start beside it.
  void drill_released_repository() { drill_reads_repository_ = false; }
  void finish_drill();
  const std::optional<QueuedDrill>& drill_running() const { return drill_running_; }
  const std::optional<QueuedDrill>& drill_pending() const { return drill_pending_; }
  bool drill_reads_repository() const { return drill_running_.has_value() && drill_reads_repository_; }

 private:
  std::size_t capacity_;
  std::uint64_t next_id_ = 1;
  std::optional<QueuedBackup> running_;
  std::deque<QueuedBackup> pending_;
  std::optional<QueuedDrill> drill_running_;
  std::optional<QueuedDrill> drill_pending_;
  bool drill_reads_repository_ = false;
};

}  // namespace agent
