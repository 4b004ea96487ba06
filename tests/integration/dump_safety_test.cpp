// `agent dump` when things go wrong, against a real PostgreSQL 15 and pgBackRest repository: a
// copy that shares nothing live, that never hangs, and failures that name their real cause.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
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

namespace agent::testing {
namespace {

namespace fs = std::filesystem;
using Steady = std::chrono::steady_clock;

constexpr int kExitUsage = 2;
constexpr int kExitTargetWindow = 3;
constexpr int kExitEnvironment = 5;
constexpr int kExitExternalTool = 6;
constexpr int kExitInterrupted = 7;

double seconds_since(Steady::time_point start) {
  return std::chrono::duration<double>(Steady::now() - start).count();
}

class DumpSafetyIntegration : public ClusterSuite<DumpSafetyIntegration> {
 public:
  static constexpr int kBulkMb = 0;

  static void SetUpTestSuite() {
    ClusterSuite<DumpSafetyIntegration>::SetUpTestSuite();
    if (cluster_->dir().empty()) return;
    // No commit of autovacuum's own (an ANALYZE) may land in the quiet period of the idle test.
    cluster_->sql("postgres", "ALTER SYSTEM SET autovacuum = off");
    cluster_->sql("postgres", "SELECT pg_reload_conf()");
  }

 protected:
  static std::vector<std::string> dump_args(const std::string& target, const std::string& output,
                                            const std::string& config = "") {
    return {"dump",     "--config",  config.empty() ? cluster_->get("AGENT_CONFIG") : config,
            "--target", target,      "--output",
            output,     "--scratch", cluster_->get("SCRATCH")};
  }

  // A copy of the cluster's agent config: `replace` swaps text, then each {section, lines} adds
  // the lines (YAML, indented) under that section, appending the section if it is not there.
  static std::string config_with(const std::string& name,
                                 const std::vector<std::pair<std::string, std::string>>& additions,
                                 const std::map<std::string, std::string>& replace = {}) {
    std::string config = read_file(cluster_->get("AGENT_CONFIG"));
    for (const auto& [from, to] : replace) {
      const auto at = config.find(from);
      EXPECT_NE(at, std::string::npos) << from;
      if (at != std::string::npos) config.replace(at, from.size(), to);
    }
    for (const auto& [section, lines] : additions) {
      const auto at = config.find("\n" + section + ":\n");
      if (at == std::string::npos)
        config += section + ":\n" + lines;
      else
        config.insert(at + section.size() + 3, lines);
    }
    const std::string path = cluster_->dir() + "/" + name;
    write_file(path, config);
    return path;
  }

  // One value from the live server.
  static std::string query(const std::string& database, const std::string& statement) {
    return cluster_->query(database, statement);
  }

  // Now on the live server, as pgBackRest reads a target.
  static std::string live_now() {
    return query("postgres",
                 "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
  }

  // Closes the current WAL segment and waits until it is archived.
  static void switch_wal_and_wait() {
    const std::string segment = query("postgres", "SELECT pg_walfile_name(pg_switch_wal())");
    ASSERT_EQ(segment.size(), 24u) << segment;
    ASSERT_TRUE(eventually(
        [&] {
          return query("postgres", "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= segment;
        },
        std::chrono::seconds(60)))
        << segment << " was not archived";
  }

  // A target inside a transaction that holds an ACCESS EXCLUSIVE lock on api.events: the lock is
  // taken, the target passes, then the transaction commits (made once for the suite).
  static const std::string& lock_target() {
    static const std::string target = [] {
      auto runner = make_posix_process_runner();
      ProcessSpec spec;
      spec.argv = {cluster_->get("BINDIR") + "/psql",
                   "-X",
                   "-v",
                   "ON_ERROR_STOP=1",
                   "-h",
                   cluster_->get("SOCKET_DIR"),
                   "-p",
                   cluster_->get("PORT"),
                   "-U",
                   "postgres",
                   "-d",
                   "api",
                   "-c",
                   "BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;"};
      spec.tag = "psql-lock";
      auto locker = runner->start(spec);
      EXPECT_TRUE(locker.ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      const std::string inside = live_now();
      if (locker.ok()) {
        EXPECT_TRUE(locker.value()->wait(CancelToken::never(), std::chrono::seconds(30)));
      }
      cluster_->sql("api", "INSERT INTO events(id, phase) VALUES (3001, 'after the lock')");
      switch_wal_and_wait();
      return inside;
    }();
    return target;
  }

  // A pgBackRest that runs `action` (shell) before the second WAL segment the copy fetches.
  static std::string pgbackrest_wrapper(const std::string& name, const std::string& action) {
    const std::string path = cluster_->dir() + "/" + name;
    const std::string count = path + ".count";
    write_file(path,
               "#!/bin/bash\n"
               "for a in \"$@\"; do [[ $a =~ ^[0-9A-F]{24}$ ]] && segment=1; done\n"
               "if [[ -n $segment ]]; then\n"
               "  n=$(( $(cat '" +
                   count + "' 2>/dev/null || echo 0) + 1 )); echo $n > '" + count +
                   "'\n"
                   "  if (( n == 2 )); then " +
                   action +
                   "; fi\n"
                   "fi\n"
                   "exec pgbackrest \"$@\"\n");
    chmod(path.c_str(), 0755);
    return path;
  }

  static void expect_nothing_left(const std::string& output, const std::string& stderr_text) {
    EXPECT_FALSE(file_exists(output)) << stderr_text;
    EXPECT_FALSE(file_exists(output + ".partial"));
    EXPECT_TRUE(processes_matching(cluster_->get("SCRATCH") + "/").empty())
        << "a process on the scratch path";
  }

  static bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  }
};

// Makes every file under `dir` readable again however the test ends.
struct Readable {
  std::string dir;
  ~Readable() {
    std::error_code ec;
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec, ec);
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      fs::permissions(it->path(),
                      it->is_directory()
                          ? fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec
                          : fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read,
                      ec);
  }
};

TEST_F(DumpSafetyIntegration, ARoleThatDoesNotExistEndsTheDumpAtOnceNamingTheSetting) {
  const std::string output = cluster_->get("OUTPUT_DIR") + "/no-role.sql";
  // The live server answers: refused in the check step, before anything is restored.
  const auto live = config_with("agent-no-role.yaml", {}, {{"user: postgres", "user: no_such_role"}});
  auto start = Steady::now();
  auto run = run_agent(dump_args(cluster_->target(), output, live));
  EXPECT_EQ(run.exit_code, kExitUsage) << run.stderr_text;
  EXPECT_TRUE(contains(run.stderr_text, "postgres.user 'no_such_role' is not a role in the live server"))
      << run.stderr_text;
  EXPECT_FALSE(contains(run.stderr_text, "restore: started"));
  EXPECT_LT(seconds_since(start), 20);
  expect_nothing_left(output, run.stderr_text);

  // The live server cannot be asked: the copy refuses the role, and that ends the wait at once
  // (each refused connection writes a line into the copy's log, which is no progress).
  const auto unreachable =
      config_with("agent-no-role-no-live.yaml", {},
                  {{"user: postgres", "user: no_such_role"},
                   {"host: " + cluster_->get("SOCKET_DIR"), "host: " + cluster_->dir() + "/nowhere"}});
  start = Steady::now();
  run = run_agent(dump_args(cluster_->target(), output, unreachable));
  EXPECT_EQ(run.exit_code, kExitUsage) << run.stderr_text;
  EXPECT_TRUE(
      contains(run.stderr_text, "postgres.user 'no_such_role' is not a role in the copy at the target"))
      << run.stderr_text;
  EXPECT_TRUE(contains(run.stderr_text, "HINT: set postgres.user"));
  EXPECT_LT(seconds_since(start), 30);
  expect_nothing_left(output, run.stderr_text);
}

TEST_F(DumpSafetyIntegration, ATargetInsideALockingTransactionIsRefusedWithTheNearestTargetBeforeIt) {
  const std::string target = lock_target();
  const std::string output = cluster_->get("OUTPUT_DIR") + "/locked.sql";
  const auto archive_before = cluster_->archive_files();
  const auto run = run_agent(dump_args(target, output));
  EXPECT_EQ(run.exit_code, kExitTargetWindow) << run.stderr_text;
  EXPECT_TRUE(contains(run.stderr_text, "recovery holds an ACCESS EXCLUSIVE lock on relation public.events"))
      << run.stderr_text;
  EXPECT_TRUE(std::regex_search(run.stderr_text, std::regex("transaction [0-9]+ took it")))
      << run.stderr_text;
  EXPECT_FALSE(contains(run.stderr_text, "dump: started"));
  expect_nothing_left(output, run.stderr_text);
  EXPECT_EQ(cluster_->archive_files(), archive_before);

  // The proposed target works.
  std::smatch proposal;
  ASSERT_TRUE(std::regex_search(run.stderr_text, proposal, std::regex("--target '([^']+)'")))
      << run.stderr_text;
  const std::string nearer = proposal[1];
  EXPECT_LT(nearer, target);
  const auto again = run_agent(dump_args(nearer, output));
  ASSERT_EQ(again.exit_code, 0) << again.stderr_text;
  EXPECT_FALSE(contains(read_file(output), "after the lock"));
}

TEST_F(DumpSafetyIntegration, SigtermEndsADumpBlockedOnALockWithinSeconds) {
  // A dump that does block: the lock check off and no lock timeout.
  const std::string output = cluster_->get("OUTPUT_DIR") + "/blocked.sql";
  const auto config = config_with("agent-no-lock-timeout.yaml",
                                  {{"dump", "  lock_timeout_seconds: 0\n  recovery_locks: wait\n"}});
  std::mutex mutex;
  std::string stderr_text;
  std::atomic<bool> dumping{false};
  auto agent = start_agent(dump_args(lock_target(), output, config), [&](std::string_view line) {
    std::lock_guard lock(mutex);
    stderr_text.append(line).push_back('\n');
    if (line.find("dump: started") != std::string_view::npos) dumping = true;
  });
  ASSERT_TRUE(agent.ok());
  ASSERT_TRUE(eventually([&] { return dumping.load() || agent.value()->poll().has_value(); },
                         std::chrono::seconds(60)));
  ASSERT_TRUE(dumping) << stderr_text;
  std::this_thread::sleep_for(std::chrono::seconds(3));
  ASSERT_FALSE(agent.value()->poll().has_value()) << "the dump did not block:\n" << stderr_text;

  const auto start = Steady::now();
  ASSERT_EQ(kill(agent.value()->pid(), SIGTERM), 0);
  const auto result = agent.value()->wait(CancelToken::never(), std::chrono::seconds(60));
  ASSERT_TRUE(result.has_value());
  EXPECT_LT(seconds_since(start), 10);
  std::lock_guard lock(mutex);
  EXPECT_EQ(result->exit_code, kExitInterrupted) << stderr_text;
  expect_nothing_left(output, stderr_text);
}

TEST_F(DumpSafetyIntegration, WithAsyncArchivingTheCopyLeavesTheLiveSpoolLockAndLogPathsAlone) {
  // The live config as the operator writes it: archive-async=y, spool-path on the live volume.
  std::string pgbackrest_conf = read_file(cluster_->get("PGBACKREST_CONFIG"));
  const auto at = pgbackrest_conf.find("archive-async=n");
  ASSERT_NE(at, std::string::npos);
  pgbackrest_conf.replace(at, 15, "archive-async=y");
  const std::string async_conf = cluster_->dir() + "/pgbackrest-async.conf";
  write_file(async_conf, pgbackrest_conf);
  const auto config = config_with(
      "agent-async.yaml", {}, {{"config: " + cluster_->get("PGBACKREST_CONFIG"), "config: " + async_conf}});
  const std::string spool = cluster_->dir() + "/spool";
  write_file(spool + "/left-by-the-live-server", "x");
  const auto tree = [](const std::string& dir) {
    std::map<std::string, std::pair<std::uintmax_t, fs::file_time_type>> files;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      files[it->path().string()] = {it->is_regular_file() ? it->file_size() : 0, it->last_write_time()};
    return files;
  };
  const auto spool_before = tree(spool);
  const auto lock_before = tree(cluster_->dir() + "/lock");
  const auto log_before = tree(cluster_->dir() + "/log");

  const std::string output = cluster_->get("OUTPUT_DIR") + "/async.sql";
  const auto run = run_agent(dump_args(cluster_->target(), output, config));
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  expect_rows_at_target(read_file(output));
  EXPECT_EQ(tree(spool), spool_before) << "the copy wrote to the live spool";
  EXPECT_EQ(tree(cluster_->dir() + "/lock"), lock_before) << "the copy wrote to the live lock path";
  EXPECT_EQ(tree(cluster_->dir() + "/log"), log_before) << "the copy wrote to the live log path";
  // Its pgBackRest files are in the scratch directory, and no archive-get is left fetching WAL.
  EXPECT_TRUE(file_exists(cluster_->get("SCRATCH") + "/pgbackrest/log/db-restore.log"));
  EXPECT_TRUE(processes_matching("pgbackrest-async.conf").empty());
  EXPECT_TRUE(processes_matching(cluster_->get("SCRATCH") + "/").empty());
}

TEST_F(DumpSafetyIntegration, AScratchDiskThatFillsWhileFetchingWalIsNamed) {
  // The disk under the scratch directory is a tmpfs with room for the restore and the WAL, which
  // something else fills (2 MiB left) just before the copy fetches its second WAL segment.
  const std::string small = cluster_->dir() + "/small-disk";
  ASSERT_EQ(mkdir(small.c_str(), 0700), 0);
  const auto wrapper = pgbackrest_wrapper(
      "pgbackrest-fills-disk", "free=$(df -Pk '" + small +
                                   "' | awk 'NR==2 {print $4}'); fallocate -l $(( (free - 2048) * 1024 )) '" +
                                   small + "/filler'");
  const auto config = config_with("agent-fills-disk.yaml", {{"pgbackrest", "  bin: " + wrapper + "\n"}});
  const std::string output = cluster_->get("OUTPUT_DIR") + "/disk-full.sql";
  auto args = dump_args(cluster_->target(), output, config);
  args.back() = small + "/scratch";
  const auto run = run_agent_on_small_disk(args, small, 256 * 1024);
  EXPECT_EQ(run.exit_code, kExitEnvironment) << run.stderr_text;
  EXPECT_TRUE(
      contains(run.stderr_text, "fetching WAL from the archive failed: the scratch directory's disk is full"))
      << run.stderr_text;
  EXPECT_TRUE(contains(run.stderr_text, "No space left on device"));
  EXPECT_FALSE(contains(run.stderr_text, "the archived WAL ends before the target"));
  EXPECT_FALSE(file_exists(output));
  EXPECT_TRUE(processes_matching(small + "/scratch/").empty());
}

TEST_F(DumpSafetyIntegration, AnArchiveThatBecomesUnreadableDuringReplayIsNamed) {
  const std::string archive = cluster_->dir() + "/repo/archive";
  const Readable restore_permissions{archive};
  const auto wrapper = pgbackrest_wrapper("pgbackrest-unreadable-archive",
                                          "find '" + archive + "' -type f -name '0*' -exec chmod 000 {} +");
  const auto config =
      config_with("agent-unreadable-archive.yaml", {{"pgbackrest", "  bin: " + wrapper + "\n"}});
  const std::string output = cluster_->get("OUTPUT_DIR") + "/unreadable.sql";
  const auto run = run_agent(dump_args(cluster_->target(), output, config));
  EXPECT_EQ(run.exit_code, kExitExternalTool) << run.stderr_text;
  EXPECT_TRUE(
      contains(run.stderr_text, "fetching WAL from the archive failed: the repository cannot be read"))
      << run.stderr_text;
  EXPECT_TRUE(contains(run.stderr_text, "Permission denied"));
  EXPECT_FALSE(contains(run.stderr_text, "the archived WAL ends before the target"));
  expect_nothing_left(output, run.stderr_text);
}

TEST_F(DumpSafetyIntegration, AnIdleDatabaseGivesItsStateAtTheLastCommitBeforeTheTarget) {
  // The last commit, then a quiet period in which WAL is still written and archived (a
  // checkpoint, a segment switch) but nothing commits; the target lies in it.
  cluster_->sql("api", "INSERT INTO events(id, phase) VALUES (4001, 'last before the quiet period')");
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const std::string target = live_now();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  cluster_->sql("postgres", "CHECKPOINT");
  switch_wal_and_wait();

  const std::string output = cluster_->get("OUTPUT_DIR") + "/idle.sql";
  const auto run = run_agent(dump_args(target, output));
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_TRUE(contains(run.stderr_text, "the archived WAL reaches past the target")) << run.stderr_text;
  EXPECT_TRUE(contains(read_file(output), "last before the quiet period"));
  const auto manifest = nlohmann::json::parse(read_file(output + ".manifest.json"));
  EXPECT_EQ(manifest["recovery_stop"]["at"], "end_of_archived_wal") << manifest.dump(2);
  ASSERT_TRUE(manifest["replay_timestamp"].is_string()) << manifest.dump(2);
  EXPECT_GT(manifest["gap_seconds"].get<double>(), 0.9);
  EXPECT_LT(manifest["gap_seconds"].get<double>(), 30);
  EXPECT_TRUE(processes_matching(cluster_->get("SCRATCH") + "/").empty());
}

TEST_F(DumpSafetyIntegration, ARepositoryThatBecomesUnreadableMidRestoreEndsTheRestoreStepNamingIt) {
  const std::string backups = cluster_->dir() + "/repo/backup";
  const Readable restore_permissions{backups};
  // pgBackRest retries a file after 15 s before it gives up and says why: the deadline is above that.
  const auto config =
      config_with("agent-restore-deadline.yaml",
                  {{"restore", "  restore_timeout_seconds: 60\n"}, {"log", "  level: debug\n"}});
  const std::string output = cluster_->get("OUTPUT_DIR") + "/repo-gone.sql";
  std::mutex mutex;
  std::string stderr_text;
  std::atomic<bool> removed{false};
  const auto start = Steady::now();
  auto agent = start_agent(dump_args(cluster_->target(), output, config), [&](std::string_view line) {
    // Once the restore has copied its first file, the repository becomes unreadable.
    if (!removed && line.find("DETAIL: restore file ") != std::string_view::npos) {
      chmod(backups.c_str(), 0);
      removed = true;
    }
    std::lock_guard lock(mutex);
    stderr_text.append(line).push_back('\n');
  });
  ASSERT_TRUE(agent.ok());
  const auto result = agent.value()->wait(CancelToken::never(), std::chrono::seconds(120));
  ASSERT_TRUE(result.has_value());
  std::lock_guard lock(mutex);
  EXPECT_TRUE(removed) << stderr_text;
  EXPECT_EQ(result->exit_code, kExitExternalTool) << stderr_text;
  EXPECT_TRUE(contains(stderr_text, "restore: pgbackrest restore failed: the repository cannot be read"))
      << stderr_text;
  EXPECT_TRUE(contains(stderr_text, "Permission denied"));
  EXPECT_LT(seconds_since(start), 45);
  expect_nothing_left(output, stderr_text);
}

TEST_F(DumpSafetyIntegration, ARepositoryThatStopsAnsweringEndsTheRestoreAtItsDeadline) {
  // A pgBackRest whose restore never answers, as with a repository host that is gone.
  const std::string wrapper = cluster_->dir() + "/pgbackrest-hangs";
  write_file(wrapper,
             "#!/bin/bash\n"
             "for a in \"$@\"; do [[ $a == restore ]] && exec sleep 777; done\n"
             "exec pgbackrest \"$@\"\n");
  chmod(wrapper.c_str(), 0755);
  const auto config = config_with("agent-hangs.yaml", {{"restore", "  restore_timeout_seconds: 5\n"},
                                                       {"pgbackrest", "  bin: " + wrapper + "\n"}});
  const std::string output = cluster_->get("OUTPUT_DIR") + "/hung.sql";
  const auto start = Steady::now();
  const auto run = run_agent(dump_args(cluster_->target(), output, config));
  EXPECT_EQ(run.exit_code, kExitExternalTool) << run.stderr_text;
  EXPECT_TRUE(contains(run.stderr_text, "pgbackrest restore made no progress for 5 s")) << run.stderr_text;
  EXPECT_TRUE(contains(run.stderr_text, "restore.restore_timeout_seconds"));
  EXPECT_LT(seconds_since(start), 30);
  EXPECT_TRUE(processes_matching("sleep 777").empty());
  expect_nothing_left(output, run.stderr_text);
}

TEST_F(DumpSafetyIntegration, AnOutputThatIsADirectoryIsRefusedBeforeTheRestore) {
  const std::string output = cluster_->get("OUTPUT_DIR") + "/a-directory";
  ASSERT_EQ(mkdir(output.c_str(), 0700), 0);
  auto args = dump_args(cluster_->target(), output);
  args.push_back("--overwrite");
  const auto run = run_agent(args);
  EXPECT_EQ(run.exit_code, kExitUsage) << run.stderr_text;
  EXPECT_TRUE(contains(run.stderr_text, output + " is a directory")) << run.stderr_text;
  EXPECT_FALSE(contains(run.stderr_text, "restore: started"));
}

// Every path under `dir` with its size and modification time: "untouched" is this, unchanged.
std::map<std::string, std::string> tree_snapshot(const std::string& dir) {
  std::map<std::string, std::string> snapshot;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    if (lstat(it->path().c_str(), &st) == 0)
      snapshot[it->path().string()] = std::to_string(st.st_size) + "@" + std::to_string(st.st_mtim.tv_sec) +
                                      "." + std::to_string(st.st_mtim.tv_nsec);
  }
  return snapshot;
}

TEST_F(DumpSafetyIntegration, AMisspeltDatabaseIsRefusedInTheCheckStepNamingTheSetsDatabases) {
  const std::string output = cluster_->get("OUTPUT_DIR") + "/misspelt.sql";
  const std::string scratch = cluster_->get("SCRATCH");
  const bool scratch_existed = fs::exists(scratch);
  const auto before = tree_snapshot(scratch);
  const auto archive_before = cluster_->archive_files();
  auto args = dump_args(cluster_->target(), output);
  args.insert(args.end(), {"--database", "apu"});
  const auto start = Steady::now();
  const auto run = run_agent(args);
  EXPECT_EQ(run.exit_code, kExitUsage) << run.stderr_text;
  // The fixture's set before its target is the full backup, taken before api was created.
  EXPECT_TRUE(std::regex_search(
      run.stderr_text, std::regex("database 'apu' is not in backup set [0-9]{8}-[0-9]{6}F[_0-9I]* "
                                  "\\(it holds postgres\\) and the live server has no such database")))
      << run.stderr_text;
  EXPECT_TRUE(contains(run.stderr_text, "choose --database from: postgres (or, made after backup set"))
      << run.stderr_text;
  EXPECT_TRUE(contains(run.stderr_text, ", api)")) << run.stderr_text;
  EXPECT_TRUE(contains(run.stderr_text, "check: failed")) << run.stderr_text;
  EXPECT_FALSE(contains(run.stderr_text, "prepare: started"));
  EXPECT_FALSE(contains(run.stderr_text, "restore: started"));
  EXPECT_FALSE(contains(run.stderr_text, "pgbackrest restore")) << "no restore ran";
  EXPECT_LT(seconds_since(start), 20);
  EXPECT_EQ(fs::exists(scratch), scratch_existed);
  EXPECT_EQ(tree_snapshot(scratch), before) << "the scratch directory was touched";
  EXPECT_EQ(cluster_->archive_files(), archive_before);
  expect_nothing_left(output, run.stderr_text);

  // Case matters in PostgreSQL's names; the hint says which one was meant.
  args = dump_args(cluster_->target(), output);
  args.insert(args.end(), {"--database", "API"});
  const auto cased = run_agent(args);
  EXPECT_EQ(cased.exit_code, kExitUsage) << cased.stderr_text;
  EXPECT_TRUE(contains(cased.stderr_text, "did you mean --database api?")) << cased.stderr_text;
  EXPECT_FALSE(contains(cased.stderr_text, "restore: started"));
}

// The ids of public.events on the live server now.
std::set<int> live_event_ids(const std::function<std::string(const std::string&)>& query_api) {
  std::set<int> ids;
  std::istringstream in(query_api("SELECT string_agg(id::text, ' ' ORDER BY id) FROM events"));
  for (int id; in >> id;) ids.insert(id);
  return ids;
}

TEST_F(DumpSafetyIntegration, TargetLatestGivesEveryRowArchivedBeforeTheDumpBeganAndNeverPromotes) {
  cluster_->sql("api", "INSERT INTO events(id, phase) SELECT g, 'latest' FROM generate_series(5001, 5010) g");
  switch_wal_and_wait();
  const auto expected = live_event_ids([](const std::string& sql) { return query("api", sql); });
  const auto archive_before = cluster_->archive_files();
  const std::string output = cluster_->get("OUTPUT_DIR") + "/latest.sql";
  const auto run = run_agent(dump_args("latest", output));
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_EQ(events_in_dump(read_file(output)).ids, expected);
  EXPECT_TRUE(events_in_dump(read_file(output)).ids.count(5010));
  const auto manifest = nlohmann::json::parse(read_file(output + ".manifest.json"));
  EXPECT_EQ(manifest["target_type"], "latest") << manifest.dump(2);
  // Nothing of the copy reached the live archive: no .history file, no new timeline.
  EXPECT_EQ(cluster_->archive_files(), archive_before);
  EXPECT_EQ(query("postgres", "SELECT timeline_id FROM pg_control_checkpoint()"), "1");
}

TEST_F(DumpSafetyIntegration, AnLsnARestorePointAndATransactionTargetEachStopWhereTheySay) {
  cluster_->sql("api", "INSERT INTO events(id, phase) VALUES (6001, 'lsn before')");
  const std::string lsn = query("postgres", "SELECT pg_current_wal_insert_lsn()");
  cluster_->sql("api", "INSERT INTO events(id, phase) VALUES (6002, 'lsn after')");
  cluster_->sql("api", "INSERT INTO events(id, phase) VALUES (7001, 'point before')");
  cluster_->sql("postgres", "SELECT pg_create_restore_point('agent-test_point.1')");
  cluster_->sql("api", "INSERT INTO events(id, phase) VALUES (7002, 'point after')");
  const std::string xid = query("api",
                                "WITH added AS (INSERT INTO events(id, phase) VALUES (8001, 'xid itself') "
                                "RETURNING txid_current()::text AS xid) SELECT xid FROM added");
  cluster_->sql("api", "INSERT INTO events(id, phase) VALUES (8002, 'xid after')");
  switch_wal_and_wait();

  const std::string output = cluster_->get("OUTPUT_DIR") + "/kinds.sql";
  struct Case {
    std::string target;
    int last_in;
    int first_out;
    std::string type;
  };
  for (const auto& c :
       {Case{"lsn:" + lsn, 6001, 6002, "lsn"}, Case{"name:agent-test_point.1", 7001, 7002, "name"},
        Case{"xid:" + xid, 8001, 8002, "xid"}}) {
    SCOPED_TRACE(c.target);
    auto args = dump_args(c.target, output);
    args.push_back("--overwrite");
    const auto run = run_agent(args);
    ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_TRUE(contains(run.stderr_text, "--type=" + c.type)) << run.stderr_text;
    const auto ids = events_in_dump(read_file(output)).ids;
    EXPECT_TRUE(ids.count(c.last_in)) << run.stderr_text;
    EXPECT_FALSE(ids.count(c.first_out)) << run.stderr_text;
    EXPECT_FALSE(ids.count(c.first_out + 1000));  // the next kind's rows come later still
    const auto manifest = nlohmann::json::parse(read_file(output + ".manifest.json"));
    EXPECT_EQ(manifest["target_type"], c.type);
  }

  // Values that could become options are refused before anything runs.
  for (const std::string bad : {"lsn:0/1 --delta", "name:--set=x", "xid:1;2", "name:a\nb"}) {
    const auto run = run_agent(dump_args(bad, output + ".bad"));
    EXPECT_EQ(run.exit_code, kExitUsage) << bad << run.stderr_text;
    EXPECT_FALSE(contains(run.stderr_text, "check: started")) << bad;
  }
  // A restore point that is not in the archived WAL: refused naming it, with the offer of latest.
  const auto missing = run_agent(dump_args("name:no-such-point", output + ".missing"));
  EXPECT_EQ(missing.exit_code, kExitTargetWindow) << missing.stderr_text;
  EXPECT_TRUE(contains(missing.stderr_text, "restore point 'no-such-point'")) << missing.stderr_text;
  EXPECT_TRUE(contains(missing.stderr_text, "--target latest")) << missing.stderr_text;
  expect_nothing_left(output + ".missing", missing.stderr_text);
}

}  // namespace
}  // namespace agent::testing
