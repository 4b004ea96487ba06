// `agent run` as a child process against a real PostgreSQL 15 and pgBackRest repository:
// annotation-triggered and manual backups through one queue, the control socket, standbys,
// and SIGTERM. Schedules (time) are tested on a fake clock: tests/unit/daemon_orchestration_test.cpp.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "harness.hpp"

namespace agent::testing {
namespace {

class DaemonIntegration : public ClusterSuite<DaemonIntegration> {
 public:
  static constexpr int kBulkMb = 96;  // makes a full backup slow enough to be interrupted

 protected:
  // An `agent run` config for the test cluster; `extra` adds YAML sections.
  // The text of an `agent run` config for the test cluster; `extra` adds YAML sections.
  static std::string config_text(const std::string& dir, const std::string& extra,
                                 const std::string& host = "", const std::string& port = "",
                                 int http_port = 0) {
    return "stanza: db\nstate_dir: " + dir +
           "/state\npgbackrest:\n  config: " + cluster_->get("PGBACKREST_CONFIG") +
           "\npostgres:\n  bindir: " + cluster_->get("BINDIR") + "\n  data: " + cluster_->get("DATA") +
           "\n  host: " + (host.empty() ? cluster_->get("SOCKET_DIR") : host) +
           "\n  port: " + (port.empty() ? cluster_->get("PORT") : port) +
           "\n  user: postgres\ncontrol:\n  socket: " + dir +
           "/agent.sock\n"
           // A free loopback port, not the default 0.0.0.0:9451 that something else may hold.
           "http:\n  listen: 127.0.0.1:" +
           std::to_string(http_port > 0 ? http_port : free_port()) + "\n" + extra;
  }
  // An `agent run` config file for the test cluster, in a directory of its own.
  static std::string run_config(const std::string& name, const std::string& extra,
                                const std::string& host = "", const std::string& port = "") {
    const std::string dir = cluster_->dir() + "/" + name;
    mkdir(dir.c_str(), 0700);
    const std::string path = dir + "/agent.yaml";
    write_file(path, config_text(dir, extra, host, port));
    return path;
  }

  static std::size_t count(const std::vector<BackupRecord>& backups, const std::string& type) {
    return static_cast<std::size_t>(
        std::count_if(backups.begin(), backups.end(), [&](const BackupRecord& b) { return b.type == type; }));
  }

  static nlohmann::json status_of(const std::string& config) {
    const auto run = run_agent({"status", "--json", "--config", config});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    auto parsed = nlohmann::json::parse(run.stdout_text, nullptr, false);
    return parsed.is_discarded() ? nlohmann::json::object() : parsed;
  }
};

TEST_F(DaemonIntegration, AnnotationValueTriggersExactlyOneFullBackup) {
  const std::string podinfo = cluster_->dir() + "/podinfo";
  const std::string key = "postgres-operator.crunchydata.com/pgbackrest-backup";
  // Present before the agent first starts: not a request (the operator's contract is "a new value").
  write_annotations_like_kubelet(podinfo, key + "=\"Mon Nov 23 09:00:00 PST 2026\"\nother=\"x\"\n");
  const std::string config =
      run_config("annotation", "manual:\n  annotations_file: " + podinfo + "/annotations\n");
  const auto fulls_before = count(cluster_->backups(), "full");
  {
    RunningAgent agent(config);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_EQ(count(cluster_->backups(), "full"), fulls_before)
        << "the value present at first start triggered";

    write_annotations_like_kubelet(podinfo,
                                   key + "=\"Mon Nov 23 10:00:00 PST 2026 \\\"manual\\\"\"\nother=\"x\"\n");
    EXPECT_TRUE(eventually([&] { return count(cluster_->backups(), "full") == fulls_before + 1; },
                           std::chrono::seconds(90)))
        << agent.log();
    // The job is over once the agent has recorded it (the repository shows the backup while
    // pgBackRest still expires old ones).
    EXPECT_TRUE(eventually([&] { return status_of(config)["recent"].size() == 1; }, std::chrono::seconds(30)))
        << agent.log();
    // The same value again, in a new kubelet generation: nothing.
    write_annotations_like_kubelet(podinfo,
                                   key + "=\"Mon Nov 23 10:00:00 PST 2026 \\\"manual\\\"\"\nother=\"y\"\n");
    std::this_thread::sleep_for(std::chrono::seconds(3));
    EXPECT_EQ(count(cluster_->backups(), "full"), fulls_before + 1);
    const auto status = status_of(config);
    ASSERT_TRUE(status.contains("recent")) << status.dump();
    ASSERT_EQ(status["recent"].size(), 1u) << status.dump();
    EXPECT_EQ(status["recent"][0]["trigger"], "annotation");
    EXPECT_EQ(status["recent"][0]["outcome"], "succeeded");
    EXPECT_TRUE(status["queue"].empty() && status["running"].is_null()) << status.dump();
  }
  // A restart sees the handled value in its state and does nothing.
  RunningAgent restarted(config);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_EQ(count(cluster_->backups(), "full"), fulls_before + 1) << restarted.log();
}

// When schedules fire is tested on a fake clock (Orchestration.*); here two real requests
// meet in the queue: a full asked for while an incremental runs waits its turn instead of
// colliding with pgBackRest's lock.
TEST_F(DaemonIntegration, RequestsShareOneQueueAndNeverMeetAtPgBackRestsLock) {
  const std::string config = run_config("queue", "manual:\n  annotations_file: \"\"\n");
  RunningAgent agent(config);
  const auto incr = run_agent({"backup", "--type", "incr", "--config", config});
  ASSERT_EQ(incr.exit_code, 0) << incr.stderr_text;
  ASSERT_TRUE(eventually([&] { return status_of(config)["running"].is_object(); }, std::chrono::seconds(30)))
      << agent.log();
  const auto manual = run_agent({"backup", "--type", "full", "--wait", "--config", config});
  EXPECT_EQ(manual.exit_code, 0) << manual.stderr_text;
  EXPECT_NE(manual.stderr_text.find("succeeded"), std::string::npos) << manual.stderr_text;

  const auto status = status_of(config);
  ASSERT_EQ(status["recent"].size(), 2u) << status.dump();
  for (const auto& result : status["recent"]) EXPECT_EQ(result["outcome"], "succeeded") << result.dump();
  EXPECT_EQ(agent.log().find("[050]"), std::string::npos) << "a backup hit pgBackRest's lock";
  // The full started after the incremental stopped.
  const auto after = cluster_->backups();
  ASSERT_GE(after.size(), 2u);
  const auto& last = after.back();
  EXPECT_EQ(last.type, "full");
  EXPECT_EQ(after[after.size() - 2].type, "incr");
  EXPECT_GE(last.start_epoch, after[after.size() - 2].stop_epoch);
}

TEST_F(DaemonIntegration, StandbySkipsItsBackupWithAReason) {
  // A streaming replica of the test cluster.
  const std::string standby = cluster_->dir() + "/standby";
  auto runner = make_posix_process_runner();
  ProcessSpec basebackup;
  basebackup.argv = {cluster_->get("BINDIR") + "/pg_basebackup",
                     "-h",
                     cluster_->get("SOCKET_DIR"),
                     "-p",
                     cluster_->get("PORT"),
                     "-U",
                     "postgres",
                     "-D",
                     standby,
                     "-R",
                     "-X",
                     "stream",
                     "--tablespace-mapping=" + cluster_->get("TABLESPACE_DIR") + "=" + standby + "-ts1"};
  basebackup.tag = "pg_basebackup";
  auto copied = runner->run(basebackup, CancelToken::never());
  ASSERT_TRUE(copied.ok() && copied->succeeded()) << (copied.ok() ? copied->error_excerpt(5) : "");
  PortHolder reserve;
  const int port = reserve.port();
  const std::string socket_dir = standby + "-run";
  mkdir(socket_dir.c_str(), 0700);
  ProcessSpec server;
  server.argv = {cluster_->get("BINDIR") + "/postgres",
                 "-D",
                 standby,
                 "-c",
                 "port=" + std::to_string(port),
                 "-c",
                 "listen_addresses=",
                 "-c",
                 "unix_socket_directories=" + socket_dir,
                 "-c",
                 "archive_mode=off"};
  server.tag = "standby";
  auto started = runner->start(server);
  ASSERT_TRUE(started.ok());
  // Accepting connections, not only listening: a backup asked for while the standby still says
  // "the database system is starting up" is skipped as server-unreachable, not as a standby.
  ASSERT_TRUE(eventually(
      [&] {
        ProcessSpec ready;
        ready.argv = {
            cluster_->get("BINDIR") + "/pg_isready", "-q", "-h", socket_dir, "-p", std::to_string(port)};
        ready.tag = "pg_isready";
        auto answered = runner->run(ready, CancelToken::never());
        return answered.ok() && answered->succeeded();
      },
      std::chrono::seconds(30)));

  const std::string config =
      run_config("standby-agent", "manual:\n  annotations_file: \"\"\n", socket_dir, std::to_string(port));
  const auto before = cluster_->backups().size();
  {
    RunningAgent agent(config);
    const auto requested = run_agent({"backup", "--type", "incr", "--config", config});
    ASSERT_EQ(requested.exit_code, 0) << requested.stderr_text;
    ASSERT_TRUE(eventually(
        [&] {
          const auto status = status_of(config);
          return status.contains("skipped") && status["skipped"].value("standby", 0) >= 1;
        },
        std::chrono::seconds(90)))
        << agent.log();
    EXPECT_TRUE(agent.log_contains("this server is a standby; only the primary backs up")) << agent.log();
  }
  EXPECT_EQ(cluster_->backups().size(), before);
  started.value()->stop(SIGINT, std::chrono::seconds(30));
}

TEST_F(DaemonIntegration, DumpThroughTheRunningAgent) {
  const std::string config = run_config("dump-agent", "manual:\n  annotations_file: \"\"\n");
  const std::string output = cluster_->get("OUTPUT_DIR") + "/through-agent.sql";
  RunningAgent agent(config);
  const auto run =
      run_agent({"dump", "--config", config, "--target", cluster_->target(), "--database", "api", "--output",
                 output, "--scratch", cluster_->get("SCRATCH"), "--port", cluster_->get("SCRATCH_PORT")});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text << agent.log();
  EXPECT_NE(run.stderr_text.find("the running agent took the dump"), std::string::npos) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("verify: done"), std::string::npos) << run.stderr_text;
  expect_rows_at_target(read_file(output));
  EXPECT_TRUE(file_exists(output + ".manifest.json"));
  EXPECT_TRUE(processes_matching(cluster_->get("SCRATCH") + "/").empty());
  const auto status = status_of(config);
  ASSERT_TRUE(status["dump"]["last"].is_object()) << status.dump();
  EXPECT_TRUE(status["dump"]["last"]["outcome"]["ok"].get<bool>());
  // Bad input is refused by the agent too, with the documented exit code.
  const auto refused = run_agent({"dump", "--config", config, "--target", "2999-01-01 00:00:00+00",
                                  "--output", cluster_->get("OUTPUT_DIR") + "/never.sql", "--scratch",
                                  cluster_->get("SCRATCH"), "--port", cluster_->get("SCRATCH_PORT")});
  EXPECT_EQ(refused.exit_code, 3) << refused.stderr_text;
  EXPECT_FALSE(file_exists(cluster_->get("OUTPUT_DIR") + "/never.sql"));
}

// The entries of a directory tree below `root`, as paths relative to it.
std::set<std::string> tree(const std::string& root) {
  std::set<std::string> entries;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    entries.insert(std::filesystem::relative(it->path(), root).string());
  return entries;
}

// psql -At on a kept copy, as a person would connect to it.
ProcessResult psql_on(const std::string& bindir, const std::string& socket_dir, int port,
                      const std::string& sql) {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {bindir + "/psql",     "-X", "-A",       "-t", "-h",  socket_dir, "-p",
               std::to_string(port), "-U", "postgres", "-d", "api", "-c",       sql};
  spec.tag = "psql";
  spec.stdout_mode = StdoutMode::capture;
  auto result = runner->run(spec, CancelToken::never());
  EXPECT_TRUE(result.ok()) << sql;
  return result.ok() ? *result : ProcessResult{};
}

// `agent dump --keep-running` through the agent: the dump is written, the client returns, and
// the paused copy answers psql on its private socket as of the target, in recovery, until
// `agent dump --stop`; then nothing of it runs, the scratch directory is as a plain dump leaves
// it, and the live repository's archive has no new file. A second kept copy ends at its deadline.
TEST_F(DaemonIntegration, AKeptCopyAnswersPsqlUntilStoppedAndLeavesNothingBehind) {
  const std::string config = run_config("keep-running", "manual:\n  annotations_file: \"\"\n");
  const std::string scratch = cluster_->get("SCRATCH");
  const std::string out = cluster_->get("OUTPUT_DIR");
  RunningAgent agent(config);
  const auto dump_args = [&](const std::string& output, std::vector<std::string> more) {
    std::vector<std::string> args = {"dump",
                                     "--config",
                                     config,
                                     "--target",
                                     cluster_->target(),
                                     "--database",
                                     "api",
                                     "--output",
                                     output,
                                     "--scratch",
                                     scratch,
                                     "--port",
                                     cluster_->get("SCRATCH_PORT")};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  // What a plain dump leaves in the scratch directory, for comparison.
  const auto plain = run_agent(dump_args(out + "/keep-plain.sql", {}));
  ASSERT_EQ(plain.exit_code, 0) << plain.stderr_text << agent.log();
  const auto plain_tree = tree(scratch);
  const auto archive_before = cluster_->archive_files();

  // Bad input is refused before anything is written.
  const auto bad =
      run_agent(dump_args(out + "/keep-bad.sql", {"--keep-running", "--keep-for", "ten minutes"}));
  EXPECT_EQ(bad.exit_code, 2) << bad.stderr_text;
  EXPECT_NE(bad.stderr_text.find("is not a duration"), std::string::npos) << bad.stderr_text;
  EXPECT_FALSE(file_exists(out + "/keep-bad.sql"));
  const auto nothing = run_agent({"dump", "--config", config, "--stop"});
  EXPECT_EQ(nothing.exit_code, 5) << nothing.stderr_text;
  EXPECT_NE(nothing.stderr_text.find("no dump's copy is kept running"), std::string::npos)
      << nothing.stderr_text;

  const std::string output = out + "/keep.sql";
  const auto kept = run_agent(dump_args(output, {"--keep-running"}));
  ASSERT_EQ(kept.exit_code, 0) << kept.stderr_text << agent.log();
  expect_rows_at_target(read_file(output));
  EXPECT_NE(kept.stderr_text.find("psql -h " + scratch + "/run -p " + cluster_->get("SCRATCH_PORT") +
                                  " -U postgres -d api"),
            std::string::npos)
      << kept.stderr_text;
  EXPECT_NE(kept.stderr_text.find("oc exec -it "), std::string::npos) << kept.stderr_text;
  auto status = status_of(config);
  const auto& shown = status["dump"]["running"]["kept"];
  ASSERT_TRUE(shown.is_object()) << status.dump(2);
  EXPECT_EQ(shown["socket_dir"], scratch + "/run");
  EXPECT_FALSE(shown["until"].get<std::string>().empty());
  const auto text_status = run_agent({"status", "--config", config});
  EXPECT_NE(text_status.stdout_text.find("kept running since"), std::string::npos) << text_status.stdout_text;

  // A person's psql, as the log says: the rows as of the target, in recovery, paused.
  const auto copy_query = [&](const std::string& sql) {
    return psql_on(cluster_->get("BINDIR"), shown["socket_dir"].get<std::string>(), shown["port"].get<int>(),
                   sql);
  };
  const auto rows =
      copy_query("SELECT count(*), min(id), max(id), string_agg(DISTINCT phase, ',') FROM events");
  ASSERT_TRUE(rows.succeeded()) << rows.error_excerpt(5);
  EXPECT_EQ(rows.stdout_text, "100|1|100|before\n");
  const auto recovery = copy_query("SELECT pg_is_in_recovery(), pg_get_wal_replay_pause_state()");
  EXPECT_EQ(recovery.stdout_text, "t|paused\n");
  // Only its private socket: no TCP listener.
  EXPECT_EQ(copy_query("SHOW listen_addresses").stdout_text, "\n");

  // The scratch slot is taken: another dump is refused, saying until when and how to stop it.
  const auto other = run_agent(dump_args(out + "/keep-other.sql", {}));
  EXPECT_EQ(other.exit_code, 5) << other.stderr_text;
  EXPECT_NE(other.stderr_text.find("kept running for inspection until"), std::string::npos)
      << other.stderr_text;
  EXPECT_NE(other.stderr_text.find("agent dump --stop"), std::string::npos) << other.stderr_text;

  const auto stop = run_agent({"dump", "--config", config, "--stop"});
  ASSERT_EQ(stop.exit_code, 0) << stop.stderr_text << agent.log();
  EXPECT_NE(stop.stderr_text.find("stopped the kept copy"), std::string::npos) << stop.stderr_text;
  EXPECT_TRUE(processes_matching(scratch + "/").empty());
  EXPECT_EQ(tree(scratch), plain_tree);
  EXPECT_EQ(cluster_->archive_files(), archive_before);
  status = status_of(config);
  EXPECT_TRUE(status["dump"]["running"].is_null()) << status.dump(2);
  EXPECT_TRUE(status["dump"]["last"]["outcome"]["ok"].get<bool>()) << status.dump(2);
  expect_rows_at_target(read_file(output));
  EXPECT_TRUE(agent.log_contains("stopping the kept copy: agent dump --stop")) << agent.log();

  // The deadline stops it by itself.
  const auto short_kept =
      run_agent(dump_args(out + "/keep-short.sql", {"--keep-running", "--keep-for", "10s"}));
  ASSERT_EQ(short_kept.exit_code, 0) << short_kept.stderr_text << agent.log();
  EXPECT_FALSE(processes_matching(scratch + "/").empty());
  EXPECT_TRUE(
      eventually([&] { return status_of(config)["dump"]["running"].is_null(); }, std::chrono::seconds(60)))
      << agent.log();
  EXPECT_TRUE(agent.log_contains("stopping the kept copy: its deadline")) << agent.log();
  EXPECT_TRUE(processes_matching(scratch + "/").empty());
  EXPECT_EQ(tree(scratch), plain_tree);
  EXPECT_EQ(cluster_->archive_files(), archive_before);

  // SIGTERM of `agent run` stops a kept copy as its drain stops any dump: at once, cleaned up.
  const auto last = run_agent(dump_args(out + "/keep-term.sql", {"--keep-running"}));
  ASSERT_EQ(last.exit_code, 0) << last.stderr_text << agent.log();
  EXPECT_FALSE(processes_matching(scratch + "/").empty());
  const auto ended = agent.process().stop(SIGTERM, std::chrono::seconds(30));
  EXPECT_EQ(ended.exit_code, 0) << ended.describe() << agent.log();
  EXPECT_TRUE(agent.log_contains("stopping the kept copy: a signal")) << agent.log();
  EXPECT_TRUE(processes_matching(scratch + "/").empty());
  EXPECT_EQ(tree(scratch), plain_tree);
  EXPECT_EQ(cluster_->archive_files(), archive_before);
}

// Without a running agent the command holds the kept copy itself: `agent dump --stop` cannot
// reach it and says how to stop it; Ctrl-C (SIGINT) stops the copy, cleans up, and the command
// exits 0 with its dump written.
TEST_F(DaemonIntegration, WithoutAnAgentTheCommandHoldsTheKeptCopyUntilCtrlC) {
  const std::string config = run_config("keep-direct", "manual:\n  annotations_file: \"\"\n");
  const std::string scratch = cluster_->get("SCRATCH");
  const std::string output = cluster_->get("OUTPUT_DIR") + "/keep-direct.sql";
  std::atomic<bool> up{false};
  auto command = start_agent(
      {"dump", "--config", config, "--target", cluster_->target(), "--database", "api", "--output", output,
       "--scratch", scratch, "--port", cluster_->get("SCRATCH_PORT"), "--keep-running", "--keep-for", "5m"},
      [&](std::string_view line) {
        if (line.find("stays up for inspection") != std::string_view::npos) up = true;
      });
  ASSERT_TRUE(command.ok());
  ASSERT_TRUE(eventually([&] { return up.load(); }, std::chrono::seconds(120)));
  expect_rows_at_target(read_file(output));
  const auto rows =
      psql_on(cluster_->get("BINDIR"), scratch + "/run", std::stoi(cluster_->get("SCRATCH_PORT")),
              "SELECT count(*), pg_is_in_recovery() FROM events");
  EXPECT_EQ(rows.stdout_text, "100|t\n") << rows.error_excerpt(5);
  const auto stop = run_agent({"dump", "--config", config, "--stop"});
  EXPECT_EQ(stop.exit_code, 5) << stop.stderr_text;
  EXPECT_NE(stop.stderr_text.find("Ctrl-C"), std::string::npos) << stop.stderr_text;
  EXPECT_FALSE(processes_matching(scratch + "/").empty());

  kill(command.value()->pid(), SIGINT);
  const auto ended = command.value()->wait(CancelToken::never(), std::chrono::seconds(60));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->exit_code, 0) << ended->describe();
  EXPECT_TRUE(processes_matching(scratch + "/").empty());
  EXPECT_FALSE(file_exists(scratch + "/data/PG_VERSION"));
  expect_rows_at_target(read_file(output));
}

TEST_F(DaemonIntegration, JobCarriesOnWhenTheClientDisconnects) {
  const std::string config = run_config("disconnect", "manual:\n  annotations_file: \"\"\n");
  RunningAgent agent(config);
  const auto fulls_before = count(cluster_->backups(), "full");
  std::atomic<bool> accepted{false};
  auto client =
      start_agent({"backup", "--type", "full", "--wait", "--config", config}, [&](std::string_view line) {
        if (line.find("job ") != std::string_view::npos && line.find("queued") != std::string_view::npos)
          accepted = true;
      });
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(eventually([&] { return accepted.load(); }, std::chrono::seconds(20)));
  // A dropped `oc exec`: the client dies without a word.
  kill(client.value()->pid(), SIGKILL);
  client.value()->wait(CancelToken::never(), std::chrono::seconds(10));
  // The job is over when the agent has recorded it: the backup shows in the repository a
  // moment earlier, while pgBackRest still expires old ones.
  nlohmann::json status;
  EXPECT_TRUE(eventually(
      [&] {
        status = status_of(config);
        return !status["recent"].empty();
      },
      std::chrono::seconds(90)))
      << agent.log();
  ASSERT_FALSE(status["recent"].empty()) << status.dump();
  EXPECT_EQ(status["recent"][0]["trigger"], "manual");
  EXPECT_EQ(status["recent"][0]["outcome"], "succeeded");
  EXPECT_EQ(count(cluster_->backups(), "full"), fulls_before + 1);
}

TEST_F(DaemonIntegration, SigtermDuringABackupEndsWithinTheGracePeriod) {
  const std::string config =
      run_config("sigterm", "manual:\n  annotations_file: \"\"\nrun:\n  grace_seconds: 1\n");
  RunningAgent agent(config);
  const auto queued = run_agent({"backup", "--type", "full", "--config", config});
  ASSERT_EQ(queued.exit_code, 0) << queued.stderr_text;
  const std::string pgbackrest_config = cluster_->get("PGBACKREST_CONFIG");
  ASSERT_TRUE(eventually(
      [&] {
        for (auto pid : processes_matching(pgbackrest_config)) {
          const std::string cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
          if (cmdline.find("backup") != std::string::npos &&
              cmdline.find("archive-push") == std::string::npos)
            return true;
        }
        return false;
      },
      std::chrono::seconds(30)))
      << agent.log();
  const auto begin = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(agent.process().pid(), SIGTERM), 0);
  auto result = agent.process().wait(CancelToken::never(), std::chrono::seconds(30));
  ASSERT_TRUE(result.has_value()) << "the agent did not stop";
  EXPECT_EQ(result->exit_code, 0) << agent.log();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(15));
  EXPECT_TRUE(eventually(
      [&] {
        for (auto pid : processes_matching(pgbackrest_config)) {
          const std::string cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
          if (cmdline.find("archive-push") == std::string::npos) return false;
        }
        return true;
      },
      std::chrono::seconds(5)))
      << "a pgBackRest backup process outlived the agent";
  EXPECT_TRUE(agent.log_contains("grace period over")) << agent.log();
}

}  // namespace
}  // namespace agent::testing

namespace agent::testing {
namespace {

// The config as PGO's ConfigMap volume delivers it: edited through the kubelet's `..data`
// swap, it is applied without a restart; a broken edit is refused and the running one stays.
TEST_F(DaemonIntegration, AConfigEditedLikeTheKubeletChangesTheScheduleWithoutARestart) {
  const std::string dir = cluster_->dir() + "/configmap";
  mkdir(dir.c_str(), 0700);
  const std::string settings = "manual:\n  annotations_file: \"\"\nschedules:\n  incr: ";
  const int http_port = free_port();  // the same in every edit: http.listen changes only at a restart
  const std::string state = cluster_->dir() + "/configmap-state";
  mkdir(state.c_str(), 0700);
  write_like_kubelet(dir, "agent.yaml", config_text(state, settings + "\"0 3 * * *\"\n", "", "", http_port));
  const std::string config = dir + "/agent.yaml";
  RunningAgent agent(config);
  // `agent status` reads the config for the socket's path: a copy that stays valid.
  const std::string client = state + "/client.yaml";
  write_file(client, config_text(state, settings + "\"0 3 * * *\"\n", "", "", http_port));
  const auto cron = [&] {
    const auto status = status_of(client);
    return status.contains("schedules") && !status["schedules"].empty()
               ? status["schedules"][0].value("cron", "")
               : std::string();
  };
  ASSERT_TRUE(eventually([&] { return cron() == "0 3 * * *"; }, std::chrono::seconds(20))) << agent.log();

  write_like_kubelet(dir, "agent.yaml", config_text(state, settings + "\"0 4 * * *\"\n", "", "", http_port));
  EXPECT_TRUE(eventually([&] { return cron() == "0 4 * * *"; }, std::chrono::seconds(30))) << agent.log();
  EXPECT_TRUE(agent.log_contains("the config file changed: config reloaded")) << agent.log();

  write_like_kubelet(dir, "agent.yaml", config_text(state, settings + "\"every hour\"\n", "", "", http_port));
  EXPECT_TRUE(
      eventually([&] { return agent.log_contains("the config was not reloaded"); }, std::chrono::seconds(30)))
      << agent.log();
  EXPECT_EQ(cron(), "0 4 * * *");

  // SIGHUP reads it again at once.
  write_like_kubelet(dir, "agent.yaml", config_text(state, settings + "\"0 5 * * *\"\n", "", "", http_port));
  ASSERT_EQ(kill(agent.process().pid(), SIGHUP), 0);
  EXPECT_TRUE(eventually([&] { return cron() == "0 5 * * *"; }, std::chrono::seconds(10))) << agent.log();
  EXPECT_FALSE(agent.process().poll().has_value()) << "the agent restarted or ended";
}

}  // namespace
}  // namespace agent::testing
