// `agent dump` against a real PostgreSQL 15 and a real pgBackRest repository, read like the
// runbook: rows written before the target are in the dump, rows written after it are not.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "exec/process.hpp"
#include "harness.hpp"
#include "pg/copy_session.hpp"
#include "pg/session.hpp"
#include "pipelines/dump_preflight.hpp"
#include "time/target_time.hpp"

namespace agent::testing {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitTargetWindow = 3;
constexpr int kExitEnvironment = 5;
constexpr int kExitInterrupted = 7;

class DumpIntegration : public ClusterSuite<DumpIntegration> {
 public:
  static constexpr int kBulkMb = 96;  // makes pg_dump take long enough to be interrupted mid-way

 protected:
  static std::vector<std::string> dump_args(const std::string& target, const std::string& output,
                                            const std::string& scratch) {
    return {"dump",      "--config", cluster_->get("AGENT_CONFIG"), "--target", target, "--output", output,
            "--scratch", scratch};
  }

  // The checksum in the manifest, "xxh128:HEX", must be what xxh128sum (or sha256sum) says.
  static void expect_checksum_matches(const std::string& output, const std::string& algorithm) {
    const auto manifest = nlohmann::json::parse(read_file(output + ".manifest.json"));
    const std::string recorded = manifest["dump"]["checksum"].get<std::string>();
    ASSERT_EQ(recorded.rfind(algorithm + ":", 0), 0u) << recorded;
    auto runner = make_posix_process_runner();
    ProcessSpec spec;
    spec.argv = {algorithm + "sum", output};
    spec.stdout_mode = StdoutMode::capture;
    auto tool = runner->run(spec, CancelToken::never());
    ASSERT_TRUE(tool.ok() && tool->succeeded()) << spec.argv[0];
    EXPECT_EQ(algorithm + ":" + tool->stdout_text.substr(0, tool->stdout_text.find(' ')), recorded);
  }

  // A copy of the cluster's agent config with `settings` (indented YAML lines) under dump:.
  static std::string config_with_dump_settings(const std::string& name, const std::string& settings) {
    std::string config = read_file(cluster_->get("AGENT_CONFIG"));
    const auto at = config.find("\ndump:\n");
    EXPECT_NE(at, std::string::npos);
    config.insert(at + 7, settings);
    const std::string path = cluster_->dir() + "/" + name;
    write_file(path, config);
    return path;
  }

  // Waits until OUTPUT.partial holds more than `min_bytes`, then stops the agent as Kubernetes
  // would (SIGTERM) and checks that it ended as interrupted, leaving no dump, no partial file
  // and no process on the scratch path.
  // What a started agent logs: appended by the runner's reader thread, read by the test.
  class LoggedLines {
   public:
    std::function<void(std::string_view)> sink() {
      return [this](std::string_view line) {
        std::lock_guard lock(mutex_);
        text_.append(line).push_back('\n');
      };
    }
    std::string text() {
      std::lock_guard lock(mutex_);
      return text_;
    }

   private:
    std::mutex mutex_;
    std::string text_;
  };

  static void interrupt_mid_dump(RunningProcess& agent, const std::string& output, const std::string& scratch,
                                 off_t min_bytes, LoggedLines& logged) {
    const std::string partial = output + ".partial";
    bool dumping = false;
    for (int i = 0; i < 6000 && !dumping && !agent.poll(); ++i) {
      struct stat st {};
      dumping = stat(partial.c_str(), &st) == 0 && st.st_size > min_bytes;
      if (!dumping) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_TRUE(dumping) << "the dump finished or failed before it could be interrupted:\n" << logged.text();
    ASSERT_EQ(kill(agent.pid(), SIGTERM), 0);
    auto result = agent.wait(CancelToken::never(), std::chrono::seconds(120));
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->exit_code, kExitInterrupted) << logged.text();
    EXPECT_FALSE(file_exists(output));
    EXPECT_FALSE(file_exists(partial));
    EXPECT_TRUE(processes_matching(scratch + "/").empty())
        << "the scratch server or pg_dump is still running";
  }

  static void expect_no_error_lines(const AgentRun& run) {
    EXPECT_EQ(run.stderr_text.find(" error "), std::string::npos) << run.stderr_text;
  }

  // A refusal: the exit code, the message, and nothing written or left running.
  static void expect_refusal(std::vector<std::string> args, int code, const std::string& message,
                             const std::string& scratch, const std::string& output,
                             bool foreign_server_on_scratch = false) {
    const auto archive_before = cluster_->archive_files();
    const bool scratch_existed = file_exists(scratch);
    const auto run = run_agent(args);
    EXPECT_EQ(run.exit_code, code) << run.stderr_text;
    EXPECT_NE(run.stderr_text.find(message), std::string::npos) << "expected '" << message << "' in:\n"
                                                                << run.stderr_text;
    EXPECT_NE(run.stderr_text.find("HINT: "), std::string::npos) << run.stderr_text;
    if (!scratch_existed) {
      EXPECT_FALSE(file_exists(scratch)) << "refusal created " << scratch;
    }
    EXPECT_FALSE(file_exists(output)) << "refusal wrote " << output;
    EXPECT_FALSE(file_exists(output + ".partial"));
    if (!foreign_server_on_scratch) {
      EXPECT_TRUE(processes_matching(scratch + "/").empty()) << "a process on the scratch path is running";
    }
    EXPECT_EQ(cluster_->archive_files(), archive_before) << "the live archive changed";
    EXPECT_TRUE(run.stdout_text.empty());
  }
};

TEST_F(DumpIntegration, DumpAtTargetThenAgainWithDeltaInTheRunbookOffsetForm) {
  const std::string scratch = cluster_->get("SCRATCH");
  const std::string output = cluster_->get("OUTPUT_DIR") + "/first.sql";
  const auto archive_before = cluster_->archive_files();

  const auto first = run_agent(dump_args(cluster_->target(), output, scratch));
  ASSERT_EQ(first.exit_code, 0) << first.stderr_text;
  expect_no_error_lines(first);
  expect_rows_at_target(read_file(output));
  struct stat st {};
  ASSERT_EQ(stat(output.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(file_exists(output + ".partial"));
  const std::string manifest = read_file(output + ".manifest.json");
  expect_checksum_matches(output, "xxh128");  // the default
  EXPECT_NE(manifest.find("\"replay_timestamp\""), std::string::npos);
  // The step progress a person sees.
  for (const char* step :
       {"restore: done in", "wait: done in", "verify: done in", "dump: done in", "stop: done in"})
    EXPECT_NE(first.stderr_text.find(step), std::string::npos) << step;
  EXPECT_NE(first.stderr_text.find("s before the target"), std::string::npos);

  // The tablespace that holds events was remapped into the scratch directory.
  const auto links = read_tablespace_links(scratch + "/data");
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].path.rfind(scratch + "/tablespaces/", 0), 0u) << links[0].path;

  // Nothing of the copy is left running, and it added nothing to the live repository.
  EXPECT_TRUE(processes_matching(scratch + "/").empty());
  EXPECT_EQ(cluster_->archive_files(), archive_before);
  for (const auto& file : cluster_->archive_files())
    EXPECT_EQ(file.find(".history"), std::string::npos) << file;

  // Second run over the same scratch (--delta), target typed as in the runbook: -08:00.
  auto parsed = parse_target_time(cluster_->target());
  ASSERT_TRUE(parsed.ok());
  const auto local = parsed->instant - std::chrono::hours(8);
  std::string pacific = format_for_pgbackrest(local);
  pacific.replace(pacific.size() - 3, 3, "-08:00");
  const std::string second_output = cluster_->get("OUTPUT_DIR") + "/second.sql";
  // ... and with a SHA-256 in its manifest.
  std::string config = read_file(cluster_->get("AGENT_CONFIG"));
  ASSERT_NE(config.find("\ndump:\n"), std::string::npos);
  config.replace(config.find("\ndump:\n"), 7, "\ndump:\n  checksum: sha256\n");
  const std::string sha_config = cluster_->dir() + "/agent-sha256.yaml";
  std::ofstream(sha_config) << config;
  auto second_args = dump_args(pacific, second_output, scratch);
  second_args[2] = sha_config;
  const auto second = run_agent(second_args);
  ASSERT_EQ(second.exit_code, 0) << second.stderr_text;
  expect_rows_at_target(read_file(second_output));
  expect_checksum_matches(second_output, "sha256");
  EXPECT_EQ(cluster_->archive_files(), archive_before);
  EXPECT_TRUE(processes_matching(scratch + "/").empty());
}

TEST_F(DumpIntegration, DumpToStandardOutputCarriesOnlyTheDump) {
  const std::string scratch = cluster_->get("SCRATCH");
  auto args = dump_args(cluster_->target(), "-", scratch);
  args.insert(args.end(), {"--log-format", "json"});
  const auto run = run_agent(args);
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  // Logs stay on stderr, one ECS JSON object per line, so Elasticsearch can read them: steps end
  // with their event.duration, pgBackRest's lines name the step they were printed in, and a
  // dump that succeeded logged no error.
  std::istringstream lines(run.stderr_text);
  std::string line;
  int parsed = 0, timed_steps = 0, restore_lines = 0;
  while (std::getline(lines, line)) {
    const auto json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(json.is_object()) << line;
    for (const char* key : {"@timestamp", "log.level", "message", "log.logger", "process.pid", "ecs.version"})
      EXPECT_TRUE(json.contains(key)) << line;
    EXPECT_NE(json.value("log.level", ""), "error") << line;
    if (json.contains("event.duration")) {
      EXPECT_TRUE(json["event.duration"].is_number_integer()) << line;
      EXPECT_TRUE(json.contains("job.step")) << line;
      ++timed_steps;
    }
    if (json.value("log.logger", "") == "pgbackrest" && json.value("job.step", "") == "restore")
      ++restore_lines;
    ++parsed;
  }
  EXPECT_GT(parsed, 10);
  EXPECT_GE(timed_steps, 9) << "check, prepare, restore, start, wait, verify, dump, publish, stop";
  EXPECT_GT(restore_lines, 0) << run.stderr_text;
  ASSERT_EQ(run.stdout_text.rfind("--\n-- PostgreSQL database dump\n--", 0), 0u)
      << run.stdout_text.substr(0, 200);
  expect_rows_at_target(run.stdout_text);
  EXPECT_NE(run.stdout_text.find("CREATE DATABASE api"), std::string::npos);
}

TEST_F(DumpIntegration, RefusesTargetsWithoutZoneOrOutsideTheWindow) {
  const std::string scratch = cluster_->dir() + "/scratch-refused";
  const std::string output = cluster_->get("OUTPUT_DIR") + "/refused.sql";
  expect_refusal(dump_args("2024-11-04 09:40:00", output, scratch), kExitUsage, "has no time zone or offset",
                 scratch, output);
  expect_refusal(dump_args("2000-01-01 00:00:00+00", output, scratch), kExitTargetWindow,
                 "is before the oldest backup finished", scratch, output);
  expect_refusal(dump_args("2999-01-01 00:00:00+00", output, scratch), kExitTargetWindow, "is in the future",
                 scratch, output);
}

TEST_F(DumpIntegration, RefusesScratchPathsThatTouchTheLiveCluster) {
  const std::string output = cluster_->get("OUTPUT_DIR") + "/refused.sql";
  const std::string inside = cluster_->get("DATA") + "/restore";
  expect_refusal(dump_args(cluster_->target(), output, inside), kExitUsage,
                 "lies inside the live data directory", inside, output);
  const std::string in_tablespace = cluster_->get("TABLESPACE_DIR") + "/restore";
  expect_refusal(dump_args(cluster_->target(), output, in_tablespace), kExitUsage, "live tablespace",
                 in_tablespace, output);
  // The cluster's own directory contains the live data directory and is not the agent's.
  expect_refusal(dump_args(cluster_->target(), output, cluster_->dir()), kExitUsage,
                 "contains the live data directory", cluster_->dir(), output,
                 /*foreign_server_on_scratch=*/true);  // the live server runs there
}

TEST_F(DumpIntegration, RefusesAPortInUse) {
  PortHolder taken;
  const std::string scratch = cluster_->dir() + "/scratch-refused";
  const std::string output = cluster_->get("OUTPUT_DIR") + "/refused.sql";
  auto args = dump_args(cluster_->target(), output, scratch);
  args.insert(args.end(), {"--port", std::to_string(taken.port())});
  expect_refusal(args, kExitEnvironment, "port " + std::to_string(taken.port()) + " is already in use",
                 scratch, output);
}

TEST_F(DumpIntegration, RefusesOutputDirectoriesItCannotWrite) {
  const std::string scratch = cluster_->dir() + "/scratch-refused";
  const std::string missing = cluster_->dir() + "/no-such-dir/out.sql";
  expect_refusal(dump_args(cluster_->target(), missing, scratch), kExitEnvironment, "does not exist", scratch,
                 missing);
  const std::string locked_dir = cluster_->dir() + "/read-only";
  ASSERT_EQ(mkdir(locked_dir.c_str(), 0500), 0);
  expect_refusal(dump_args(cluster_->target(), locked_dir + "/out.sql", scratch), kExitEnvironment,
                 "is not writable", scratch, locked_dir + "/out.sql");
}

TEST_F(DumpIntegration, RefusesAScratchDiskTooSmallForTheBackup) {
  const std::string small = cluster_->dir() + "/small-disk";
  ASSERT_EQ(mkdir(small.c_str(), 0700), 0);
  const std::string scratch = small + "/scratch";
  const std::string output = cluster_->get("OUTPUT_DIR") + "/small-disk.sql";
  const auto archive_before = cluster_->archive_files();
  const auto run = run_agent_on_small_disk(dump_args(cluster_->target(), output, scratch), small, 4096);
  EXPECT_EQ(run.exit_code, kExitEnvironment) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("not enough disk for the restore"), std::string::npos) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("HINT: "), std::string::npos);
  EXPECT_FALSE(file_exists(scratch));
  EXPECT_FALSE(file_exists(output));
  EXPECT_EQ(cluster_->archive_files(), archive_before);
}

TEST_F(DumpIntegration, RefusesAMalformedConfig) {
  const std::string bad = cluster_->dir() + "/bad.yaml";
  std::ofstream(bad) << "stanza: db\npostgres:\n  prot: 5432\nrestore:\n  port: many\n";
  const std::string scratch = cluster_->dir() + "/scratch-refused";
  const std::string output = cluster_->get("OUTPUT_DIR") + "/refused.sql";
  std::vector<std::string> args{"dump",     "--config", bad,         "--target", cluster_->target(),
                                "--output", output,     "--scratch", scratch};
  expect_refusal(args, kExitUsage, bad + ":3: unknown key 'postgres.prot'", scratch, output);
  const auto check = run_agent({"config", "check", bad});
  EXPECT_EQ(check.exit_code, kExitUsage);
  EXPECT_NE(check.stderr_text.find(bad + ":5: 'restore.port' must be a whole number"), std::string::npos)
      << check.stderr_text;
  const auto good = run_agent({"config", "check", cluster_->get("AGENT_CONFIG")});
  EXPECT_EQ(good.exit_code, 0) << good.stderr_text;
  // It names the files pgBackRest will read, and refuses a named one that is not there.
  EXPECT_NE(good.stdout_text.find("pgBackRest reads: " + cluster_->get("PGBACKREST_CONFIG")),
            std::string::npos)
      << good.stdout_text;
  const std::string no_pgbackrest_config = cluster_->dir() + "/no-pgbackrest-config.yaml";
  std::ofstream(no_pgbackrest_config)
      << "stanza: db\npgbackrest:\n  config: " << cluster_->dir() << "/missing/pgbackrest.conf\n";
  const auto missing = run_agent({"config", "check", no_pgbackrest_config});
  EXPECT_EQ(missing.exit_code, kExitUsage);
  EXPECT_NE(missing.stderr_text.find("the pgBackRest config file " + cluster_->dir() +
                                     "/missing/pgbackrest.conf (pgbackrest.config) does not exist"),
            std::string::npos)
      << missing.stderr_text;
}

TEST_F(DumpIntegration, RefusesAScratchWithAServerItDidNotStart) {
  // A restored copy from an earlier run, started by someone else.
  const std::string scratch = cluster_->dir() + "/scratch-foreign";
  const std::string first_output = cluster_->get("OUTPUT_DIR") + "/foreign-first.sql";
  ASSERT_EQ(run_agent(dump_args(cluster_->target(), first_output, scratch)).exit_code, 0);
  PortHolder port_for_foreign;
  const int foreign_port = port_for_foreign.port();
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {cluster_->get("BINDIR") + "/postgres",        "-D", scratch + "/data",   "-c",
               "port=" + std::to_string(foreign_port),       "-c", "listen_addresses=", "-c",
               "unix_socket_directories=" + scratch + "/run"};
  spec.tag = "foreign-postgres";
  auto foreign = runner->start(spec);
  ASSERT_TRUE(foreign.ok());
  for (int i = 0; i < 100 && !file_exists(scratch + "/data/postmaster.pid"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const std::string output = cluster_->get("OUTPUT_DIR") + "/foreign.sql";
  expect_refusal(dump_args(cluster_->target(), output, scratch), kExitEnvironment,
                 "is running on the scratch directory", scratch, output, /*foreign_server_on_scratch=*/true);
  EXPECT_TRUE(foreign.value()->poll() == std::nullopt) << "the agent touched a server it did not start";
  foreign.value()->stop(SIGINT, std::chrono::seconds(30));
}

TEST_F(DumpIntegration, RefusesToStartACopyThatWouldReachALiveTablespace) {
  // A tablespace created after every backup: pgBackRest cannot remap it.
  const std::string location = cluster_->dir() + "/ts-late";
  ASSERT_EQ(mkdir(location.c_str(), 0700), 0);
  cluster_->sql("postgres", "CREATE TABLESPACE ts_late LOCATION '" + location + "'");
  const std::string scratch = cluster_->get("SCRATCH");
  const std::string output = cluster_->get("OUTPUT_DIR") + "/late-tablespace.sql";
  const auto archive_before = cluster_->archive_files();
  const auto run = run_agent(dump_args(cluster_->target(), output, scratch));
  cluster_->sql("postgres", "DROP TABLESPACE ts_late");
  EXPECT_EQ(run.exit_code, kExitEnvironment) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("(" + location + ") is not in backup set"), std::string::npos)
      << run.stderr_text;
  EXPECT_EQ(run.stderr_text.find("start: started"), std::string::npos) << "the copy was started";
  EXPECT_FALSE(file_exists(output));
  EXPECT_TRUE(processes_matching(scratch + "/").empty());
  EXPECT_EQ(cluster_->archive_files(), archive_before);
}

TEST_F(DumpIntegration, TargetBeyondTheArchivedWalNamesTheLastReachableTime) {
  // A second ago is inside the window as far as backups go, but the WAL after the last
  // backup is not archived yet: recovery ends before the target and the server exits.
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  const std::string target = format_for_pgbackrest(SysMicros{now - std::chrono::seconds(1)});
  const std::string scratch = cluster_->get("SCRATCH");
  const std::string output = cluster_->get("OUTPUT_DIR") + "/beyond-wal.sql";
  const auto run = run_agent(dump_args(target, output, scratch));
  EXPECT_EQ(run.exit_code, kExitTargetWindow) << run.stderr_text;
  EXPECT_NE(
      run.stderr_text.find("the archived WAL ends before the target; the last time the copy can reach is "),
      std::string::npos)
      << run.stderr_text;
  EXPECT_FALSE(file_exists(output));
  EXPECT_FALSE(file_exists(output + ".partial"));
  EXPECT_TRUE(processes_matching(scratch + "/").empty());
}

TEST_F(DumpIntegration, ChildrenDieWithAKilledAgent) {
  // SIGKILL cannot be caught: the parent-death signal is what stops the temporary server.
  const std::string scratch = cluster_->get("SCRATCH");
  const std::string output = cluster_->get("OUTPUT_DIR") + "/killed.sql";
  std::atomic<bool> server_started{false};
  auto agent =
      start_agent(dump_args(cluster_->target(), output, scratch), [&server_started](std::string_view line) {
        if (line.find("temporary server pid") != std::string_view::npos) server_started = true;
      });
  ASSERT_TRUE(agent.ok());
  for (int i = 0; i < 6000 && !server_started && !agent.value()->poll(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(server_started) << "the agent ended before it started the temporary server";
  ASSERT_EQ(kill(agent.value()->pid(), SIGKILL), 0);
  ASSERT_TRUE(agent.value()->wait(CancelToken::never(), std::chrono::seconds(30)).has_value());
  bool gone = false;
  for (int i = 0; i < 300 && !gone; ++i) {
    gone = processes_matching(scratch + "/").empty();
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(gone) << "the temporary server outlived the agent";
  EXPECT_FALSE(file_exists(output));

  // The next run cleans up after the killed one and succeeds.
  const std::string again = cluster_->get("OUTPUT_DIR") + "/after-kill.sql";
  const auto rerun = run_agent(dump_args(cluster_->target(), again, scratch));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.stderr_text;
  expect_rows_at_target(read_file(again));
}

TEST_F(DumpIntegration, SigtermMidDumpLeavesNothingBehind) {
  const std::string scratch = cluster_->get("SCRATCH");
  const std::string output = cluster_->get("OUTPUT_DIR") + "/interrupted.sql";
  LoggedLines logged;
  auto agent = start_agent(dump_args(cluster_->target(), output, scratch), logged.sink());
  ASSERT_TRUE(agent.ok());

  // Stop it once the dump is being written.
  interrupt_mid_dump(*agent.value(), output, scratch, 0, logged);
  if (HasFatalFailure()) return;
  EXPECT_NE(logged.text().find("interrupted"), std::string::npos) << logged.text();

  // The scratch directory is reusable afterwards.
  const std::string again = cluster_->get("OUTPUT_DIR") + "/after-interrupt.sql";
  const auto rerun = run_agent(dump_args(cluster_->target(), again, scratch));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.stderr_text;
  expect_rows_at_target(read_file(again));
}

// The statements around the rows: every line outside COPY blocks but comments, blank lines,
// the session settings each pg_dump piece repeats and psql's restrict lines; sorted.
std::multiset<std::string> statement_lines(const std::string& dump) {
  std::multiset<std::string> lines;
  std::istringstream in(dump);
  std::string line;
  bool in_copy = false;
  while (std::getline(in, line)) {
    if (in_copy) {
      in_copy = line != "\\.";
      continue;
    }
    if (line.rfind("COPY ", 0) == 0) in_copy = true;
    if (line.empty() || line.rfind("--", 0) == 0 || line.rfind("SET ", 0) == 0 ||
        line.rfind("SELECT pg_catalog.set_config(", 0) == 0 || line.rfind("\\restrict ", 0) == 0 ||
        line.rfind("\\unrestrict ", 0) == 0)
      continue;
    lines.insert(line);
  }
  return lines;
}

// The largest tables copied over several connections (here: every table) give the same rows,
// byte for byte, and the same schema as a single pg_dump; the dump restores with psql into an
// empty server, and a pg_dump of what it restored has those rows again.
TEST_F(DumpIntegration, RowsCopiedOverSeveralConnectionsAreExactlyPgDumps) {
  const std::string scratch = cluster_->get("SCRATCH");
  const std::string split_output = cluster_->get("OUTPUT_DIR") + "/split.sql";
  const std::string single_output = cluster_->get("OUTPUT_DIR") + "/single.sql";
  auto split_args = dump_args(cluster_->target(), split_output, scratch);
  split_args[2] = config_with_dump_settings("agent-split.yaml", "  connections: 3\n  split_table_mb: 0\n");
  const auto split = run_agent(split_args);
  ASSERT_EQ(split.exit_code, 0) << split.stderr_text;
  EXPECT_NE(split.stderr_text.find("over 3 connections"), std::string::npos) << split.stderr_text;
  auto single_args = dump_args(cluster_->target(), single_output, scratch);
  single_args[2] = config_with_dump_settings("agent-single.yaml", "  connections: 1\n");
  const auto single = run_agent(single_args);
  ASSERT_EQ(single.exit_code, 0) << single.stderr_text;

  const std::string split_dump = read_file(split_output);
  const std::string single_dump = read_file(single_output);
  expect_rows_at_target(split_dump);
  expect_checksum_matches(split_output, "xxh128");
  const auto manifest = nlohmann::json::parse(read_file(split_output + ".manifest.json"));
  const auto parallel = manifest["dump"]["tables_copied_in_parallel"];
  for (const char* table : {"public.bulk", "\"Odd \"\"Schema\"\"\".\".Line *Items\"", "public.child",
                            "public.parent", "public.measurements_2024", "public.guarded"})
    EXPECT_NE(std::find(parallel.begin(), parallel.end(), table), parallel.end())
        << table << " in " << parallel;
  EXPECT_TRUE(
      nlohmann::json::parse(read_file(single_output + ".manifest.json"))["dump"]["tables_copied_in_parallel"]
          .empty());

  const auto split_blocks = copy_blocks(split_dump);
  const auto single_blocks = copy_blocks(single_dump);
  EXPECT_GE(single_blocks.size(), 8u);
  ASSERT_EQ(split_blocks.size(), single_blocks.size());
  for (const auto& [copy_line, rows] : single_blocks) {
    const auto found = split_blocks.find(copy_line);
    ASSERT_NE(found, split_blocks.end()) << copy_line;
    EXPECT_TRUE(found->second == rows) << copy_line << ": the rows differ";
  }
  EXPECT_EQ(statement_lines(split_dump), statement_lines(single_dump));
  // One restrict key for the whole dump, around the agent's rows too.
  EXPECT_NE(split_dump.find("\\restrict "), std::string::npos);

  // Restore into an empty server.
  const std::string bindir = cluster_->get("BINDIR");
  const std::string home = cluster_->dir() + "/restored";
  const std::string data = home + "/data";
  const int port = free_port();
  ASSERT_TRUE(run_or_fail({bindir + "/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                           "--locale=C", "--no-sync", "--no-instructions"})
                  .succeeded());
  write_file(data + "/postgresql.auto.conf", "port = " + std::to_string(port) +
                                                 "\nlisten_addresses = ''\nunix_socket_directories = '" +
                                                 home +
                                                 "'\nfsync = off\n"
                                                 // pg_dump prints timestamptz in the server's zone.
                                                 "timezone = 'America/Vancouver'\n");
  ASSERT_TRUE(run_or_fail({bindir + "/pg_ctl", "-D", data, "-l", home + "/log", "-w", "start"}).succeeded());
  struct StopServer {
    std::vector<std::string> argv;
    ~StopServer() { run_or_fail(argv); }
  } stop{{bindir + "/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"}};
  const std::string tablespace = home + "/ts1";
  ASSERT_EQ(mkdir(tablespace.c_str(), 0700), 0);
  const auto psql = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{
        bindir + "/psql",     "-X", "-q",       "-v", "ON_ERROR_STOP=1", "-h", home, "-p",
        std::to_string(port), "-U", "postgres", "-d", "postgres"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_or_fail(argv);
  };
  ASSERT_TRUE(psql({"-c", "CREATE TABLESPACE ts1 LOCATION '" + tablespace + "'"}).succeeded());
  ASSERT_TRUE(psql({"-f", split_output}).succeeded()) << "psql could not restore the dump";
  const std::string again = home + "/again.sql";
  ASSERT_TRUE(run_or_fail({bindir + "/pg_dump", "-h", home, "-p", std::to_string(port), "-U", "postgres",
                           "-d", "api", "--data-only", "-f", again})
                  .succeeded());
  const auto restored_blocks = copy_blocks(read_file(again));
  for (const auto& [copy_line, rows] : single_blocks) {
    const auto found = restored_blocks.find(copy_line);
    ASSERT_NE(found, restored_blocks.end()) << copy_line;
    EXPECT_TRUE(found->second == rows) << copy_line << ": the restored rows differ";
  }
}

TEST_F(DumpIntegration, SigtermWhileConnectionsCopyRowsLeavesNothingBehind) {
  const std::string scratch = cluster_->get("SCRATCH");
  const std::string output = cluster_->get("OUTPUT_DIR") + "/interrupted-split.sql";
  auto args = dump_args(cluster_->target(), output, scratch);
  args[2] = config_with_dump_settings("agent-split-sigterm.yaml", "  connections: 2\n  split_table_mb: 1\n");
  LoggedLines logged;
  auto agent = start_agent(args, logged.sink());
  ASSERT_TRUE(agent.ok());
  // The bulk table's rows are copied by the agent itself: interrupt that part (pg_dump's schema
  // and the small tables' rows come first, well under 8 MiB).
  interrupt_mid_dump(*agent.value(), output, scratch, 8 << 20, logged);
  EXPECT_NE(logged.text().find("over 2 connections"), std::string::npos) << logged.text();
}

// The server can go away under the agent's sessions (a SIGTERM stops the temporary server while
// the wait step asks how far replay is, or while connections copy rows): each kind of session
// answers with an error, not a crash or a hang. Under AddressSanitizer this is also the check that
// tests/sanitize/lsan.supp covers the one PGresult libpqxx 6.4 loses then, and nothing else.
TEST_F(DumpIntegration, SessionsWhoseServerGoesAwayAnswerWithAnError) {
  const std::string conninfo = "host=" + cluster_->get("SOCKET_DIR") + " port=" + cluster_->get("PORT") +
                               " user=postgres dbname=postgres application_name=agent-lost-session";
  auto connector = make_pqxx_connector();
  auto session = connector->connect(conninfo);
  ASSERT_TRUE(session.ok()) << session.error().message;
  ASSERT_TRUE((*session)->is_in_recovery().ok());
  auto copy_connector = make_libpq_copy_connector();
  auto copy = copy_connector->connect(conninfo);
  ASSERT_TRUE(copy.ok()) << copy.error().message;
  ASSERT_TRUE((*copy)->execute("SELECT 1").ok());

  EXPECT_EQ(cluster_->query("postgres",
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE application_name = 'agent-lost-session'"),
            "2");

  const auto status = (*session)->recovery_status();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::external_tool);
  EXPECT_NE(status.error().message.find("query failed"), std::string::npos) << status.error().message;
  std::size_t copied_bytes = 0;
  const auto copied = (*copy)->copy_out(
      "COPY (SELECT 1) TO STDOUT",
      [&](const char*, std::size_t size) {
        copied_bytes += size;
        return true;
      },
      CancelToken::never());
  ASSERT_FALSE(copied.ok());
  EXPECT_EQ(copied_bytes, 0u);
  // libpq quotes the server's FATAL ("terminating connection ...") when it read it in time, else
  // says the server closed the connection.
  const std::string& why = copied.error().message;
  EXPECT_TRUE(why.find("terminat") != std::string::npos ||
              why.find("closed the connection") != std::string::npos)
      << why;
}

// Whether process `pid` is running (a zombie is not).
bool process_alive(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close_paren = stat.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < stat.size() && stat[close_paren + 2] != 'Z';
}

// Those of `pids` that run `program` (its name in /proc/PID/comm).
std::vector<pid_t> running(const std::vector<pid_t>& pids, const std::string& program) {
  std::vector<pid_t> found;
  for (const pid_t pid : pids)
    if (read_file("/proc/" + std::to_string(pid) + "/comm") == program + "\n") found.push_back(pid);
  return found;
}

// The processes working in `dir` or below: a postmaster and every one of its children run in
// their data directory, whose path their command lines do not show.
std::vector<pid_t> processes_working_under(const std::string& dir) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code link_ec;
    const std::string cwd = std::filesystem::read_symlink(it->path() / "cwd", link_ec).string();
    if (link_ec || (cwd != dir && cwd.rfind(dir + "/", 0) != 0)) continue;
    const pid_t pid = std::stoi(name);
    if (process_alive(pid)) found.push_back(pid);
  }
  return found;
}

// SIGTERM while pg_dump writes a directory-format dump with two workers, or while the agent
// compresses a plain dump with zstd: the agent ends as interrupted (exit 7), and leaves nothing
// under the dump's final name or its temporary OUTPUT.partial name, no process of the copy or
// of pg_dump, the scratch directory as its teardowns leave it (restore.keep_scratch: always
// keeps the restored copy, stopped and unlocked), and no .history file in the live archive.
class SigtermMidDump {
 public:
  SigtermMidDump(TestCluster& cluster, std::string output) : cluster_(cluster), output_(std::move(output)) {}

  // Starts `agent dump` with `more` arguments, waits until the dump step has started and
  // `written` says pg_dump's output is landing, then sends SIGTERM and checks what is left.
  // `pg_dumps`: how many pg_dump processes run then (with --jobs N: the leader and N workers).
  void run(const std::vector<std::string>& more, const std::function<bool()>& written, std::size_t pg_dumps) {
    const std::string scratch = cluster_.get("SCRATCH");
    const auto archive_before = cluster_.archive_files();
    std::vector<std::string> args = {"dump",     "--config",        cluster_.get("AGENT_CONFIG"),
                                     "--target", cluster_.target(), "--output",
                                     output_,    "--scratch",       scratch};
    args.insert(args.end(), more.begin(), more.end());
    std::atomic<bool> dumping{false};
    std::atomic<pid_t> server_pid{0};
    auto agent = start_agent(args, [&](std::string_view line) {
      std::smatch pid;
      const std::string text(line);
      if (std::regex_search(text, pid, std::regex("temporary server pid ([0-9]+)")))
        server_pid = std::stoi(pid[1]);
      if (line.find("dump: started") != std::string_view::npos) dumping = true;
      std::lock_guard lock(mutex_);
      log_.append(line).push_back('\n');
    });
    ASSERT_TRUE(agent.ok());
    auto& process = *agent.value();
    bool landing = false;
    for (int i = 0; i < 12000 && !landing && !process.poll(); ++i) {
      landing = dumping && written();
      if (!landing) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_TRUE(landing) << "the dump ended before it could be interrupted:\n" << log();
    // What runs for the dump now: pg_dump (its argv names the copy's socket directory) and
    // the copy's server processes.
    const auto dump_processes = running(processes_matching(scratch + "/run"), "pg_dump");
    const auto copy_processes = processes_working_under(scratch + "/data");
    ASSERT_EQ(kill(process.pid(), SIGTERM), 0);
    const auto result = process.wait(CancelToken::never(), std::chrono::seconds(120));
    ASSERT_TRUE(result.has_value());
    const std::string text = log();
    EXPECT_EQ(result->exit_code, kExitInterrupted) << text;
    EXPECT_NE(text.find("dump: failed"), std::string::npos) << text;
    EXPECT_NE(text.find("interrupted"), std::string::npos) << text;

    EXPECT_FALSE(std::filesystem::exists(output_)) << text;
    EXPECT_FALSE(std::filesystem::exists(output_ + ".partial")) << text;
    EXPECT_FALSE(std::filesystem::exists(output_ + ".manifest.json"));

    EXPECT_EQ(dump_processes.size(), pg_dumps) << "pg_dump was not running as expected when the signal came";
    EXPECT_NE(server_pid.load(), 0) << text;
    EXPECT_NE(std::find(copy_processes.begin(), copy_processes.end(), server_pid.load()),
              copy_processes.end())
        << "the copy's postmaster was not running in " << scratch << "/data";
    for (const pid_t pid : dump_processes)
      EXPECT_FALSE(process_alive(pid)) << "pg_dump " << pid << " is left";
    for (const pid_t pid : copy_processes)
      EXPECT_FALSE(process_alive(pid)) << "postgres " << pid << " is left";
    EXPECT_TRUE(processes_working_under(scratch).empty()) << "a process of the copy is left";
    EXPECT_TRUE(processes_matching(scratch + "/").empty()) << "a process on the scratch path is left";

    // The teardowns' scratch directory: the restored copy kept for --delta, its server stopped
    // (no pid file, no socket), the job's lock released, nothing of the dump step's own.
    std::set<std::string> entries;
    for (const auto& entry : std::filesystem::directory_iterator(scratch))
      entries.insert(entry.path().filename().string());
    for (const auto& entry : entries)
      EXPECT_TRUE((std::set<std::string>{"data", "run", "tablespaces", "pgbackrest", "wal-scan",
                                         ".agent-scratch", ".agent-scratch.lock"}
                       .count(entry)))
          << "left in the scratch directory: " << entry;
    EXPECT_TRUE(entries.count("data")) << "restore.keep_scratch: always keeps the copy";
    EXPECT_FALSE(std::filesystem::exists(scratch + "/data/postmaster.pid"));
    EXPECT_FALSE(std::filesystem::exists(scratch + "/run/.s.PGSQL." + cluster_.get("SCRATCH_PORT")));
    const int lock_fd = open((scratch + "/.agent-scratch.lock").c_str(), O_RDWR | O_CLOEXEC);
    EXPECT_GE(lock_fd, 0);
    if (lock_fd >= 0) {
      EXPECT_EQ(flock(lock_fd, LOCK_EX | LOCK_NB), 0) << "the scratch lock is still held";
      close(lock_fd);
    }

    const auto archive_after = cluster_.archive_files();
    EXPECT_EQ(archive_after, archive_before) << "the live archive changed";
    for (const auto& file : archive_after) EXPECT_EQ(file.find(".history"), std::string::npos) << file;
  }

  std::string log() {
    std::lock_guard lock(mutex_);
    return log_;
  }

 private:
  TestCluster& cluster_;
  std::string output_;
  std::mutex mutex_;
  std::string log_;
};

TEST_F(DumpIntegration, SigtermMidDirectoryDumpWithTwoJobsLeavesNothingBehind) {
  const std::string output = cluster_->get("OUTPUT_DIR") + "/interrupted.dir";
  const std::string partial = output + ".partial";
  // A worker writes a table's rows: a data file OID.dat.gz that is not empty (pg_dump writes
  // toc.dat first, then the data files in parallel).
  const auto writing = [&partial] {
    std::error_code ec;
    for (std::filesystem::directory_iterator it(partial, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!name.empty() && std::isdigit(static_cast<unsigned char>(name.front())) &&
          name.find(".dat") != std::string::npos && it->is_regular_file(ec) && it->file_size(ec) > 0)
        return true;
    }
    return false;
  };
  SigtermMidDump(*cluster_, output).run({"--format", "directory", "--jobs", "2"}, writing, 3);
}

TEST_F(DumpIntegration, SigtermMidZstdDumpLeavesNothingBehind) {
  const std::string output = cluster_->get("OUTPUT_DIR") + "/interrupted.sql.zst";
  const std::string partial = output + ".partial";
  // The agent's compressor has written some of the frame.
  const auto writing = [&partial] {
    struct stat st {};
    return stat(partial.c_str(), &st) == 0 && st.st_size > 0;
  };
  SigtermMidDump(*cluster_, output).run({"--compress", "zstd"}, writing, 1);
}

}  // namespace
}  // namespace agent::testing
