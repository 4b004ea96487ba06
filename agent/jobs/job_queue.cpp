#include "jobs/job_queue.hpp"

#include <algorithm>

namespace agent {

namespace {
// A backup answers a request of the same or a smaller type into the same repository: a full
// into repo1 says nothing about repo2.
bool covers(const BackupRequest& have, const BackupRequest& want) {
  return have.repo == want.repo && static_cast<int>(have.type) >= static_cast<int>(want.type);
}

std::string describe(const QueuedBackup& job, const char* where) {
  return std::string("a ") + backup_type_name(job.request.type) + " backup" +
         (job.request.repo > 0 ? " into repo" + std::to_string(job.request.repo) : "") + " is already " +
         where + " (job " + std::to_string(job.id) + ")";
}
}  // namespace

AdmissionResult JobQueue::offer(const BackupRequest& request) {
  const bool scheduled = request.trigger == Trigger::schedule;
  const std::uint64_t id = next_id_++;

  if (scheduled && running_ && covers(running_->request, request)) {
    running_->merged_ids.push_back(id);
    return {Admission::merged, running_->id, describe(*running_, "running"), {}};
  }
  for (auto& job : pending_) {
    if (covers(job.request, request)) {
      job.merged_ids.push_back(id);
      return {Admission::merged, job.id, describe(job, "queued"), {}};
    }
  }

  AdmissionResult result;
  // Smaller scheduled jobs still waiting are covered by this one.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->request.trigger == Trigger::schedule && it->request.repo == request.repo &&
        !covers(it->request, request)) {
      result.superseded_ids.push_back(it->id);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  if (pending_.size() >= capacity_) {
    return {Admission::refused, 0, "the queue is full (" + std::to_string(capacity_) + " jobs wait already)",
            result.superseded_ids};
  }
  QueuedBackup job{id, request, result.superseded_ids};
  pending_.push_back(job);
  result.job_id = id;
  if (!result.superseded_ids.empty()) {
    result.admission = Admission::superseded;
    result.reason = std::string("a ") + backup_type_name(request.type) + " backup replaces " +
                    std::to_string(result.superseded_ids.size()) + " smaller queued backup(s)";
  }
  return result;
}

std::optional<QueuedBackup> JobQueue::start_next() {
  if (running_ || pending_.empty() || drill_reads_repository()) return std::nullopt;
  running_ = pending_.front();
  pending_.pop_front();
  return running_;
}

void JobQueue::finish_running() {
  running_.reset();
}

AdmissionResult JobQueue::offer_drill(const DrillRequest& request) {
  const std::uint64_t id = next_id_++;
  for (auto* drill : {&drill_pending_, &drill_running_})
    if (*drill) {
      (*drill)->merged_ids.push_back(id);
      return {Admission::merged,
              (*drill)->id,
              std::string("a drill is already ") + (drill == &drill_pending_ ? "queued" : "running") +
                  " (job " + std::to_string((*drill)->id) + ")",
              {}};
    }
  drill_pending_ = QueuedDrill{id, request, {}};
  return {Admission::queued, id, "", {}};
}

std::optional<QueuedDrill> JobQueue::start_drill(bool scratch_busy) {
  if (!drill_pending_ || drill_running_ || scratch_busy || running_ || !pending_.empty()) return std::nullopt;
  drill_running_ = std::move(drill_pending_);
  drill_pending_.reset();
  drill_reads_repository_ = true;
  return drill_running_;
}

void JobQueue::finish_drill() {
  drill_running_.reset();
  drill_reads_repository_ = false;
}

}  // namespace agent
