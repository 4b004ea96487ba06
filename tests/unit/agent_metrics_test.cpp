#include "metrics/agent_metrics.hpp"

#include <gtest/gtest.h>

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
  AgentMetrics metrics("db", "1", false);
  metrics.record_repository_read(repository(), at(2100), 0.02);
  const auto first = metrics.scrape(at(3000));
  EXPECT_EQ(value_of(first, R"(agent_backup_age_seconds{stanza="db",type="full"})"), 2000);
  EXPECT_EQ(value_of(first, R"(agent_backup_age_seconds{stanza="db",type="incr"})"),
            1000);  // any type counts
  EXPECT_EQ(value_of(first, R"(agent_backup_age_seconds{stanza="db",type="diff"})"),
            2000);  // the full covers it
  // A later scrape, no new read: the ages moved with the clock.
  const auto later = metrics.scrape(at(3600));
  EXPECT_EQ(value_of(later, R"(agent_backup_age_seconds{stanza="db",type="incr"})"), 1600);
  EXPECT_EQ(value_of(later, R"(agent_backup_last_completion_timestamp_seconds{stanza="db",type="full"})"),
            1000);
}

TEST(AgentMetrics, ScrapesWithinOneSecondShareTheTextUntilSomethingChanges) {
  AgentMetrics metrics("db", "1", false);
  metrics.record_repository_read(repository(), at(2100), 0.02);
  const auto first = metrics.scrape(at(3000));
  const auto same_second = metrics.scrape(at(3000) + std::chrono::milliseconds(900));
  EXPECT_EQ(first, same_second);
  // A change within the same second shows at once.
  StanzaInfo newer = repository();
  newer.backups.push_back({"I2", "incr", 2900, 2950, 70, 6, false});
  metrics.record_repository_read(newer, at(3000), 0.02);
  const auto changed = metrics.scrape(at(3000) + std::chrono::milliseconds(950));
  EXPECT_NEAR(value_of(changed, R"(agent_backup_age_seconds{stanza="db",type="incr"})"), 50.95, 1e-6);
  // The next second computes the ages again.
  const auto next = metrics.scrape(at(3001));
  EXPECT_EQ(value_of(next, R"(agent_backup_age_seconds{stanza="db",type="incr"})"), 51);
}

TEST(AgentMetrics, FailedReadKeepsFreshnessSeries) {
  AgentMetrics metrics("db", "1", false);
  metrics.record_repository_read(repository(), at(2100), 0.02);
  metrics.record_repository_read(make_error(ErrorKind::external_tool, "permission denied"), at(2200), 0.01);
  const auto scrape = metrics.scrape(at(2300));
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_success{stanza="db"})"), 0);
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_errors_total{stanza="db"})"), 1);
  EXPECT_EQ(value_of(scrape, R"(agent_backup_age_seconds{stanza="db",type="full"})"), 1300);
  EXPECT_EQ(value_of(scrape, R"(agent_repository_info_last_success_timestamp_seconds{stanza="db"})"), 2100);
}

TEST(AgentMetrics, FailureThenSuccessBothVisible) {
  AgentMetrics metrics("db", "1", false);
  BackupResult failed;
  failed.request.type = BackupType::full;
  failed.outcome = BackupOutcome::failed;
  metrics.record_backup(failed, at(100));
  BackupResult succeeded = failed;
  succeeded.outcome = BackupOutcome::succeeded;
  metrics.record_backup(succeeded, at(200));
  const auto scrape = metrics.scrape(at(300));
  EXPECT_EQ(value_of(scrape, R"(agent_backup_last_failure_timestamp_seconds{stanza="db",type="full"})"), 100);
  EXPECT_EQ(value_of(scrape, R"(agent_backup_last_success_timestamp_seconds{stanza="db",type="full"})"), 200);
}

TEST(AgentMetrics, CrunchyCompatibleSeriesFollowPgMonitor) {
  AgentMetrics metrics("db", "1", true);
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
  AgentMetrics plain("db", "1", false);
  EXPECT_EQ(plain.scrape(at(3000)).find("ccp_"), std::string::npos);
}

}  // namespace
}  // namespace agent
