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

 private:
  std::size_t capacity_;
  std::uint64_t next_id_ = 1;
  std::optional<QueuedBackup> running_;
  std::deque<QueuedBackup> pending_;
};

}  // namespace agent
