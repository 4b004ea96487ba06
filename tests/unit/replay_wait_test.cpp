#include "pg/replay_wait.hpp"

#include <gtest/gtest.h>

#include "fakes/fake_clock.hpp"
#include "fakes/fake_pg.hpp"

namespace agent {
namespace {

using testing::FakeClock;
using testing::FakePgConnector;
using testing::FakePgScript;
using testing::recovering;

class FakeServer final : public ServerWatch {
 public:
  RecoveryLogFacts log_facts() const override { return log.facts(); }
  std::optional<std::string> exited() const override { return exit_description; }
  RecoveryLog log;
  std::optional<std::string> exit_description;
};

class ReplayWaitTest : public ::testing::Test {
 protected:
  Result<RecoveryStatus> wait() {
    ReplayWaitSettings settings;
    settings.conninfo = "host=/s/run";
    settings.no_progress_timeout = std::chrono::seconds(30);
    settings.first_poll_interval = std::chrono::milliseconds(100);
    settings.poll_interval = std::chrono::milliseconds(100);
    return wait_for_recovery_target(settings, server, connector, clock, cancel);
  }
  FakeClock clock;
  FakePgScript script;
  FakePgConnector connector{script};
  FakeServer server;
  CancelToken cancel;
};

TEST_F(ReplayWaitTest, QueryableIsNotEnough) {
  // Replay moves, then the server says "paused" before the log says the target was
  // reached (a manual pause): the waiter must keep waiting until the log confirms.
  script.statuses = {recovering(100), recovering(200), recovering(200, "paused")};
  clock.on_sleep = [&] {
    if (clock.sleeps == 5) {
      server.log.feed(
          "LOG:  recovery stopping before commit of transaction 750, time 2024-11-04 09:40:01-08");
      server.log.feed("LOG:  pausing at the end of recovery");
    }
  };
  auto result = wait();
  ASSERT_TRUE(result.ok()) << result.error().describe();
  EXPECT_EQ(result->pause_state, "paused");
  EXPECT_EQ(clock.sleeps, 5);
}

TEST(ReplayWaitPolling, StartsFastAndBacksOffToTheMaximum) {
  FakeClock clock;
  FakePgScript script;
  FakePgConnector connector{script};
  FakeServer server;
  CancelToken cancel;
  script.statuses = {recovering(1)};
  std::vector<std::chrono::milliseconds> sleeps;
  auto last = clock.steady_now();
  clock.on_sleep = [&] {
    sleeps.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(clock.steady_now() - last));
    last = clock.steady_now();
    if (clock.sleeps == 8) {
      server.log.feed("LOG:  pausing at the end of recovery");
      script.statuses = {recovering(1, "paused")};
    }
  };
  ReplayWaitSettings settings;
  settings.first_poll_interval = std::chrono::milliseconds(10);
  settings.poll_interval = std::chrono::milliseconds(200);
  auto result = wait_for_recovery_target(settings, server, connector, clock, cancel);
  ASSERT_TRUE(result.ok()) << result.error().describe();
  using std::chrono::milliseconds;
  const std::vector<milliseconds> expected = {milliseconds(10),  milliseconds(20),  milliseconds(40),
                                              milliseconds(80),  milliseconds(160), milliseconds(200),
                                              milliseconds(200), milliseconds(200)};
  EXPECT_EQ(sleeps, expected);
}

TEST_F(ReplayWaitTest, KeepsTryingWhileTheServerStartsUp) {
  script.connect_results = {false, false, true};
  script.statuses = {recovering(10, "paused")};
  server.log.feed("LOG:  recovery stopping after commit of transaction 1");
  server.log.feed("LOG:  pausing at the end of recovery");
  auto result = wait();
  ASSERT_TRUE(result.ok()) << result.error().describe();
  EXPECT_EQ(script.connects, 3);
}

TEST_F(ReplayWaitTest, DeadlineResetsWhileReplayAdvances) {
  // 60 s of steady progress, longer than the 30 s no-progress timeout, then the target.
  std::uint64_t lsn = 0;
  script.statuses = {recovering(0)};
  clock.on_sleep = [&] {
    if (clock.sleeps < 600) {
      script.statuses = {recovering(++lsn)};
    } else if (clock.sleeps == 600) {
      server.log.feed("LOG:  pausing at the end of recovery");
      script.statuses = {recovering(lsn, "paused")};
    }
  };
  auto result = wait();
  ASSERT_TRUE(result.ok()) << result.error().describe();
  EXPECT_GE(clock.sleeps, 600);
}

TEST_F(ReplayWaitTest, GivesUpWhenReplayStalls) {
  script.statuses = {recovering(42)};
  auto result = wait();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::external_tool);
  EXPECT_NE(result.error().message.find("no progress for 30 s"), std::string::npos);
  EXPECT_LE(clock.sleeps, 302);
}

TEST_F(ReplayWaitTest, WalEndingBeforeTheTargetNamesTheLastReachableTime) {
  script.statuses = {recovering(42)};
  clock.on_sleep = [&] {
    if (clock.sleeps == 3) {
      server.log.feed("LOG:  last completed transaction was at log time 2024-11-04 09:39:58.123-08");
      server.log.feed("FATAL:  recovery ended before configured recovery target was reached");
      server.exit_description = "exited with code 1";
    }
  };
  auto result = wait();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::target_window);
  EXPECT_NE(result.error().message.find("the last time the copy can reach is 2024-11-04 09:39:58.123-08"),
            std::string::npos);
}

TEST_F(ReplayWaitTest, WalEndingRightAfterTheBackupNamesTheBackupsEnd) {
  script.connect_results = {false};
  server.log.feed("FATAL:  recovery ended before configured recovery target was reached");
  server.exit_description = "exited with code 1";
  ReplayWaitSettings settings;
  settings.backup_end_description = "2024-11-04T02:00:55Z (the end of backup set 20241104-020000F)";
  auto result = wait_for_recovery_target(settings, server, connector, clock, cancel);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::target_window);
  EXPECT_NE(result.error().message.find("can reach is 2024-11-04T02:00:55Z (the end of backup set"),
            std::string::npos);
}

TEST_F(ReplayWaitTest, ServerCrashIsAToolFailure) {
  script.connect_results = {false};
  server.log.feed("FATAL:  could not load library \"pg_stat_statements\"");
  server.exit_description = "exited with code 1";
  auto result = wait();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::external_tool);
  EXPECT_NE(result.error().message.find("pg_stat_statements"), std::string::npos);
}

TEST_F(ReplayWaitTest, PromotedServerFailsVerification) {
  RecoveryStatus promoted;
  promoted.in_recovery = false;
  script.statuses = {promoted};
  auto result = wait();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::verification);
}

TEST_F(ReplayWaitTest, CancelStopsTheWait) {
  script.statuses = {recovering(1)};
  clock.on_sleep = [&] {
    if (clock.sleeps == 2) cancel.cancel(SIGTERM);
  };
  auto result = wait();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::interrupted);
}

TEST(RecoveryLog, ReadsTheServerMessages) {
  RecoveryLog log;
  log.feed(
      "2024-11-04 17:40:02.001 UTC [12] LOG:  starting point-in-time recovery to 2024-11-04 17:40:00+00");
  EXPECT_FALSE(log.facts().target_reached);
  log.feed(
      "2024-11-04 17:40:02.101 UTC [12] LOG:  recovery stopping before commit of transaction 750, time "
      "2024-11-04 17:40:01.5+00");
  log.feed("2024-11-04 17:40:02.102 UTC [12] LOG:  pausing at the end of recovery");
  const auto facts = log.facts();
  EXPECT_TRUE(facts.target_reached);
  EXPECT_TRUE(facts.paused_at_target);
  EXPECT_EQ(*facts.stop_detail,
            "recovery stopping before commit of transaction 750, time 2024-11-04 17:40:01.5+00");
  EXPECT_EQ(facts.lines, 3u);
  EXPECT_FALSE(facts.last_fatal.has_value());
}

}  // namespace
}  // namespace agent
