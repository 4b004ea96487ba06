#include "metrics/agent_metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "pipelines/backup_pipeline.hpp"

namespace agent {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

system_clock::time_point at(std::int64_t epoch) {
  return system_clock::time_point{seconds{epoch}};
}

StanzaInfo repository() {
  StanzaInfo stanza;
  stanza.name = "db";
  stanza.backups = {{"F1", "full", 900, 1000, 50, 20, false}, {"I1", "incr", 1900, 2000, 60, 5, false}};
  return stanza;
}

// The value of one series in a scrape, or NaN.
double value_of(const std::string& scrape, const std::string& series) {
  std::smatch match;
  const std::regex line("(^|\\n)" +
                        std::regex_replace(series, std::regex(R"([{}\[\]().*+?^$|\\])"), R"(\$&)") +
                        R"( ([^\n]+))");
  if (!std::regex_search(scrape, match, line)) return std::nan("");
  return std::stod(match[2]);
}

TEST(AgentMetrics, AgesAreComputedWhenScrapedWithCoveringTypes) {
  AgentMetrics metrics("db", false);
  metrics.record_repository_read(repository(), at(2100), 0.02);
  const auto first = metrics.scrape(at(3000));
  EXPECT_EQ(value_of(first, R"(agent_backup_age_seconds{repo="1",stanza="db",type="full"})"), 2000);
  EXPECT_EQ(value_of(first, R"(agent_backup_age_seconds{repo="1",stanza="db",type="incr"})"),
            1000);  // any type counts
  EXPECT_EQ(value_of(first, R"(agent_backup_age_seconds{repo="1",stanza="db",type="diff"})"),
            2000);  // the full covers it
  // A later scrape, no new read: the ages moved with the clock.
  const auto later = metrics.scrape(at(3600));
  EXPECT_EQ(value_of(later, R"(agent_backup_age_seconds{repo="1",stanza="db",type="incr"})"), 1600);
  EXPECT_EQ(
      value_of(later, R"(agent_backup_last_completion_timestamp_seconds{repo="1",stanza="db",type="full"})"),
      1000);
}

TEST(AgentMetrics, ScrapesWithinOneSecondShareTheTextUntilSomethingChanges) {
  AgentMetrics metrics("db", false);
  metrics.record_repository_read(repository(), at(2100), 0.02);
  const auto first = metrics.scrape(at(3000));
  const auto same_second = metrics.scrape(at(3000) + std::chrono::milliseconds(900));
  EXPECT_EQ(first, same_second);
  // A change within the same second shows at once.
  StanzaInfo newer = repository();
  newer.backups.push_back({"I2", "incr", 2900, 2950, 70, 6, false});
  metrics.record_repository_read(newer, at(3000), 0.02);
  const auto changed = metrics.scrape(at(3000) + std::chrono::milliseconds(950));
  EXPECT_NEAR(value_of(changed, R"(agent_backup_age_seconds{repo="1",stanza="db",type="incr"})"), 50.95,
              1e-6);
  // The next second computes the ages again.
  const auto next = metrics.scrape(at(3001));
  EXPECT_EQ(value_of(next, R"(agent_backup_age_seconds{repo="1",stanza="db",type="incr"})"), 51);
}

TEST(AgentMetrics, FailedReadKeepsFreshnessSeries) {
  AgentMetrics metrics("db", false);
  metrics.record_repository_read(repository(), at(2100), 0.02);
  metrics.record_repository_read(make_error(ErrorKind::external_tool, "permission denied"), at(2200), 0.01);
  const auto scrape = metrics.scrape(at(2300));
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_success{repo="1",stanza="db"})"), 0);
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_errors_total{repo="1",stanza="db"})"), 1);
  EXPECT_EQ(value_of(scrape, R"(agent_backup_age_seconds{repo="1",stanza="db",type="full"})"), 1300);
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_last_success_timestamp_seconds{repo="1",stanza="db"})"),
            2100);
}

TEST(AgentMetrics, FailureThenSuccessBothVisible) {
  AgentMetrics metrics("db", false);
  BackupResult failed;
  failed.request.type = BackupType::full;
  failed.outcome = BackupOutcome::failed;
  failed.repo = 1;
  metrics.record_backup(failed, at(100));
  BackupResult succeeded = failed;
  succeeded.outcome = BackupOutcome::succeeded;
  metrics.record_backup(succeeded, at(200));
  const auto scrape = metrics.scrape(at(300));
  EXPECT_EQ(
      value_of(scrape, R"(agent_backup_last_failure_timestamp_seconds{repo="1",stanza="db",type="full"})"),
      100);
  EXPECT_EQ(
      value_of(scrape, R"(agent_backup_last_success_timestamp_seconds{repo="1",stanza="db",type="full"})"),
      200);
}

TEST(AgentMetrics, CrunchyCompatibleSeriesFollowPgMonitor) {
  AgentMetrics metrics("db", true);
  metrics.record_repository_read(repository(), at(2100), 0.02);
  metrics.record_archiver(ArchiverStats{10, 2, 2500, 2800});
  const auto scrape = metrics.scrape(at(3000));
  EXPECT_EQ(value_of(scrape,
                     R"(ccp_backrest_last_full_backup_time_since_completion_seconds{repo="1",stanza="db"})"),
            2000);
  EXPECT_EQ(value_of(scrape,
                     R"(ccp_backrest_last_incr_backup_time_since_completion_seconds{repo="1",stanza="db"})"),
            1000);
  EXPECT_EQ(value_of(scrape, R"(ccp_backrest_oldest_full_backup_time_seconds{repo="1",stanza="db"})"), 1000);
  EXPECT_EQ(value_of(scrape, "ccp_archive_command_status_seconds_since_last_archive"), 500);
  EXPECT_EQ(value_of(scrape, "ccp_archive_command_status_seconds_since_last_fail"), 300);
  AgentMetrics plain("db", false);
  EXPECT_EQ(plain.scrape(at(3000)).find("ccp_"), std::string::npos);
}

// Two repositories as `pgbackrest info` reports them: repo1 fresh, repo2 with an older full and
// a stale incremental.
StanzaInfo two_repositories() {
  StanzaInfo stanza;
  stanza.name = "db";
  stanza.repos = {RepoStatus{1, 0, "ok", "000000010000000000000001", "000000010000000000000009"},
                  RepoStatus{2, 0, "ok", "000000010000000000000001", "000000010000000000000009"}};
  stanza.backups = {
      {"F1", "full", 900, 1000, 50, 20, false, 1},  {"F2", "full", 1000, 1100, 50, 21, false, 2},
      {"I1", "incr", 1900, 2000, 60, 5, false, 1},  {"I2", "incr", 1950, 2050, 60, 6, false, 2},
      {"F3", "full", 2900, 3000, 55, 22, false, 1}, {"I3", "incr", 3400, 3500, 65, 7, false, 1}};
  return stanza;
}

TEST(AgentMetrics, EachRepositoryHasItsOwnFreshnessSizesCountsAndWindow) {
  AgentMetrics metrics("db", true);
  metrics.record_repository_read(two_repositories(), at(3600), 0.02);
  const auto scrape = metrics.scrape(at(4000));
  EXPECT_EQ(value_of(scrape, R"(agent_backup_age_seconds{repo="1",stanza="db",type="full"})"), 1000);
  EXPECT_EQ(value_of(scrape, R"(agent_backup_age_seconds{repo="1",stanza="db",type="incr"})"), 500);
  // A stale repo2 is visible, not hidden behind repo1's newer backups.
  EXPECT_EQ(value_of(scrape, R"(agent_backup_age_seconds{repo="2",stanza="db",type="full"})"), 2900);
  EXPECT_EQ(value_of(scrape, R"(agent_backup_age_seconds{repo="2",stanza="db",type="incr"})"), 1950);
  EXPECT_EQ(value_of(scrape, R"(agent_repository_backups{repo="1",stanza="db",type="full"})"), 2);
  EXPECT_EQ(value_of(scrape, R"(agent_repository_backups{repo="2",stanza="db",type="full"})"), 1);
  EXPECT_EQ(value_of(scrape, R"(agent_backup_last_repository_size_bytes{repo="2",stanza="db",type="incr"})"),
            6);
  EXPECT_EQ(value_of(scrape, R"(agent_backup_oldest_completion_timestamp_seconds{repo="1",stanza="db"})"),
            1000);
  EXPECT_EQ(value_of(scrape, R"(agent_backup_oldest_completion_timestamp_seconds{repo="2",stanza="db"})"),
            1100);
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_success{repo="2",stanza="db"})"), 1);
  EXPECT_EQ(
      value_of(
          scrape,
          R"(agent_repository_wal_archive_info{max="000000010000000000000009",min="000000010000000000000001",repo="2",stanza="db"})"),
      1);
  // pgMonitor's repo is the backup's repo-key.
  EXPECT_EQ(value_of(scrape,
                     R"(ccp_backrest_last_full_backup_time_since_completion_seconds{repo="2",stanza="db"})"),
            2900);
  EXPECT_EQ(value_of(scrape,
                     R"(ccp_backrest_last_incr_backup_time_since_completion_seconds{repo="1",stanza="db"})"),
            500);
  EXPECT_EQ(value_of(scrape, R"(ccp_backrest_oldest_full_backup_time_seconds{repo="2",stanza="db"})"), 1100);
  EXPECT_EQ(
      value_of(scrape,
               R"(ccp_backrest_last_info_backup_runtime_seconds{backup_type="incr",repo="2",stanza="db"})"),
      100);
}

TEST(AgentMetrics, OneUnreadableRepositoryFailsAloneAndKeepsItsLastValues) {
  AgentMetrics metrics("db", false);
  metrics.record_repository_read(two_repositories(), at(3600), 0.02);
  // pgBackRest: status 4 "different across repos", repo2's own status 99.
  StanzaInfo partial = two_repositories();
  partial.status_code = 4;
  partial.status_message = "different across repos";
  partial.repos[1] =
      RepoStatus{2, 99, "[PathOpenError] unable to list file info for path '/r2/backup': [13]", "", ""};
  std::erase_if(partial.backups, [](const BackupRecord& b) { return b.repo == 2; });
  partial.backups.push_back({"I4", "incr", 3900, 3950, 66, 8, false, 1});
  metrics.record_repository_read(partial, at(4000), 0.02);
  const auto scrape = metrics.scrape(at(4100));
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_success{repo="1",stanza="db"})"), 1);
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_success{repo="2",stanza="db"})"), 0);
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_errors_total{repo="1",stanza="db"})"), 0);
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_errors_total{repo="2",stanza="db"})"), 1);
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_last_success_timestamp_seconds{repo="1",stanza="db"})"),
            4000);
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_last_success_timestamp_seconds{repo="2",stanza="db"})"),
            3600);
  EXPECT_EQ(value_of(scrape, R"(agent_backup_age_seconds{repo="1",stanza="db",type="incr"})"), 150);
  EXPECT_EQ(value_of(scrape, R"(agent_backup_age_seconds{repo="2",stanza="db",type="full"})"), 3000)
      << "repo2's freshness keeps its last known value";
  const auto summaries = metrics.repositories();
  ASSERT_EQ(summaries.size(), 2u);
  EXPECT_TRUE(summaries[0].readable);
  EXPECT_FALSE(summaries[1].readable);
  EXPECT_NE(summaries[1].problem.find("PathOpenError"), std::string::npos);
  EXPECT_EQ(summaries[1].newest_by_type.at("full").label, "F2");
}

TEST(AgentMetrics, AReadThatFailsBeforeAnyRepositoryIsKnownHasNoRepoUntilOneIs) {
  AgentMetrics metrics("db", false);
  metrics.record_repository_read(make_error(ErrorKind::external_tool, "timed out"), at(100), 60);
  auto scrape = metrics.scrape(at(101));
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_success{repo="",stanza="db"})"), 0);
  EXPECT_EQ(metrics.read_error(), "timed out");
  metrics.record_repository_read(two_repositories(), at(3600), 0.02);
  scrape = metrics.scrape(at(3601));
  EXPECT_TRUE(std::isnan(value_of(scrape, R"(agent_repository_info_success{repo="",stanza="db"})")))
      << scrape;
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_success{repo="2",stanza="db"})"), 1);
  // Then the whole read fails: every known repository says so.
  metrics.record_repository_read(make_error(ErrorKind::external_tool, "timed out"), at(3700), 60);
  scrape = metrics.scrape(at(3701));
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_success{repo="1",stanza="db"})"), 0);
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_success{repo="2",stanza="db"})"), 0);
}

TEST(AgentMetrics, ARepositoryNoLongerConfiguredLosesItsSeries) {
  AgentMetrics metrics("db", true);
  metrics.record_repository_read(two_repositories(), at(3600), 0.02);
  StanzaInfo only_one = two_repositories();
  only_one.repos.pop_back();
  std::erase_if(only_one.backups, [](const BackupRecord& b) { return b.repo == 2; });
  metrics.record_repository_read(only_one, at(3700), 0.02);
  const auto scrape = metrics.scrape(at(3800));
  EXPECT_EQ(scrape.find("repo=\"2\""), std::string::npos) << scrape;
  EXPECT_EQ(value_of(scrape, R"(agent_backup_age_seconds{repo="1",stanza="db",type="full"})"), 800);
}

TEST(AgentMetrics, BackupJobsCarryTheirRepository) {
  AgentMetrics metrics("db", false);
  BackupResult failed;
  failed.request.type = BackupType::full;
  failed.outcome = BackupOutcome::failed;
  failed.repo = 2;
  metrics.record_backup(failed, at(100));
  const auto scrape = metrics.scrape(at(300));
  EXPECT_EQ(
      value_of(scrape, R"(agent_backup_last_failure_timestamp_seconds{repo="2",stanza="db",type="full"})"),
      100);
  EXPECT_EQ(
      value_of(scrape,
               R"(agent_backups_total{repo="2",result="failed",stanza="db",trigger="schedule",type="full"})"),
      1);
}

// The recoverable window: from the oldest usable backup's stop to the newest archived WAL (the
// live server's last archived time) for a repository whose archive holds the newest segment; a
// repository whose archive lags ends at its own newest backup. Without archiver data, every
// window ends at the newest backup.
TEST(AgentMetrics, EachRepositoryExportsItsRecoverableWindow) {
  AgentMetrics metrics("db", false);
  StanzaInfo stanza = two_repositories();
  stanza.archive_max = "000000010000000000000009";
  stanza.repos[1].archive_max = "000000010000000000000005";
  metrics.record_repository_read(stanza, at(3600), 0.02);
  auto scrape = metrics.scrape(at(4000));
  EXPECT_EQ(value_of(scrape, R"(agent_recovery_window_start_timestamp_seconds{repo="1",stanza="db"})"), 1000);
  EXPECT_EQ(value_of(scrape, R"(agent_recovery_window_end_timestamp_seconds{repo="1",stanza="db"})"), 3500);
  EXPECT_EQ(value_of(scrape, R"(agent_recovery_window_seconds{repo="1",stanza="db"})"), 2500);
  ArchiverStats archiver;
  archiver.archived_count = 9;
  archiver.last_archived_epoch = 3900;
  metrics.record_archiver(archiver);
  scrape = metrics.scrape(at(4000));
  EXPECT_EQ(value_of(scrape, R"(agent_recovery_window_end_timestamp_seconds{repo="1",stanza="db"})"), 3900);
  EXPECT_EQ(value_of(scrape, R"(agent_recovery_window_seconds{repo="1",stanza="db"})"), 2900);
  EXPECT_EQ(value_of(scrape, R"(agent_recovery_window_start_timestamp_seconds{repo="2",stanza="db"})"), 1100);
  EXPECT_EQ(value_of(scrape, R"(agent_recovery_window_end_timestamp_seconds{repo="2",stanza="db"})"), 2050);
  EXPECT_EQ(value_of(scrape, R"(agent_recovery_window_seconds{repo="2",stanza="db"})"), 950);
  const auto repos = metrics.repositories();
  ASSERT_EQ(repos.size(), 2u);
  EXPECT_EQ(repos[0].window_start_epoch, 1000);
  EXPECT_EQ(repos[0].window_end_epoch, 3900);
  EXPECT_TRUE(repos[0].window_end_from_wal);
  EXPECT_FALSE(repos[1].window_end_from_wal);
  EXPECT_EQ(value_of(scrape, R"(agent_recovery_window_min_seconds{stanza="db"})"), 0);
}

TEST(AgentMetrics, ExpectedIntervalsReplaceThePreviousSet) {
  AgentMetrics metrics("db", false);
  metrics.set_expected_intervals(
      {{{1, "full"}, std::chrono::hours(24)}, {{2, "incr"}, std::chrono::minutes(15)}});
  auto scrape = metrics.scrape(at(100));
  EXPECT_EQ(value_of(scrape, R"(agent_backup_expected_interval_seconds{repo="1",stanza="db",type="full"})"),
            86400);
  EXPECT_EQ(value_of(scrape, R"(agent_backup_expected_interval_seconds{repo="2",stanza="db",type="incr"})"),
            900);
  metrics.set_expected_intervals({{{1, "full"}, std::chrono::hours(168)}});
  scrape = metrics.scrape(at(101));
  EXPECT_EQ(value_of(scrape, R"(agent_backup_expected_interval_seconds{repo="1",stanza="db",type="full"})"),
            604800);
  EXPECT_TRUE(std::isnan(
      value_of(scrape, R"(agent_backup_expected_interval_seconds{repo="2",stanza="db",type="incr"})")));
}

// The restore of a dump or drill: its series carry the job's kind, follow each report, move
// to the other kind's label, and go when the restore ends; the status reads the same.
TEST(AgentMetrics, TheRunningRestoresProgressIsExportedUntilItEnds) {
  AgentMetrics metrics("db", false);
  EXPECT_FALSE(metrics.restore_progress());
  EXPECT_EQ(metrics.scrape(at(1000)).find("agent_restore_progress_bytes{"), std::string::npos);

  metrics.record_restore_progress("dump", 1'434'186, 3'159'000);
  auto scrape = metrics.scrape(at(1001));
  EXPECT_EQ(value_of(scrape, R"(agent_restore_progress_bytes{kind="dump",stanza="db"})"), 1'434'186);
  EXPECT_EQ(value_of(scrape, R"(agent_restore_progress_total_bytes{kind="dump",stanza="db"})"), 3'159'000);
  metrics.record_restore_progress("dump", 3'159'000, 3'159'000);
  scrape = metrics.scrape(at(1001));  // the same second: a change shows at once
  EXPECT_EQ(value_of(scrape, R"(agent_restore_progress_bytes{kind="dump",stanza="db"})"), 3'159'000);
  ASSERT_TRUE(metrics.restore_progress());
  EXPECT_EQ(metrics.restore_progress()->kind, "dump");
  EXPECT_EQ(metrics.restore_progress()->bytes_done, 3'159'000u);

  // A drill's restore after the dump's, without an end between: one series, the drill's.
  metrics.record_restore_progress("drill", 10, 1u << 31);
  scrape = metrics.scrape(at(1002));
  EXPECT_TRUE(std::isnan(value_of(scrape, R"(agent_restore_progress_bytes{kind="dump",stanza="db"})")));
  EXPECT_EQ(value_of(scrape, R"(agent_restore_progress_total_bytes{kind="drill",stanza="db"})"), 1u << 31);

  metrics.end_restore_progress();
  scrape = metrics.scrape(at(1003));
  EXPECT_EQ(scrape.find("agent_restore_progress_bytes{"), std::string::npos) << scrape;
  EXPECT_EQ(scrape.find("agent_restore_progress_total_bytes{"), std::string::npos) << scrape;
  EXPECT_FALSE(metrics.restore_progress());
  metrics.end_restore_progress();  // twice: nothing to remove
  EXPECT_FALSE(metrics.restore_progress());
}

}  // namespace
}  // namespace agent
