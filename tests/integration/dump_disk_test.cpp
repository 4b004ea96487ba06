// The live volume protected: `agent dump` keeps a reserve free on every filesystem it writes to
// that the live cluster also uses. Against a real PostgreSQL 15 and pgBackRest repository, on a
// small filesystem the test makes: a tmpfs in the agent's own user and mount namespace.
//
// How the live cluster comes to use that filesystem: the test cluster's tablespace ts1 lives in
// DIR/ts1. In the namespace, a directory of the tmpfs is bind-mounted on DIR/ts1, so the agent,
// which finds the live tablespaces through the live data directory's pg_tblspc links and tells
// filesystems apart by device, sees that live tablespace on the same filesystem as its scratch
// directory and its dump, exactly as on a pod where /pgdata holds all three. The live server,
// outside the namespace, keeps its real directory, so it is never put at risk by the test; the
// test checks that it still runs, with the same postmaster, after the agent was stopped.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "config/config.hpp"
#include "harness.hpp"
#include "pipelines/dump_preflight.hpp"
#include "time/target_time.hpp"

namespace agent::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kExitEnvironment = 5;
constexpr std::uint64_t kMiB = 1024 * 1024;
// Rows of 4 MiB of one repeated letter: pglz compresses each to a few kilobytes on disk, and
// the plain dump writes them out in full. The dump then far outgrows the pre-flight's
// estimate (the restored size), as it can with compressible TOAST values in real life.
constexpr int kSqueezedRows = 150;
constexpr std::uint64_t kSqueezedRowBytes = 4 * kMiB;

bool write_proc_file(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

struct SmallDiskRun {
  AgentRun agent;
  std::set<std::string> left;  // what is on the small filesystem after the agent ended
};

// Runs the agent in its own user and mount namespace with a tmpfs of `size_bytes` on
// `small_dir`, in which it makes the directories `make` (`out/` for the dump by default). With
// `live_tablespace`, the tmpfs directory
// `live-ts1` is bind-mounted on it. After the agent ended, still in the namespace, lists the
// tmpfs.
SmallDiskRun run_on_small_disk(const std::vector<std::string>& args, const std::string& small_dir,
                               std::uint64_t size_bytes, const std::string& live_tablespace,
                               const std::vector<std::string>& make = {"out"}) {
  SmallDiskRun result;
  char out_template[] = "/tmp/agent-disk-out-XXXXXX";
  char err_template[] = "/tmp/agent-disk-err-XXXXXX";
  char list_template[] = "/tmp/agent-disk-list-XXXXXX";
  const int out_fd = mkstemp(out_template);
  const int err_fd = mkstemp(err_template);
  const int list_fd = mkstemp(list_template);
  std::vector<std::string> argv_strings{agent_binary()};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string uid_map = std::to_string(getuid()) + " " + std::to_string(getuid()) + " 1";
  const std::string gid_map = std::to_string(getgid()) + " " + std::to_string(getgid()) + " 1";
  const std::string options = "size=" + std::to_string(size_bytes / 1024) + "k";
  const std::string bind_source = small_dir + "/live-ts1";
  std::vector<std::string> make_dirs;
  for (const auto& dir : make) make_dirs.push_back(small_dir + "/" + dir);

  const pid_t pid = fork();
  if (pid == 0) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) _exit(90);
    if (!write_proc_file("/proc/self/setgroups", "deny") || !write_proc_file("/proc/self/uid_map", uid_map) ||
        !write_proc_file("/proc/self/gid_map", gid_map))
      _exit(91);
    if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(92);
    if (mount("tmpfs", small_dir.c_str(), "tmpfs", 0, options.c_str()) != 0) _exit(93);
    for (const auto& dir : make_dirs)
      if (mkdir(dir.c_str(), 0700) != 0) _exit(95);
    if (!live_tablespace.empty() &&
        (mkdir(bind_source.c_str(), 0700) != 0 ||
         mount(bind_source.c_str(), live_tablespace.c_str(), nullptr, MS_BIND, nullptr) != 0))
      _exit(96);
    const pid_t agent = fork();
    if (agent == 0) {
      dup2(out_fd, STDOUT_FILENO);
      dup2(err_fd, STDERR_FILENO);
      execv(argv[0], argv.data());
      _exit(94);
    }
    int status = 0;
    if (agent < 0 || waitpid(agent, &status, 0) != agent) _exit(97);
    std::string listing;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(small_dir, ec), end; !ec && it != end; it.increment(ec))
      listing += fs::relative(it->path(), small_dir).string() + "\n";
    [[maybe_unused]] auto written = write(list_fd, listing.data(), listing.size());
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 98);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.agent.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.agent.stdout_text = read_file(out_template);
  result.agent.stderr_text = read_file(err_template);
  std::istringstream lines(read_file(list_template));
  for (std::string line; std::getline(lines, line);) result.left.insert(line);
  for (int fd : {out_fd, err_fd, list_fd}) close(fd);
  for (const char* path : {out_template, err_template, list_template}) unlink(path);
  EXPECT_LT(result.agent.exit_code, 90)
      << "could not set up the small disk (step " << result.agent.exit_code << ")";
  return result;
}

long live_postmaster_pid(const TestCluster& cluster) {
  std::ifstream file(cluster.get("DATA") + "/postmaster.pid");
  long pid = 0;
  file >> pid;
  return pid;
}

class DumpDiskIntegration : public ClusterSuite<DumpDiskIntegration> {
 public:
  static constexpr int kBulkMb = 0;

  static void SetUpTestSuite() {
    ClusterSuite<DumpDiskIntegration>::SetUpTestSuite();
    if (!cluster_->dir().empty()) add_squeezed_rows();
  }

 protected:
  // A table whose dump is much larger than its size on disk, then a target after it, a commit
  // after the target (so that recovery stops there) and that WAL archived.
  static void add_squeezed_rows() {
    cluster_->sql("api", "CREATE TABLE squeezed(id int PRIMARY KEY, body text NOT NULL)");
    cluster_->sql("api", "INSERT INTO squeezed SELECT g, repeat('x', " + std::to_string(kSqueezedRowBytes) +
                             ") FROM generate_series(1, " + std::to_string(kSqueezedRows) + ") g");
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    squeezed_target_ =
        format_for_pgbackrest(std::chrono::floor<Microseconds>(std::chrono::system_clock::now()));
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    cluster_->sql("api", "INSERT INTO events(id, phase) VALUES (1000, 'after squeezed')");
    const auto check =
        run_or_fail({"pgbackrest", "--config=" + cluster_->get("PGBACKREST_CONFIG"), "--stanza=db", "check"});
    EXPECT_TRUE(check.succeeded()) << check.error_excerpt(5);
  }

  // A config for the small disk: scratch in it, the given reserve in MiB and keep_scratch.
  static std::string config_for(const std::string& name, const std::string& small_dir, int reserve_mb,
                                const std::string& keep_scratch, const std::string& scratch = "") {
    std::ostringstream yaml;
    yaml << "stanza: db\n"
         << "pgbackrest:\n  config: " << cluster_->get("PGBACKREST_CONFIG") << "\n"
         << "postgres:\n  bindir: " << cluster_->get("BINDIR") << "\n  data: " << cluster_->get("DATA")
         << "\n  host: " << cluster_->get("SOCKET_DIR") << "\n  port: " << cluster_->get("PORT")
         << "\n  user: postgres\n"
         << "restore:\n  scratch: " << (scratch.empty() ? small_dir + "/scratch" : scratch)
         << "\n  port: " << cluster_->get("SCRATCH_PORT") << "\n  keep_scratch: " << keep_scratch << "\n"
         << "dump:\n  database: api\n"
         << "disk:\n  reserve_percent: 0\n  reserve_mb: " << reserve_mb << "\n";
    const std::string path = cluster_->dir() + "/" + name;
    write_file(path, yaml.str());
    return path;
  }

  // What the pre-flight counts for a dump at `target` to a file, computed from the same
  // repository with the agent's own function: the restore, the WAL to replay, the spill, the dump.
  static std::uint64_t preflight_need(const std::string& config_path, const std::string& target) {
    auto load = load_config(config_path, true, {});
    EXPECT_TRUE(load.issues.empty());
    DumpArguments arguments;
    arguments.target = target;
    arguments.output = "/unused/dump.sql";
    auto job = build_dump_job(load.config, arguments);
    EXPECT_TRUE(job.ok()) << (job.ok() ? "" : job.error().describe());
    auto runner = make_posix_process_runner();
    ProcessSpec spec;
    spec.argv = {"pgbackrest", "--config=" + cluster_->get("PGBACKREST_CONFIG"), "--stanza=db",
                 "--output=json", "info"};
    spec.stdout_mode = StdoutMode::capture;
    auto info = runner->run(spec, CancelToken::never());
    EXPECT_TRUE(info.ok() && info->succeeded());
    if (!job.ok() || !info.ok()) return 0;
    auto stanzas = parse_info_json(info->stdout_text);
    EXPECT_TRUE(stanzas.ok() && stanzas->size() == 1);
    if (!stanzas.ok() || stanzas->empty()) return 0;
    const auto* chosen = backup_for_target(stanzas->front(), job->target.instant, std::nullopt);
    EXPECT_NE(chosen, nullptr);
    if (chosen == nullptr) return 0;
    const auto estimate = estimate_disk_use(stanzas->front(), *chosen, *job, 16 * kMiB);
    return estimate.restore + estimate.wal + estimate.spill + estimate.dump;
  }

  static std::string make_small_dir(const std::string& name) {
    const std::string dir = cluster_->dir() + "/" + name;
    EXPECT_EQ(mkdir(dir.c_str(), 0700), 0);
    return dir;
  }

  static std::vector<std::string> dump_args(const std::string& config, const std::string& target,
                                            const std::string& output) {
    return {"dump", "--config", config, "--target", target, "--output", output};
  }

  static bool contains(const std::string& text, const std::string& needle) {
    return text.find(needle) != std::string::npos;
  }

  inline static std::string squeezed_target_;
};

TEST_F(DumpDiskIntegration, ADumpThatWouldCutIntoTheReserveIsRefusedBeforeAnythingIsWritten) {
  const std::string small = make_small_dir("small-refused");
  const std::string config = config_for("disk-refused.yaml", small, 64, "auto");
  const std::uint64_t need = preflight_need(config, cluster_->target());
  ASSERT_GT(need, 0u);
  const auto archive_before = cluster_->archive_files();
  // Room for everything the dump may write, but not for that and the 64 MiB reserve.
  const auto run = run_on_small_disk(dump_args(config, cluster_->target(), small + "/out/refused.sql"), small,
                                     need + 32 * kMiB, cluster_->get("TABLESPACE_DIR"));
  EXPECT_EQ(run.agent.exit_code, kExitEnvironment) << run.agent.stderr_text;
  const auto& log = run.agent.stderr_text;
  EXPECT_TRUE(contains(log, "would cut into the 64.0 MiB kept free for the live cluster on " + small)) << log;
  EXPECT_TRUE(contains(log, "the scratch directory and the dump, and the live tablespace")) << log;
  EXPECT_TRUE(contains(log, cluster_->get("TABLESPACE_DIR"))) << log;
  EXPECT_TRUE(contains(log, "HINT: nothing was written")) << log;
  EXPECT_FALSE(contains(log, "prepare: started")) << log;
  // Nothing was written on the small filesystem: only what the test made there.
  EXPECT_EQ(run.left, (std::set<std::string>{"live-ts1", "out"}));
  EXPECT_TRUE(processes_matching(small + "/").empty());
  EXPECT_EQ(cluster_->archive_files(), archive_before);

  // The same disk without the reserve's part in it: the dump goes through (the refusal was the
  // reserve, not a lack of room).
  const std::string roomy = make_small_dir("small-roomy");
  const std::string roomy_config = config_for("disk-roomy.yaml", roomy, 64, "auto");
  const auto ok = run_on_small_disk(dump_args(roomy_config, cluster_->target(), roomy + "/out/ok.sql"), roomy,
                                    preflight_need(roomy_config, cluster_->target()) + 96 * kMiB,
                                    cluster_->get("TABLESPACE_DIR"));
  EXPECT_EQ(ok.agent.exit_code, 0) << ok.agent.stderr_text;
  EXPECT_TRUE(ok.left.count("out/ok.sql")) << ok.agent.stderr_text;
  // The default keeps no copy on a filesystem the live cluster uses.
  EXPECT_FALSE(ok.left.count("scratch/data")) << ok.agent.stderr_text;
  EXPECT_TRUE(contains(ok.agent.stderr_text, "removed the restored copy from " + roomy + "/scratch"))
      << ok.agent.stderr_text;
}

TEST_F(DumpDiskIntegration, ADumpThatCrossesTheReserveWhileItRunsIsStoppedAndCleanedUp) {
  ASSERT_FALSE(squeezed_target_.empty());
  const std::string small = make_small_dir("small-crossing");
  // The reserve is large next to what a dump writes in the watchdog's quarter of a second.
  constexpr int kReserveMb = 384;
  // keep_scratch: always, to show that a copy on a filesystem that fell below the reserve is
  // removed whatever the setting.
  const std::string config = config_for("disk-crossing.yaml", small, kReserveMb, "always");
  const std::uint64_t need = preflight_need(config, squeezed_target_);
  ASSERT_GT(need, 0u);
  // The dump must outgrow its estimate by more than the margin left above the reserve.
  ASSERT_GT(kSqueezedRows * kSqueezedRowBytes, need + 160 * kMiB) << "make the squeezed rows larger";
  const long postmaster = live_postmaster_pid(*cluster_);
  ASSERT_GT(postmaster, 0);
  const auto archive_before = cluster_->archive_files();
  const std::string output = small + "/out/crossing.sql";
  const auto run = run_on_small_disk(dump_args(config, squeezed_target_, output), small,
                                     need + (kReserveMb + 32) * kMiB, cluster_->get("TABLESPACE_DIR"));
  const auto& log = run.agent.stderr_text;
  EXPECT_EQ(run.agent.exit_code, kExitEnvironment) << log;
  // Pre-flight passed; the watchdog stopped the job while it ran, and said why.
  EXPECT_TRUE(contains(log, "keeping 384.0 MiB free on " + small)) << log;
  EXPECT_TRUE(contains(log, "free space on " + small)) << log;
  EXPECT_TRUE(contains(log, "below the 384.0 MiB kept free for the live cluster")) << log;
  EXPECT_TRUE(contains(log, "live tablespace")) << log;
  EXPECT_FALSE(contains(log, "No space left on device")) << "the disk filled before the watchdog acted:\n"
                                                         << log;
  // Cleaned up: no dump, no partial dump, no copy (even with keep_scratch: always), no process.
  EXPECT_TRUE(contains(log, "removed the partial dump")) << log;
  EXPECT_TRUE(contains(
      log, "removed the restored copy from " + small + "/scratch: free space on its filesystem fell below"))
      << log;
  EXPECT_FALSE(run.left.count("out/crossing.sql"));
  EXPECT_FALSE(run.left.count("out/crossing.sql.partial"));
  EXPECT_FALSE(run.left.count("scratch/data")) << "the copy was left behind";
  EXPECT_FALSE(run.left.count("scratch/tablespaces"));
  EXPECT_TRUE(processes_matching(small + "/").empty()) << "the scratch server or pg_dump is still running";
  // The live server keeps running, the same postmaster, and the copy added nothing to the archive.
  EXPECT_EQ(live_postmaster_pid(*cluster_), postmaster);
  EXPECT_EQ(kill(static_cast<pid_t>(postmaster), 0), 0);
  cluster_->sql("api", "SELECT count(*) FROM events");
  EXPECT_EQ(cluster_->archive_files(), archive_before);
}

TEST_F(DumpDiskIntegration, TheCopyIsKeptForTheNextDeltaOnlyOffTheLiveVolumeOrWhenAskedTo) {
  // Scratch on a filesystem the live cluster does not use, the root of a fresh volume (with
  // lost+found, as ext4 makes it): auto keeps the copy there. The dump goes to the live volume.
  const std::string own = make_small_dir("small-own");
  const std::string own_config = config_for("disk-own.yaml", own, 64, "auto", own);
  const std::string own_output = cluster_->get("OUTPUT_DIR") + "/own.sql";
  const auto kept =
      run_on_small_disk(dump_args(own_config, cluster_->target(), own_output), own,
                        preflight_need(own_config, cluster_->target()) + 96 * kMiB, "", {"lost+found"});
  EXPECT_EQ(kept.agent.exit_code, 0) << kept.agent.stderr_text;
  EXPECT_TRUE(file_exists(own_output));
  EXPECT_TRUE(kept.left.count("data/PG_VERSION")) << kept.agent.stderr_text;
  EXPECT_TRUE(contains(kept.agent.stderr_text, "the restored copy stays in " + own + " "))
      << kept.agent.stderr_text;
  EXPECT_FALSE(contains(kept.agent.stderr_text, "free on " + own)) << "nothing live to watch there";
  EXPECT_TRUE(contains(kept.agent.stderr_text, "(the dump, and the live data directory"))
      << kept.agent.stderr_text;

  // On the live volume with restore.keep_scratch: always: kept, and said so.
  const std::string shared = make_small_dir("small-always");
  const std::string shared_config = config_for("disk-always.yaml", shared, 64, "always");
  const auto always = run_on_small_disk(
      dump_args(shared_config, cluster_->target(), shared + "/out/always.sql"), shared,
      preflight_need(shared_config, cluster_->target()) + 96 * kMiB, cluster_->get("TABLESPACE_DIR"));
  EXPECT_EQ(always.agent.exit_code, 0) << always.agent.stderr_text;
  EXPECT_TRUE(always.left.count("scratch/data/PG_VERSION")) << always.agent.stderr_text;
  EXPECT_TRUE(contains(always.agent.stderr_text, "restore.keep_scratch: always")) << always.agent.stderr_text;
}

}  // namespace
}  // namespace agent::testing
