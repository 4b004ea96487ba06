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
  // The postmaster (pid 11) writes the first line; the startup process (pid 12) the rest.
  FakeServer() { log.feed("[11] LOG:  starting PostgreSQL 15.18"); }
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
          "[12] LOG:  recovery stopping before commit of transaction 750, time 2024-11-04 09:40:01-08");
      server.log.feed("[12] LOG:  pausing at the end of recovery");
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
      server.log.feed("[12] LOG:  pausing at the end of recovery");
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
  server.log.feed("[12] LOG:  recovery stopping after commit of transaction 1");
  server.log.feed("[12] LOG:  pausing at the end of recovery");
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
      server.log.feed("[12] LOG:  pausing at the end of recovery");
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
      server.log.feed("[12] LOG:  last completed transaction was at log time 2024-11-04 09:39:58.123-08");
      server.log.feed("[12] FATAL:  recovery ended before configured recovery target was reached");
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
  server.log.feed("[12] FATAL:  recovery ended before configured recovery target was reached");
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
  server.log.feed("[11] FATAL:  could not load library \"pg_stat_statements\"");
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
  log.feed("[12] LOG:  starting point-in-time recovery to 2024-11-04 17:40:00+00");
  EXPECT_FALSE(log.facts().target_reached);
  log.feed(
      "[12] LOG:  recovery stopping before commit of transaction 750, time "
      "2024-11-04 17:40:01.5+00");
  log.feed("[12] LOG:  pausing at the end of recovery");
  const auto facts = log.facts();
  EXPECT_TRUE(facts.target_reached);
  EXPECT_TRUE(facts.paused_at_target);
  EXPECT_EQ(*facts.stop_detail,
            "recovery stopping before commit of transaction 750, time 2024-11-04 17:40:01.5+00");
  EXPECT_EQ(facts.lines, 3u);
  EXPECT_FALSE(facts.last_fatal.has_value());
}

TEST_F(ReplayWaitTest, ARoleThatDoesNotExistEndsTheWaitAtOnce) {
  // Each failed connection writes a FATAL line into the server's log: that is no progress, and
  // waiting does not cure it.
  struct Refusing final : PgConnector {
    int connects = 0;
    Result<std::unique_ptr<PgSession>> connect(const std::string&) override {
      ++connects;
      return make_error(ErrorKind::external_tool,
                        "cannot connect: connection to server on socket \"/s/run/.s.PGSQL.5533\" failed: "
                        "FATAL:  role \"nobody\" does not exist");
    }
  } refusing;
  ReplayWaitSettings settings;
  settings.user = "nobody";
  settings.database = "postgres";
  auto result = wait_for_recovery_target(settings, server, refusing, clock, cancel);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::usage);
  EXPECT_NE(result.error().message.find("postgres.user 'nobody'"), std::string::npos)
      << result.error().message;
  EXPECT_NE(result.error().hint.find("postgres.user"), std::string::npos);
  EXPECT_EQ(refusing.connects, 1);
  EXPECT_EQ(clock.sleeps, 0);
}

TEST(ReplayWaitConnections, RefusalsThatWaitingDoesNotCureAreFatal) {
  const ConnectionSubject subject{"agent", "api", "--database (dump.database)", "the copy at the target"};
  for (const char* message :
       {"FATAL:  password authentication failed for user \"agent\"",
        "FATAL:  no pg_hba.conf entry for host \"[local]\", user \"agent\", database \"api\"",
        "FATAL:  role \"agent\" is not permitted to log in"}) {
    const auto error = fatal_connection_error(message, subject);
    ASSERT_TRUE(error.has_value()) << message;
    EXPECT_NE(error->message.find("postgres.user 'agent'"), std::string::npos) << error->message;
  }
  const auto database = fatal_connection_error("FATAL:  database \"api\" does not exist", subject);
  ASSERT_TRUE(database.has_value());
  EXPECT_NE(database->message.find("database 'api' does not exist in the copy at the target"),
            std::string::npos);
  EXPECT_NE(database->hint.find("--database (dump.database)"), std::string::npos);
  for (const char* message :
       {"FATAL:  the database system is starting up",
        "FATAL:  the database system is not yet accepting connections",
        "connection to server on socket \"/s/run/.s.PGSQL.5533\" failed: No such file or directory",
        "FATAL:  the database system is shutting down"})
    EXPECT_FALSE(fatal_connection_error(message, subject).has_value()) << message;
}

TEST_F(ReplayWaitTest, OnlyRecoveryAndReplayCountAsProgress) {
  // The agent's own connection attempts fail while the server starts; their lines in the log
  // (other PIDs) must not keep a stuck recovery alive.
  script.connect_results = std::deque<bool>(2000, false);
  clock.on_sleep = [&] {
    server.log.feed("[" + std::to_string(100 + clock.sleeps) +
                    "] FATAL:  the database system is starting up");
  };
  auto result = wait();
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("no progress for 30 s"), std::string::npos) << result.error().message;
  EXPECT_LE(clock.sleeps, 302);
}

TEST_F(ReplayWaitTest, RecoveryLinesAreProgress) {
  script.connect_results = std::deque<bool>(2000, false);
  clock.on_sleep = [&] {
    if (clock.sleeps < 600)
      server.log.feed("[12] LOG:  restored log file \"000000010000000000000005\" from archive");
    if (clock.sleeps == 600) cancel.cancel(SIGTERM);
  };
  auto result = wait();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::interrupted);  // not "no progress" after 30 s
}

TEST_F(ReplayWaitTest, TheAgentsOwnConnectionsAreNeverBlamed) {
  script.connect_results = {false};
  server.log.feed("[12] LOG:  starting point-in-time recovery to 2024-11-04 09:40:00-08");
  server.log.feed("[31] FATAL:  the database system is starting up");
  server.log.feed("[11] LOG:  startup process (PID 12) was terminated by signal 9: Killed");
  server.exit_description = "exited with code 1";
  auto result = wait();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message.find("starting up"), std::string::npos) << result.error().message;
}

// What archive-get writes to the server's stderr when it fails, and what PostgreSQL then says.
void archive_get_fails(RecoveryLog& log, const std::string& reason) {
  log.feed("[12] LOG:  starting point-in-time recovery to 2024-11-04 09:40:00-08");
  log.feed("ERROR: [042]: unable to get 000000010000000000000007:");
  log.feed("       repo1: 15-1/0000000100000000/000000010000000000000007-7e38.lz4 " + reason);
  log.feed("[12] LOG:  redo done at 0/6000090 system usage: CPU: user: 0.00 s");
  log.feed("[12] FATAL:  recovery ended before configured recovery target was reached");
}

TEST_F(ReplayWaitTest, AFullScratchDiskWhileFetchingWalIsNotTheEndOfTheArchive) {
  script.connect_results = {false};
  archive_get_fails(
      server.log,
      "[FileWriteError] unable to write '/s/data/pg_wal/RECOVERYXLOG': [28] No space left on device");
  // PostgreSQL asks again; the second failure is only a consequence of the first.
  server.log.feed("ERROR: [042]: unable to get 000000010000000000000007:");
  server.log.feed("       repo1: [FileWriteError] unable to write 'x': [2] No such file or directory");
  server.exit_description = "exited with code 1";
  auto result = wait();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::environment);
  EXPECT_NE(result.error().message.find("disk is full"), std::string::npos) << result.error().message;
  EXPECT_NE(result.error().message.find("No space left on device"), std::string::npos);
  EXPECT_EQ(result.error().message.find("ends before the target"), std::string::npos);
}

TEST_F(ReplayWaitTest, AnUnreadableArchiveIsNotTheEndOfTheArchive) {
  script.connect_results = {false};
  archive_get_fails(server.log,
                    "[FileOpenError] unable to open file '/repo/x.lz4' for read: [13] Permission denied");
  server.exit_description = "exited with code 1";
  auto result = wait();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::external_tool);
  EXPECT_NE(result.error().message.find("the repository cannot be read"), std::string::npos)
      << result.error().message;
  EXPECT_NE(result.error().message.find("Permission denied"), std::string::npos);
}

TEST_F(ReplayWaitTest, AnUnreachableRepositoryIsNotTheEndOfTheArchive) {
  script.connect_results = {false};
  archive_get_fails(server.log,
                    "[HostConnectError] unable to connect to 'repo-host:8432': [111] Connection refused");
  server.exit_description = "exited with code 1";
  auto result = wait();
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("the repository cannot be reached"), std::string::npos)
      << result.error().message;
}

TEST(RecoveryLog, TellsRecoveryFromTheAgentsConnectionsAndKeepsArchiveGetsReasons) {
  RecoveryLog log;
  log.feed("[11] LOG:  starting PostgreSQL 15.18 on x86_64-pc-linux-gnu");
  log.feed("[12] LOG:  database system was interrupted; last known up at 2024-11-04 17:00:00 UTC");
  log.feed("[12] LOG:  restored log file \"000000010000000000000005\" from archive");
  log.feed("[40] FATAL:  the database system is not yet accepting connections");
  log.feed("[40] DETAIL:  Consistent recovery state has not been yet reached.");
  log.feed("[12] LOG:  restored log file \"00000002.history\" from archive");
  log.feed("[12] LOG:  restored log file \"000000010000000000000006\" from archive");
  log.feed("ERROR: [042]: unable to get 000000010000000000000007:");
  log.feed("       repo1: [13] Permission denied");
  log.feed("[12] LOG:  redo done at 0/6000090 system usage: CPU: user: 0.00 s");
  const auto facts = log.facts();
  EXPECT_EQ(facts.lines, 10u);
  EXPECT_EQ(facts.recovery_lines, 5u);
  EXPECT_FALSE(facts.last_fatal.has_value());  // the agent's connection, not recovery
  EXPECT_EQ(facts.restored_segments,
            (std::deque<std::string>{"000000010000000000000005", "000000010000000000000006"}));
  EXPECT_EQ(facts.tool_error,
            "ERROR: [042]: unable to get 000000010000000000000007: repo1: [13] Permission denied");
  EXPECT_EQ(facts.redo_done_lsn, "0/6000090");
  EXPECT_EQ(server_line_pid("[12] LOG:  x"), 12);
  EXPECT_FALSE(server_line_pid("ERROR: [042]: x").has_value());
  EXPECT_FALSE(server_line_pid("[abc] x").has_value());
}

TEST(RecoveryLog, KeepsTheServersOwnReasonBeforeItsPrefixApplies) {
  RecoveryLog log;
  log.feed("FATAL:  invalid value for parameter \"shared_buffers\": \"lots\"");
  EXPECT_EQ(log.facts().last_fatal, "FATAL:  invalid value for parameter \"shared_buffers\": \"lots\"");
  EXPECT_FALSE(log.facts().tool_error.has_value());
}

TEST(RecoveryLog, ClassifiesReasons) {
  EXPECT_EQ(classify_failure("unable to write 'x': [28] No space left on device"),
            FailureCause::out_of_space);
  EXPECT_EQ(
      classify_failure("PANIC:  could not write to file \"pg_wal/xlogtemp.1\": No space left on device"),
      FailureCause::out_of_space);
  EXPECT_EQ(classify_failure("[FileOpenError] unable to open file '/r/x' for read: [13] Permission denied"),
            FailureCause::archive_unreadable);
  EXPECT_EQ(classify_failure("ERROR: [049]: [HostConnectError] unable to connect to 'h:8432'"),
            FailureCause::repository_unreachable);
  EXPECT_EQ(classify_failure("ERROR: [039]: io timeout after 60000ms waiting for read"),
            FailureCause::repository_unreachable);
  EXPECT_EQ(classify_failure("ERROR: [028]: invalid format"), FailureCause::unknown);
}

TEST(RecoveryLog, CollectsInvalidPageReportsOfTheStartupProcessWithTheirDatabase) {
  RecoveryLog log;
  log.feed("[11] LOG:  starting PostgreSQL 15.18");
  log.feed("[12] LOG:  starting point-in-time recovery to 2024-11-04 17:40:00+00");
  log.feed("[12] WARNING:  page 3 of relation base/16386/16401 is uninitialized");
  log.feed("[12] WARNING:  page 7 of relation pg_tblspc/16384/PG_15_202209061/16385/16390_vm does not exist");
  log.feed("[12] WARNING:  WAL contains references to invalid pages");
  log.feed("[40] WARNING:  page 1 of relation base/16385/1 is uninitialized");  // a backend: not recovery's
  const auto facts = log.facts();
  EXPECT_EQ(facts.invalid_pages, 2u);
  ASSERT_EQ(facts.invalid_page_relations.size(), 2u);
  EXPECT_EQ(relation_path_database(facts.invalid_page_relations[0]), 16386u);
  EXPECT_EQ(relation_path_database(facts.invalid_page_relations[1]), 16385u);
  EXPECT_EQ(relation_path_database("global/1262"), 0u);
  EXPECT_EQ(relation_path_database("base/x/1"), 0u);
}

}  // namespace
}  // namespace agent
