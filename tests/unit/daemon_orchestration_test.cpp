// The daemon's orchestration on fakes: the real AgentDaemon, JobRunner, triggers and control
// socket, with a scripted process runner (exact argv, nothing unexpected), a scripted
// PostgreSQL and a fake time line for the clock and the loop's timers. The test turns the
// event loop itself; jobs run on their real threads.
#include <date/date.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "config/config.hpp"
#include "core/version.hpp"
#include "daemon/agent_daemon.hpp"
#include "daemon/control_protocol.hpp"
#include "daemon/status_view.hpp"
#include "fakes/fake_copy.hpp"
#include "fakes/fake_loop_timers.hpp"
#include "fakes/fake_pg.hpp"
#include "fakes/fake_process_runner.hpp"
#include "fakes/temp_directory.hpp"
#include "jobs/request_journal.hpp"

namespace agent::testing {
namespace {

using namespace std::chrono_literals;
using Argv = std::vector<std::string>;

// pgBackRest finds its own config files: no --config unless the agent's config names one.
const Argv kInfo = {"pgbackrest", "--stanza=db", "--output=json", "--log-level-console=warn", "info"};
Argv backup_argv(const std::string& type) {
  return {"pgbackrest", "--stanza=db", "--log-level-console=detail", "--type=" + type, "backup"};
}
Argv backup_argv(const std::string& type, int repo) {
  auto argv = backup_argv(type);
  argv.insert(std::find(argv.begin(), argv.end(), "--stanza=db") + 1, "--repo=" + std::to_string(repo));
  return argv;
}
const char* const kInfoJson =
    R"([{"name": "db", "status": {"code": 0, "message": "ok", "lock": {"backup": {"held": false}}},
        "db": [{"id": 1, "system-id": 7311234567890123456, "version": "15"}],
        "archive": [{"id": "15-1", "min": "000000010000000000000003", "max": "00000001000000000000000A"}],
        "backup": []}])";
// The same stanza with two repositories configured.
const char* const kInfoTwoReposJson =
    R"([{"name": "db", "status": {"code": 0, "message": "ok", "lock": {"backup": {"held": false}}},
        "db": [{"id": 1, "system-id": 7311234567890123456, "version": "15"}],
        "archive": [{"id": "15-1", "min": "000000010000000000000003", "max": "00000001000000000000000A"}],
        "repo": [{"key": 1, "status": {"code": 0, "message": "ok"}},
                 {"key": 2, "status": {"code": 0, "message": "ok"}}],
        "backup": []}])";

// Replies the daemon sent one client, in order.
struct Replies {
  std::mutex mutex;
  std::vector<nlohmann::json> messages;
  bool closed = false;
  ControlReply sink() {
    return [this](const ControlReplyMessage& message, bool last) {
      std::lock_guard lock(mutex);
      messages.push_back(control_reply_json(message));
      closed = closed || last;
    };
  }
  bool has_event(const std::string& event) {
    std::lock_guard lock(mutex);
    for (const auto& m : messages)
      if (m.value("event", "") == event) return true;
    return false;
  }
  nlohmann::json last() {
    std::lock_guard lock(mutex);
    return messages.empty() ? nlohmann::json() : messages.back();
  }
};

class Orchestration : public ::testing::Test {
 protected:
  void SetUp() override {
    runner.allow(kInfo, exited(0, kInfoJson));
    runner.allow({"pgbackrest", "version"}, exited(0, "pgBackRest 2.56.0\n"));
    // 10:59:30 UTC: the hourly schedule below is due in 30 s.
    time.set_wall(date::sys_days{date::year{2026} / 11 / 30} + 10h + 59min + 30s);
  }
  void TearDown() override {
    runner.release();  // a job still held ends, so its thread can be joined
    daemon.reset();
  }

  // The test's config: an hourly incremental schedule unless `incr` says otherwise.
  ConfigLoad config_text(const std::string& extra, const std::string& incr = "0 * * * *") {
    return load_config_text("state_dir: " + dir.path +
                                "/state\nschedules:\n  timezone: UTC\n  full: \"\"\n  incr: \"" + incr +
                                "\"\nmanual:\n  annotations_file: \"\"\nhttp:\n  listen: \"\"\n" + extra,
                            "test.yaml", {});
  }

  void start(const std::string& extra = "") { start_with(config_text(extra)); }
  void start_with(const ConfigLoad& load) {
    ASSERT_TRUE(load.issues.empty()) << config_error(load.issues).message;
    DaemonSeams seams;
    seams.runner = &runner;
    seams.connector = &connector;
    // Dumps and drills bind a copier by reference: a null one would be dereferenced.
    seams.make_copier = [this] {
      return std::unique_ptr<CopyConnector>(std::make_unique<FakeCopyConnector>(copies));
    };
    seams.clock = &time;
    seams.timers = &time;
    seams.exit_now = [this](int code) { exit_codes.push_back(code); };
    seams.handle_signals = false;
    seams.reload_config = [this] { return next_config; };
    daemon = std::make_unique<AgentDaemon>(load.config, seams);
    auto started = daemon->start();
    ASSERT_TRUE(started.ok()) << started.error().describe();
  }

  // Turns the loop until `done` holds (up to 10 s of real time).
  bool turn_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      daemon->io().poll();
      if (done()) return true;
      std::this_thread::sleep_for(2ms);
    }
    return false;
  }
  void advance(std::chrono::milliseconds by) {
    time.advance(by);
    daemon->io().poll();
  }
  void backup(BackupType type, bool wait, Replies& replies) {
    daemon->backup(BackupCommand{type, wait}, replies.sink());
  }
  std::string scrape() { return daemon->metrics().scrape(time.now()); }
  // Starts the daemon with run.grace_seconds `grace` and a manual full backup that runs until
  // released (`hold`), then sends it SIGTERM; `client` hears about the backup.
  void stop_during_a_backup(int grace, Replies& client, bool wait,
                            FakeProcessRunner::Hold hold = FakeProcessRunner::Hold::until_released) {
    runner.expect(backup_argv("full"), exited(0), hold);
    start("run:\n  grace_seconds: " + std::to_string(grace) + "\n");
    backup(BackupType::full, wait, client);
    ASSERT_TRUE(runner.wait_running());
    daemon->request_stop(SIGTERM);
  }
  // The value of the first sample of `name` whose labels contain every one of `labels`.
  std::optional<double> sample(const std::string& name, const std::vector<std::string>& labels) {
    std::istringstream lines(scrape());
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0) continue;
      bool all = true;
      for (const auto& label : labels) all = all && line.find(label) != std::string::npos;
      if (all) return std::stod(line.substr(line.rfind(' ') + 1));
    }
    return std::nullopt;
  }

  TempDirectory dir{"agent-orchestration"};
  FakeProcessRunner runner;
  FakeCopyScript copies;
  FakePgScript pg;
  FakePgConnector connector{pg};
  FakeLoopTime time;
  std::vector<int> exit_codes;
  ConfigLoad next_config;  // what a reload reads
  std::unique_ptr<AgentDaemon> daemon;
};

TEST_F(Orchestration, ScheduleFiresOnTimeAndAManualRequestWaitsForTheRunningBackup) {
  runner.expect(backup_argv("incr"), exited(0), FakeProcessRunner::Hold::until_released);
  runner.expect(backup_argv("full"), exited(0));
  start();
  EXPECT_EQ(daemon->status()["schedules"][0]["next"], "2026-11-30T11:00:00Z");

  advance(29s);
  EXPECT_TRUE(runner.started().empty()) << "fired before its minute";
  advance(1s);
  ASSERT_TRUE(runner.wait_running());
  EXPECT_EQ(runner.started().at(0), backup_argv("incr"));

  Replies manual;
  backup(BackupType::full, true, manual);
  ASSERT_TRUE(manual.has_event("backup-accepted"));
  EXPECT_EQ(manual.last()["admission"], "queued");
  auto status = daemon->status();
  EXPECT_EQ(status["running"]["trigger"], "schedule");
  ASSERT_EQ(status["queue"].size(), 1u);
  EXPECT_EQ(status["queue"][0]["type"], "full");

  runner.release();
  ASSERT_TRUE(turn_until([&] { return manual.has_event("backup-finished"); }));
  EXPECT_EQ(manual.last()["result"]["outcome"], "succeeded");
  EXPECT_EQ(manual.last()["result"]["type"], "full");
  EXPECT_EQ(runner.started(), (std::vector<Argv>{backup_argv("incr"), backup_argv("full")}));
  EXPECT_TRUE(runner.all_used());
  // Both results are in the metrics, by trigger.
  EXPECT_EQ(sample("agent_backups_total", {"trigger=\"schedule\"", "type=\"incr\"", "result=\"succeeded\""}),
            1);
  EXPECT_EQ(sample("agent_backups_total", {"trigger=\"manual\"", "type=\"full\"", "result=\"succeeded\""}),
            1);
  EXPECT_EQ(daemon->status()["schedules"][0]["next"], "2026-11-30T12:00:00Z");
}

// Each backup carries its audit trail into the repository (pgBackRest's --annotation, listed by
// `pgbackrest info`): the trigger, the request (the schedule, or the requesting command) and the
// agent's version.
TEST_F(Orchestration, EveryBackupIsAnnotatedWithWhoAskedForIt) {
  const auto annotated = [](Argv argv, const std::string& trigger, const std::string& request) {
    const auto at = std::find(argv.begin(), argv.end(), "--stanza=db") + 1;
    argv.insert(at, {"--annotation=agent-trigger=" + trigger, "--annotation=agent-request=" + request,
                     std::string("--annotation=agent-version=") + kAgentVersion});
    return argv;
  };
  const Argv scheduled = annotated(backup_argv("incr"), "schedule", "schedule incr '0 * * * *'");
  const Argv manual = annotated(backup_argv("full"), "manual", "agent backup --type full");
  runner.expect(scheduled, exited(0));
  runner.expect(manual, exited(0));
  start();
  advance(30s);
  ASSERT_TRUE(turn_until([&] { return runner.started().size() == 1u; }));
  Replies client;
  backup(BackupType::full, true, client);
  ASSERT_TRUE(turn_until([&] { return client.has_event("backup-finished"); }));
  EXPECT_EQ(runner.started(), (std::vector<Argv>{scheduled, manual}));
  EXPECT_TRUE(runner.all_used());
}

// schedules.drill only enqueues: due at the same minute as a backup, the drill waits in the
// queue behind it and starts once it has ended. (Here the drill cannot run: postgres.bindir is
// missing, so its check step refuses before it starts anything; its manifest says so.)
TEST_F(Orchestration, AScheduledDrillWaitsBehindTheRunningBackupThenRuns) {
  runner.expect(backup_argv("incr"), exited(0), FakeProcessRunner::Hold::until_released);
  start_with(load_config_text("state_dir: " + dir.path +
                                  "/state\nschedules:\n  timezone: UTC\n  incr: \"0 * * * *\"\n"
                                  "  drill: \"0 * * * *\"\nmanual:\n  annotations_file: \"\"\nhttp:\n"
                                  "  listen: \"\"\npostgres:\n  bindir: " +
                                  dir.path + "/no-bindir\n",
                              "test.yaml", {}));
  EXPECT_EQ(daemon->status()["drill"]["schedule"]["next"], "2026-11-30T11:00:00Z");
  advance(30s);
  ASSERT_TRUE(runner.wait_running());
  ASSERT_TRUE(turn_until([&] { return daemon->status()["drill"]["queued"].is_object(); }));
  auto status = daemon->status();
  EXPECT_EQ(status["running"]["type"], "incr");
  EXPECT_TRUE(status["drill"]["running"].is_null()) << "the drill started beside the backup";
  EXPECT_EQ(status["drill"]["queued"]["reason"], "schedule drill '0 * * * *'");

  runner.release();
  ASSERT_TRUE(turn_until([&] {
    const auto now = daemon->status();
    return now["running"].is_null() && now["drill"]["running"].is_null() && now["drill"]["last"].is_object();
  }));
  status = daemon->status();
  EXPECT_TRUE(status["drill"]["queued"].is_null());
  EXPECT_EQ(status["drill"]["last"]["trigger"], "schedule");
  EXPECT_EQ(status["drill"]["last"]["result"], "error");
  EXPECT_EQ(status["drill"]["last"]["mode"], "latest");
  EXPECT_EQ(status["drill"]["schedule"]["next"], "2026-11-30T12:00:00Z");
  EXPECT_EQ(runner.started(), (std::vector<Argv>{backup_argv("incr")})) << "the drill ran a process";
}

// `agent drill` through the control socket: accepted and queued behind the running backup
// (never merged: a second one is refused while it waits), its steps and its end reach the
// client, and the queue goes on. (The drill cannot run here: postgres.bindir is missing.)
TEST_F(Orchestration, AClientsDrillWaitsInTheQueueAndHearsItsEnd) {
  runner.expect(backup_argv("incr"), exited(0), FakeProcessRunner::Hold::until_released);
  start("postgres:\n  bindir: " + dir.path + "/no-bindir\n");
  advance(30s);
  ASSERT_TRUE(runner.wait_running());

  Replies refused_now;
  DrillCommand bad;
  bad.arguments.target = "not a time";
  daemon->drill(bad, refused_now.sink());
  EXPECT_EQ(refused_now.last()["event"], "refused") << refused_now.last();
  EXPECT_EQ(refused_now.last()["exit_code"], 2) << refused_now.last();
  EXPECT_TRUE(daemon->status()["drill"]["queued"].is_null());

  Replies client;
  DrillCommand command;
  command.arguments.latest = true;
  command.arguments.databases = {"api"};
  daemon->drill(command, client.sink());
  ASSERT_TRUE(client.has_event("drill-accepted"));
  EXPECT_EQ(client.last()["reason"], "it waits behind the backups") << client.last();
  auto status = daemon->status();
  EXPECT_EQ(status["drill"]["queued"]["reason"], "agent drill");
  EXPECT_TRUE(status["drill"]["running"].is_null()) << "the drill started beside the backup";
  Replies second;
  daemon->drill(command, second.sink());
  EXPECT_EQ(second.last()["event"], "refused") << second.last();
  EXPECT_EQ(second.last()["exit_code"], 5);
  EXPECT_NE(second.last()["error"].get<std::string>().find("already queued"), std::string::npos);

  runner.release();
  ASSERT_TRUE(turn_until([&] { return client.has_event("drill-finished"); }));
  EXPECT_TRUE(client.has_event("drill-step"));
  EXPECT_EQ(client.last()["ok"], false) << client.last();
  EXPECT_NE(client.last()["error"].get<std::string>().find("no-bindir"), std::string::npos) << client.last();
  status = daemon->status();
  EXPECT_EQ(status["drill"]["last"]["trigger"], "manual");
  EXPECT_EQ(status["drill"]["last"]["result"], "error");
  EXPECT_TRUE(status["drill"]["queued"].is_null());
  EXPECT_EQ(runner.started(), (std::vector<Argv>{backup_argv("incr")})) << "the drill ran a process";
}

// A client's drill still waiting behind a backup when the agent is told to stop: the backup
// gets its grace period and ends, the drill never starts, and the client hears that it was
// abandoned (exit 7), not nothing.
TEST_F(Orchestration, AQueuedClientsDrillIsAbandonedAtShutdown) {
  Replies backup_client;
  runner.expect(backup_argv("full"), exited(0), FakeProcessRunner::Hold::until_released);
  start("run:\n  grace_seconds: 20\n");
  backup(BackupType::full, true, backup_client);
  ASSERT_TRUE(runner.wait_running());
  Replies client;
  DrillCommand command;
  command.arguments.latest = true;
  daemon->drill(command, client.sink());
  ASSERT_TRUE(client.has_event("drill-accepted"));
  daemon->request_stop(SIGTERM);
  advance(5s);  // within the grace period: the backup goes on
  EXPECT_FALSE(daemon->io().stopped());
  EXPECT_FALSE(client.closed) << client.last();
  runner.release();
  ASSERT_TRUE(turn_until([&] { return daemon->io().stopped(); }));
  EXPECT_EQ(backup_client.last()["result"]["outcome"], "succeeded");
  EXPECT_EQ(client.last()["event"], "abandoned") << client.last();
  EXPECT_TRUE(client.closed);
  EXPECT_FALSE(client.has_event("drill-finished"));
  EXPECT_EQ(runner.started(), (std::vector<Argv>{backup_argv("full")}));
}

// schedules.repo2 backs up into repo2 (--repo=2) beside the default repository's schedule, through
// the one queue: due at the same minute, the full into repo2 does not cover the incremental into
// the default repository, so both run, one after the other.
TEST_F(Orchestration, EachRepositorysSchedulesBackUpIntoItThroughTheOneQueue) {
  runner.allow(kInfo, exited(0, kInfoTwoReposJson));
  runner.expect(backup_argv("incr"), exited(0), FakeProcessRunner::Hold::until_released);
  runner.expect(backup_argv("full", 2), exited(0));
  start_with(load_config_text("state_dir: " + dir.path +
                                  "/state\nschedules:\n  timezone: UTC\n  incr: \"0 * * * *\"\n"
                                  "  repo2:\n    full: \"0 * * * *\"\n"
                                  "manual:\n  annotations_file: \"\"\nhttp:\n  listen: \"\"\n",
                              "test.yaml", {}));
  auto status = daemon->status();
  ASSERT_EQ(status["schedules"].size(), 2u);
  EXPECT_TRUE(status["schedules"][0]["repo"].is_null());
  EXPECT_EQ(status["schedules"][1]["repo"], 2);
  EXPECT_EQ(status["schedules"][1]["type"], "full");
  advance(30s);
  ASSERT_TRUE(runner.wait_running());
  status = daemon->status();
  ASSERT_EQ(status["queue"].size(), 1u) << status.dump();
  EXPECT_EQ(status["queue"][0]["repo"], 2);
  EXPECT_EQ(status["queue"][0]["type"], "full");
  runner.release();
  ASSERT_TRUE(turn_until([&] { return daemon->status()["recent"].size() == 2; }));
  EXPECT_EQ(runner.started(), (std::vector<Argv>{backup_argv("incr"), backup_argv("full", 2)}));
  EXPECT_EQ(daemon->status()["recent"][0]["repo"], 2);
  // The default repository's backup is counted under the repository pgBackRest used: info lists
  // one, repo1.
  EXPECT_EQ(daemon->status()["recent"][1]["repo"], 1);
  EXPECT_EQ(sample("agent_backups_total", {"repo=\"2\"", "type=\"full\"", "result=\"succeeded\""}), 1);
  EXPECT_EQ(sample("agent_backups_total", {"repo=\"1\"", "type=\"incr\"", "result=\"succeeded\""}), 1);
}

// A repository pgBackRest does not list is refused in the check step, naming the ones it does,
// and pgBackRest's backup never runs.
TEST_F(Orchestration, ABackupIntoARepositoryPgBackRestDoesNotKnowIsRefusedBeforeItRuns) {
  runner.allow(kInfo, exited(0, kInfoTwoReposJson));
  start();
  Replies manual;
  daemon->backup(BackupCommand{BackupType::full, true, 3}, manual.sink());
  ASSERT_TRUE(turn_until([&] { return manual.has_event("backup-finished"); }));
  const auto result = manual.last()["result"];
  EXPECT_EQ(result["outcome"], "failed");
  EXPECT_EQ(result["exit_code"], exit_code_for(ErrorKind::usage));
  EXPECT_NE(result["message"].get<std::string>().find("repo3 is not configured for stanza 'db' (pgbackrest "
                                                      "info lists repo1, repo2)"),
            std::string::npos)
      << result.dump();
  EXPECT_TRUE(runner.started().empty());
}

// While the agent's backup runs, the collector reads `pgbackrest info` every
// metrics.progress_seconds: the backup lock's size-cplt and size (pgBackRest 2.48+, as 2.56.0
// prints them) go into `agent status` and the metrics, and go when the backup ends. A lock
// without sizes (2.45, or a backup that does not know its size yet) shows no progress.
TEST_F(Orchestration, TheRunningBackupsProgressIsInTheStatusAndTheMetricsUntilItEnds) {
  runner.expect(backup_argv("full"), exited(0), FakeProcessRunner::Hold::until_released);
  start("metrics:\n  progress_seconds: 1\n");
  ASSERT_TRUE(
      turn_until([&] { return sample("agent_repository_info_success", {"repo=\"1\""}).has_value(); }));
  Replies manual;
  backup(BackupType::full, true, manual);
  ASSERT_TRUE(runner.wait_running());
  runner.allow(kInfo, exited(0, R"([{"name": "db", "status": {"code": 0, "message": "ok",
        "lock": {"backup": {"held": true}, "restore": {"held": false}}}, "backup": []}])"));
  // Held without sizes: a read or two later, still nothing to show.
  const auto reads = runner.runs_of(kInfo);
  ASSERT_TRUE(turn_until([&] { return runner.runs_of(kInfo) >= reads + 2; }));
  EXPECT_TRUE(daemon->status()["running"].is_object());
  EXPECT_TRUE(daemon->status()["running"]["progress"].is_null()) << daemon->status()["running"].dump();
  EXPECT_FALSE(sample("agent_backup_progress_bytes", {}).has_value());

  runner.allow(kInfo, exited(0, R"([{"name": "db", "status": {"code": 0, "message": "ok",
        "lock": {"backup": {"held": true, "size": 3159000, "size-cplt": 1435765},
                 "restore": {"held": false}}}, "backup": []}])"));
  ASSERT_TRUE(turn_until([&] { return daemon->status()["running"]["progress"].is_object(); }));
  const auto progress = daemon->status()["running"]["progress"];
  EXPECT_EQ(progress["bytes_done"], 1435765);
  EXPECT_EQ(progress["bytes_total"], 3159000);
  EXPECT_EQ(progress["percent"], 45.4);
  EXPECT_EQ(backup_progress_text(progress), "1.4 MiB of 3.0 MiB (45.4%)");
  EXPECT_EQ(sample("agent_backup_progress_bytes", {"stanza=\"db\"", "repo=\"1\""}), 1435765);
  EXPECT_EQ(sample("agent_backup_progress_total_bytes", {"stanza=\"db\"", "repo=\"1\""}), 3159000);

  runner.allow(kInfo, exited(0, kInfoJson));
  runner.release();
  ASSERT_TRUE(turn_until([&] { return manual.has_event("backup-finished"); }));
  EXPECT_TRUE(daemon->status()["running"].is_null());
  EXPECT_FALSE(sample("agent_backup_progress_bytes", {}).has_value());
  EXPECT_FALSE(sample("agent_backup_progress_total_bytes", {}).has_value());
}

TEST_F(Orchestration, AFailedBackupGoesIntoTheMetricsAndTheStatus) {
  runner.expect(backup_argv("full"), exited(82, "",
                                            {"ERROR: [082]: WAL segment 000000010000000000000007 was not "
                                             "archived before the 60000ms timeout"}));
  start();
  Replies manual;
  backup(BackupType::full, true, manual);
  ASSERT_TRUE(turn_until([&] { return manual.has_event("backup-finished"); }));
  const auto result = manual.last()["result"];
  EXPECT_EQ(result["outcome"], "failed");
  EXPECT_EQ(result["pgbackrest_exit_code"], 82);
  EXPECT_EQ(result["exit_code"], exit_code_for(ErrorKind::external_tool));
  EXPECT_NE(result["message"].get<std::string>().find("was not archived"), std::string::npos);
  EXPECT_EQ(sample("agent_backups_total", {"type=\"full\"", "result=\"failed\""}), 1);
  const double now = std::chrono::duration<double>(time.now().time_since_epoch()).count();
  EXPECT_EQ(sample("agent_backup_last_failure_timestamp_seconds", {"type=\"full\""}), now);
  EXPECT_FALSE(sample("agent_backup_last_success_timestamp_seconds", {"type=\"full\""}).has_value());
}

// `agent dump --stop` with nothing kept is refused with exit 5, and so is one while a dump
// that asked for --keep-running has not yet written its dump (its copy is not up yet).
TEST_F(Orchestration, StoppingAKeptCopyThatIsNotThereIsRefused) {
  start();
  Replies nothing;
  daemon->dump_stop(nothing.sink());
  ASSERT_TRUE(nothing.closed);
  EXPECT_EQ(nothing.last()["event"], "refused") << nothing.last();
  EXPECT_EQ(nothing.last()["exit_code"], 5) << nothing.last();
  EXPECT_NE(nothing.last()["error"].get<std::string>().find("no dump's copy is kept running"),
            std::string::npos);

  // A dump with --keep-running that fails before its copy is up: --stop is refused while it
  // runs, and once it has failed there is nothing to stop.
  Replies client;
  DumpCommand command;
  command.arguments.target = "2026-11-30 10:00:00+00";
  command.arguments.output = dir.path + "/kept.dump";
  command.arguments.keep_running = true;
  daemon->dump(command, client.sink());
  ASSERT_TRUE(client.has_event("dump-accepted"));
  Replies early;
  daemon->dump_stop(early.sink());
  EXPECT_EQ(early.last()["event"], "refused") << early.last();
  ASSERT_TRUE(turn_until([&] { return client.has_event("dump-finished"); }));
  EXPECT_EQ(client.last()["ok"], false) << client.last();
  EXPECT_FALSE(client.has_event("dump-kept"));
  EXPECT_TRUE(daemon->status()["dump"]["last"].is_object());
  Replies late;
  daemon->dump_stop(late.sink());
  EXPECT_EQ(late.last()["exit_code"], 5) << late.last();
}

// A dump that fails (here: the repository holds no backup before the target) leaves its trace
// in the metrics: counted by result, with the time it failed; a success is not claimed.
TEST_F(Orchestration, AFailedDumpIsCountedWithTheTimeItFailed) {
  start();
  EXPECT_EQ(sample("agent_dumps_total", {"result=\"failed\""}), 0);
  EXPECT_EQ(sample("agent_dumps_total", {"result=\"succeeded\""}), 0);
  Replies client;
  DumpCommand command;
  command.arguments.target = "2026-11-30 10:00:00+00";
  command.arguments.output = dir.path + "/out.dump";
  daemon->dump(command, client.sink());
  ASSERT_TRUE(turn_until([&] { return client.has_event("dump-finished"); }));
  EXPECT_EQ(client.last()["ok"], false) << client.last();
  EXPECT_EQ(sample("agent_dumps_total", {"result=\"failed\""}), 1);
  EXPECT_EQ(sample("agent_dumps_total", {"result=\"succeeded\""}), 0);
  const double now = std::chrono::duration<double>(time.now().time_since_epoch()).count();
  EXPECT_EQ(sample("agent_dump_last_failure_timestamp_seconds", {"stanza=\"db\""}), now);
  EXPECT_FALSE(sample("agent_dump_last_completion_timestamp_seconds", {}).has_value());
}

// The alerts compare backup ages with the schedules' intervals: exported per repository and
// type from the cron expressions, with a default-repository schedule under the repository
// pgBackRest uses (info lists repo1) and the age metric's coverage (a full is an incr too).
TEST_F(Orchestration, TheSchedulesIntervalsAreExportedPerRepositoryAndType) {
  start_with(load_config_text("state_dir: " + dir.path +
                                  "/state\nschedules:\n  timezone: America/Vancouver\n"
                                  "  incr: \"*/15 * * * *\"\n  full: \"0 2 * * *\"\n"
                                  "  repo2:\n    full: \"0 3 * * 0\"\n    diff: \"0 3 * * 1-6\"\n"
                                  "manual:\n  annotations_file: \"\"\nhttp:\n  listen: \"\"\n"
                                  "alerts:\n  min_window_hours: 48\n",
                              "test.yaml", {}));
  ASSERT_TRUE(turn_until([&] { return sample("agent_backup_expected_interval_seconds", {}).has_value(); }));
  EXPECT_EQ(sample("agent_backup_expected_interval_seconds", {"repo=\"1\"", "type=\"full\""}), 86400);
  EXPECT_EQ(sample("agent_backup_expected_interval_seconds", {"repo=\"1\"", "type=\"incr\""}), 900);
  EXPECT_EQ(sample("agent_backup_expected_interval_seconds", {"repo=\"2\"", "type=\"full\""}), 7 * 86400);
  EXPECT_EQ(sample("agent_backup_expected_interval_seconds", {"repo=\"2\"", "type=\"diff\""}), 86400);
  EXPECT_EQ(sample("agent_recovery_window_min_seconds", {}), 48 * 3600);
  // `agent status` shows each schedule's next time as its zone reads it.
  bool seen = false;
  const auto status = daemon->status();
  for (const auto& schedule : status["schedules"])
    if (schedule["cron"] == "0 2 * * *") {
      EXPECT_EQ(schedule["next_local"], "2026-12-01 02:00:00 PST") << schedule;
      seen = true;
    }
  EXPECT_TRUE(seen);
}

TEST_F(Orchestration, AStandbySkipsWithItsReasonAndRunsNothing) {
  pg.in_recovery = true;
  start();
  Replies manual;
  backup(BackupType::incr, true, manual);
  ASSERT_TRUE(turn_until([&] { return manual.has_event("backup-finished"); }));
  EXPECT_EQ(manual.last()["result"]["outcome"], "skipped");
  EXPECT_TRUE(runner.started().empty());
  EXPECT_EQ(sample("agent_jobs_skipped_total", {"reason=\"standby\""}), 1);
}

TEST_F(Orchestration, DrainLetsTheRunningBackupFinishAndRefusesNewWork) {
  Replies first;
  stop_during_a_backup(20, first, true);
  Replies late;
  backup(BackupType::incr, false, late);
  ASSERT_TRUE(late.has_event("refused"));
  EXPECT_EQ(late.last()["error"], "the agent is shutting down");
  EXPECT_EQ(late.last()["exit_code"], exit_code_for(ErrorKind::interrupted));
  EXPECT_TRUE(daemon->status()["stopping"].get<bool>());

  advance(19s);  // within the grace period: the job goes on
  EXPECT_FALSE(daemon->io().stopped());
  runner.release();
  ASSERT_TRUE(turn_until([&] { return daemon->io().stopped(); }));
  EXPECT_EQ(first.last()["result"]["outcome"], "succeeded");
  EXPECT_TRUE(exit_codes.empty());
  EXPECT_EQ(sample("agent_jobs_skipped_total", {"reason=\"shutting-down\""}), 1);
}

TEST_F(Orchestration, GraceOverStopsTheBackupAndItsRequestRunsAfterTheRestart) {
  Replies client;
  stop_during_a_backup(20, client, true);
  advance(20s);  // the grace period is over: the job is told to stop, and does
  ASSERT_TRUE(turn_until([&] { return daemon->io().stopped(); }));
  EXPECT_EQ(client.last()["event"], "abandoned");
  EXPECT_TRUE(exit_codes.empty()) << "the hard stop fired for a job that stopped";
  daemon.reset();

  // The request is still in the journal: the next run takes the backup. The history in
  // state_dir still shows the run that was stopped, under the new one.
  runner.expect(backup_argv("full"), exited(0));
  start();
  ASSERT_EQ(daemon->status()["recent"].size(), 1u) << daemon->status()["recent"].dump();
  EXPECT_EQ(daemon->status()["recent"][0]["outcome"], "failed");
  ASSERT_TRUE(turn_until([&] { return daemon->status()["recent"].size() == 2u; }));
  EXPECT_EQ(daemon->status()["recent"][0]["outcome"], "succeeded");
  EXPECT_EQ(daemon->status()["recent"][0]["trigger"], "manual");
  EXPECT_EQ(daemon->status()["recent"][1]["outcome"], "failed");
  EXPECT_TRUE(runner.all_used());
}

TEST_F(Orchestration, AJobThatIgnoresItsStopEndsTheProcessAfterTheHardStop) {
  Replies client;
  stop_during_a_backup(5, client, false, FakeProcessRunner::Hold::ignoring_cancel);
  advance(5s);
  EXPECT_TRUE(exit_codes.empty());
  advance(JobRunner::kHardStopAfter - 1s);
  EXPECT_TRUE(exit_codes.empty()) << "the hard stop fired early";
  advance(1s);
  EXPECT_EQ(exit_codes, std::vector<int>{exit_code_for(ErrorKind::interrupted)});
}

TEST_F(Orchestration, ASecondSignalStopsTheJobWithoutWaitingForTheGracePeriod) {
  Replies client;
  stop_during_a_backup(600, client, true);
  daemon->request_stop(SIGINT);
  ASSERT_TRUE(turn_until([&] { return daemon->io().stopped(); }));
  EXPECT_EQ(client.last()["event"], "abandoned");
  EXPECT_TRUE(exit_codes.empty());
}

TEST_F(Orchestration, ADumpIsRefusedThroughTheSocketWithItsReasonAndExitCode) {
  start();
  const std::string socket = dir.path + "/state/control.sock";
  std::atomic<bool> done{false};
  std::vector<nlohmann::json> lines;
  std::string failure;
  std::thread client([&] {
    auto fd = connect_control_socket(socket);
    if (!fd || !*fd) {
      failure = "cannot connect";
    } else {
      DumpCommand command;
      command.arguments.target = "2026-11-30 10:00:00+00";
      command.arguments.output = "-";
      if (auto sent = send_json_line(**fd, control_request_json(command)); !sent)
        failure = sent.error().message;
      std::string buffer;
      for (;;) {
        auto line = read_json_line(**fd, buffer, 10s);
        if (!line || !*line) break;
        lines.push_back(**line);
      }
      close(**fd);
    }
    done = true;
  });
  const bool finished = turn_until([&] { return done.load(); });
  client.join();
  ASSERT_TRUE(finished);
  ASSERT_EQ(failure, "");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["ok"], false);
  EXPECT_NE(lines[0]["error"].get<std::string>().find("standard output"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0]["exit_code"], exit_code_for(ErrorKind::usage));
  EXPECT_TRUE(daemon->status()["dump"]["running"].is_null());
  EXPECT_TRUE(runner.started().empty());
}

TEST_F(Orchestration, AReloadChangesAScheduleWithoutARestart) {
  start();
  EXPECT_EQ(daemon->status()["schedules"][0]["next"], "2026-11-30T11:00:00Z");
  next_config = config_text("", "30 * * * *");
  daemon->reload("test");
  EXPECT_EQ(daemon->status()["schedules"][0]["next"], "2026-11-30T11:30:00Z");
  EXPECT_EQ(sample("agent_config_last_reload_success", {}), 1);
  // The old schedule no longer fires; the new one does.
  runner.expect(backup_argv("incr"), exited(0));
  advance(30s);
  EXPECT_TRUE(runner.started().empty()) << "the replaced schedule fired";
  advance(30min);
  ASSERT_TRUE(turn_until([&] { return !daemon->status()["recent"].empty(); }));
  EXPECT_EQ(daemon->status()["recent"][0]["trigger"], "schedule");
}

TEST_F(Orchestration, ABrokenOrRestartOnlyReloadKeepsTheRunningConfigAndSaysWhy) {
  start();
  next_config = config_text("", "61 * * * *");  // no such minute
  ASSERT_FALSE(next_config.issues.empty());
  daemon->reload("test");
  EXPECT_EQ(daemon->status()["schedules"][0]["next"], "2026-11-30T11:00:00Z");
  EXPECT_EQ(sample("agent_config_last_reload_success", {}), 0);

  next_config = config_text("", "30 * * * *");
  ASSERT_TRUE(next_config.issues.empty());
  next_config.config.http.listen = "127.0.0.1:9999";  // only at a restart
  daemon->reload("test");
  EXPECT_EQ(daemon->status()["schedules"][0]["next"], "2026-11-30T11:00:00Z") << "a half-applied reload";
  EXPECT_EQ(sample("agent_config_last_reload_success", {}), 0);

  next_config = config_text("", "30 * * * *");  // fixed: applies
  daemon->reload("test");
  EXPECT_EQ(daemon->status()["schedules"][0]["next"], "2026-11-30T11:30:00Z");
  EXPECT_EQ(sample("agent_config_last_reload_success", {}), 1);
}

TEST_F(Orchestration, ABackupLockHeldByAnotherProcessIsWaitedForAndCounted) {
  const std::vector<std::string> held = {
      "ERROR: [050]: unable to acquire lock on file '/tmp/pgbackrest/db-backup.lock'"};
  runner.expect(backup_argv("full"), exited(50, "", held));
  runner.expect(backup_argv("full"), exited(50, "", held));
  runner.expect(backup_argv("full"), exited(0));
  start();
  Replies manual;
  backup(BackupType::full, true, manual);
  ASSERT_TRUE(turn_until([&] { return manual.has_event("backup-finished"); }));
  EXPECT_EQ(manual.last()["result"]["outcome"], "succeeded");
  EXPECT_TRUE(runner.all_used());
  EXPECT_EQ(sample("agent_backup_lock_waits_total", {}), 2);
}

TEST_F(Orchestration, ABackupLockHeldPastTheWaitFailsNamingTheLock) {
  const std::vector<std::string> held = {
      "ERROR: [050]: unable to acquire lock on file '/tmp/pgbackrest/db-backup.lock'"};
  // 15 + 30 s fit in 60 s; the next pause (60 s) does not: three runs, then it fails.
  for (int i = 0; i < 3; ++i) runner.expect(backup_argv("full"), exited(50, "", held));
  start("pgbackrest:\n  lock_wait_seconds: 60\n");
  Replies manual;
  backup(BackupType::full, true, manual);
  ASSERT_TRUE(turn_until([&] { return manual.has_event("backup-finished"); }));
  EXPECT_EQ(manual.last()["result"]["outcome"], "failed");
  EXPECT_EQ(manual.last()["result"]["pgbackrest_exit_code"], 50);
  EXPECT_NE(manual.last()["result"]["message"].get<std::string>().find("unable to acquire lock"),
            std::string::npos);
  EXPECT_TRUE(runner.all_used());
  EXPECT_EQ(sample("agent_backup_lock_waits_total", {}), 2);
}

// PGO's layout: the repository is on a repository host (repo1-host in conf.d). pgBackRest
// before 2.55 backs up only there, so the schedules are refused at start with the reason
// instead of failing with [072] on every tick; 2.55 and later back up from here.
TEST_F(Orchestration, SchedulesAreRefusedWherePgBackRestCannotBackUp) {
  const std::string config_path = dir.path + "/etc/pgbackrest";
  std::filesystem::create_directories(config_path + "/conf.d");
  std::ofstream(config_path + "/conf.d/pgbackrest_instance.conf")
      << "[global]\nrepo1-host = repo-host-0\nrepo1-host-type = tls\n[db]\npg1-path = /pgdata/pg15\n";
  const Argv info_245 = {"pgbackrest-2.45", "--config-path=" + config_path, "--stanza=db",
                         "--output=json",   "--log-level-console=warn",     "info"};
  runner.allow(info_245, exited(0, kInfoJson));
  runner.allow({"pgbackrest-2.45", "version"}, exited(0, "pgBackRest 2.45\n"));
  start("pgbackrest:\n  bin: pgbackrest-2.45\n  config_path: " + config_path + "\n");
  auto status = daemon->status();
  EXPECT_TRUE(status["schedules"].empty()) << status.dump();
  ASSERT_TRUE(status["schedules_refused"].is_string()) << status.dump();
  const std::string reason = status["schedules_refused"];
  EXPECT_NE(reason.find("pgBackRest 2.45"), std::string::npos) << reason;
  EXPECT_NE(reason.find("repo1-host is repo-host-0"), std::string::npos) << reason;
  EXPECT_EQ(sample("agent_component_ok", {"component=\"schedules\""}), 0);
  advance(1h);  // nothing fires: a run would be an unexpected argv
  EXPECT_TRUE(runner.started().empty());

  // The same layout with pgBackRest 2.56.0 (the setup's `pgbackrest version`): armed.
  daemon.reset();
  const Argv info_256 = {"pgbackrest",    "--config-path=" + config_path, "--stanza=db",
                         "--output=json", "--log-level-console=warn",     "info"};
  runner.allow(info_256, exited(0, kInfoJson));
  start("pgbackrest:\n  config_path: " + config_path + "\n");
  status = daemon->status();
  EXPECT_TRUE(status["schedules_refused"].is_null()) << status.dump();
  ASSERT_EQ(status["schedules"].size(), 1u);
  EXPECT_EQ(sample("agent_component_ok", {"component=\"schedules\""}), 1);
}

}  // namespace
}  // namespace agent::testing
