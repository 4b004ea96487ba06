#include "jobs/job_queue.hpp"

#include <gtest/gtest.h>

namespace agent {
namespace {

BackupRequest scheduled(BackupType type) {
  return {type, Trigger::schedule, "schedule", {}};
}
BackupRequest manual(BackupType type) {
  return {type, Trigger::annotation, "annotation", {}};
}

TEST(JobQueue, OneRunsAtATimeTheRestWaitInOrder) {
  JobQueue queue(8);
  const auto a = queue.offer(scheduled(BackupType::incr));
  ASSERT_EQ(a.admission, Admission::queued);
  ASSERT_EQ(queue.start_next()->id, a.job_id);
  EXPECT_FALSE(queue.start_next().has_value()) << "a second job started while one runs";
  const auto b = queue.offer(manual(BackupType::full));
  EXPECT_EQ(b.admission, Admission::queued);
  queue.finish_running();
  EXPECT_EQ(queue.start_next()->id, b.job_id);
}

TEST(JobQueue, ScheduleCoveredByARunningBackupIsMerged) {
  JobQueue queue(8);
  queue.offer(scheduled(BackupType::full));
  const auto running = queue.start_next();
  const auto incr = queue.offer(scheduled(BackupType::incr));
  EXPECT_EQ(incr.admission, Admission::merged);
  EXPECT_EQ(incr.job_id, running->id);
  EXPECT_NE(incr.reason.find("a full backup is already running"), std::string::npos);
  const auto full = queue.offer(scheduled(BackupType::full));
  EXPECT_EQ(full.admission, Admission::merged);
  EXPECT_TRUE(queue.pending().empty());
}

TEST(JobQueue, LargerScheduleWaitsBehindASmallerRunningOne) {
  JobQueue queue(8);
  queue.offer(scheduled(BackupType::incr));
  queue.start_next();
  const auto full = queue.offer(scheduled(BackupType::full));
  EXPECT_EQ(full.admission, Admission::queued);
  EXPECT_EQ(queue.pending().size(), 1u);
}

TEST(JobQueue, FullDueWhileAnIncrementalWaitsReplacesIt) {
  JobQueue queue(8);
  queue.offer(scheduled(BackupType::diff));
  queue.start_next();
  const auto incr = queue.offer(scheduled(BackupType::incr));  // merged: diff covers incr
  EXPECT_EQ(incr.admission, Admission::merged);
  queue.finish_running();
  const auto waiting_incr = queue.offer(scheduled(BackupType::incr));
  ASSERT_EQ(waiting_incr.admission, Admission::queued);
  const auto full = queue.offer(scheduled(BackupType::full));
  EXPECT_EQ(full.admission, Admission::superseded);
  EXPECT_EQ(full.superseded_ids, std::vector<std::uint64_t>{waiting_incr.job_id});
  ASSERT_EQ(queue.pending().size(), 1u);
  EXPECT_EQ(queue.pending().front().request.type, BackupType::full);
}

TEST(JobQueue, ManualRequestIsNeverAnsweredByABackupThatStartedBeforeIt) {
  JobQueue queue(8);
  queue.offer(scheduled(BackupType::full));
  queue.start_next();
  const auto request = queue.offer(manual(BackupType::full));
  EXPECT_EQ(request.admission, Admission::queued);
  // A second manual request while the first waits is answered by the queued one.
  const auto again = queue.offer(manual(BackupType::incr));
  EXPECT_EQ(again.admission, Admission::merged);
  EXPECT_EQ(again.job_id, request.job_id);
}

TEST(JobQueue, ManualJobsAreNotSuperseded) {
  JobQueue queue(8);
  queue.offer(scheduled(BackupType::full));
  queue.start_next();
  const auto manual_incr = queue.offer(manual(BackupType::incr));
  const auto scheduled_full = queue.offer(scheduled(BackupType::full));
  EXPECT_EQ(scheduled_full.admission, Admission::merged);  // the running full covers it
  EXPECT_EQ(queue.pending().size(), 1u);
  EXPECT_EQ(queue.pending().front().id, manual_incr.job_id);
}

TEST(JobQueue, IsBounded) {
  JobQueue queue(2);
  queue.offer(manual(BackupType::incr));
  queue.start_next();
  EXPECT_EQ(queue.offer(manual(BackupType::incr)).admission, Admission::queued);
  // The queued incremental covers further incrementals, so use fulls to fill it.
  EXPECT_EQ(queue.offer(manual(BackupType::full)).admission, Admission::queued);
  const auto refused = queue.offer(manual(BackupType::full));
  EXPECT_EQ(refused.admission, Admission::merged);  // covered by the queued full
  JobQueue tiny(1);
  tiny.offer(manual(BackupType::incr));
  const auto full = tiny.offer(manual(BackupType::full));
  EXPECT_EQ(full.admission, Admission::refused);
  EXPECT_NE(full.reason.find("queue is full"), std::string::npos);
}

TEST(JobQueue, BackupsIntoDifferentRepositoriesNeverAnswerForEachOther) {
  JobQueue queue(8);
  auto into = [](BackupType type, int repo) {
    return BackupRequest{type, Trigger::schedule, "schedule", {}, repo};
  };
  queue.offer(into(BackupType::full, 1));
  ASSERT_TRUE(queue.start_next().has_value());
  // A full into repo1 runs: an incremental into repo2 still has to run.
  const auto repo2 = queue.offer(into(BackupType::incr, 2));
  EXPECT_EQ(repo2.admission, Admission::queued);
  // A full into repo2 does not supersede a queued incremental into repo1, and the reverse.
  const auto incr1 = queue.offer(into(BackupType::incr, 1));
  EXPECT_EQ(incr1.admission, Admission::merged) << "the running full into repo1 covers it";
  const auto full2 = queue.offer(into(BackupType::full, 2));
  EXPECT_EQ(full2.admission, Admission::superseded);
  EXPECT_EQ(full2.superseded_ids, std::vector<std::uint64_t>{repo2.job_id});
  const auto diff3 = queue.offer(into(BackupType::diff, 3));
  EXPECT_EQ(diff3.admission, Admission::queued);
  ASSERT_EQ(queue.pending().size(), 2u);
  EXPECT_EQ(queue.pending()[0].request.repo, 2);
  EXPECT_EQ(queue.pending()[1].request.repo, 3);
  EXPECT_NE(queue.offer(into(BackupType::incr, 2)).reason.find("a full backup into repo2 is already queued"),
            std::string::npos);
}
DrillRequest scheduled_drill() {
  return {Trigger::schedule, "schedule drill", {}};
}

TEST(JobQueue, ADrillWaitsBehindARunningBackupAndAQueuedOne) {
  JobQueue queue(8);
  queue.offer(scheduled(BackupType::full));
  ASSERT_TRUE(queue.start_next().has_value());
  const auto drill = queue.offer_drill(scheduled_drill());
  ASSERT_EQ(drill.admission, Admission::queued);
  EXPECT_FALSE(queue.start_drill(false).has_value()) << "a drill started beside a running backup";
  const auto incr = queue.offer(manual(BackupType::incr));
  queue.finish_running();
  EXPECT_FALSE(queue.start_drill(false).has_value()) << "a drill started before a waiting backup";
  ASSERT_EQ(queue.start_next()->id, incr.job_id);
  queue.finish_running();
  EXPECT_FALSE(queue.start_drill(true).has_value()) << "a drill started beside a dump";
  const auto started = queue.start_drill(false);
  ASSERT_TRUE(started.has_value());
  EXPECT_EQ(started->id, drill.job_id);
}

TEST(JobQueue, BackupsWaitWhileADrillReadsTheRepositoryThenRunBesideIt) {
  JobQueue queue(8);
  queue.offer_drill(scheduled_drill());
  ASSERT_TRUE(queue.start_drill(false).has_value());
  EXPECT_TRUE(queue.drill_reads_repository());
  const auto backup = queue.offer(scheduled(BackupType::incr));
  EXPECT_EQ(backup.admission, Admission::queued);
  EXPECT_FALSE(queue.start_next().has_value()) << "a backup started while the drill restores";
  queue.drill_released_repository();
  ASSERT_EQ(queue.start_next()->id, backup.job_id);
  EXPECT_TRUE(queue.drill_running().has_value());
  queue.finish_drill();
  EXPECT_FALSE(queue.drill_running().has_value());
}

TEST(JobQueue, OneDrillWaitsAtATimeFurtherOnesAreMerged) {
  JobQueue queue(8);
  const auto first = queue.offer_drill(scheduled_drill());
  const auto second = queue.offer_drill(scheduled_drill());
  EXPECT_EQ(second.admission, Admission::merged);
  EXPECT_EQ(second.job_id, first.job_id);
  ASSERT_TRUE(queue.start_drill(false).has_value());
  const auto third = queue.offer_drill(scheduled_drill());
  EXPECT_EQ(third.admission, Admission::merged);
  EXPECT_NE(third.reason.find("running"), std::string::npos) << third.reason;
  queue.finish_drill();
  EXPECT_EQ(queue.offer_drill(scheduled_drill()).admission, Admission::queued);
}

}  // namespace
}  // namespace agent
