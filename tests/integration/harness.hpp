#pragma once
// The integration harness: a real PostgreSQL 15 cluster and pgBackRest repository built by
// tests/support/make-cluster.sh, and the real agent binary run as a child process.
#include <sys/types.h>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "exec/process.hpp"
#include "pgbackrest/info.hpp"

namespace agent::testing {

class TestCluster {
 public:
  // Builds a cluster in a fresh temporary directory; fails the test on error. `repo2`: a second
  // repository (make-cluster.sh --repo2).
  static TestCluster create(int bulk_mb = 0, bool repo2 = false);
  // With more make-cluster.sh options, e.g. {"--data-checksums", "--amcheck"}.
  static TestCluster create_with(int bulk_mb, const std::vector<std::string>& options);
  void destroy();

  std::string get(const std::string& key) const;  // a cluster.env value
  std::string dir() const { return get("DIR"); }
  std::string target() const { return get("TARGET"); }
  // Runs one SQL statement on the live server through psql; fails the test on error.
  void sql(const std::string& database, const std::string& statement) const;
  // One statement's result on the live server (psql -At), trailing blanks and newlines removed;
  // fails the test on error.
  std::string query(const std::string& database, const std::string& statement) const;
  // The backups pgBackRest lists for the stanza, oldest first.
  std::vector<BackupRecord> backups() const;
  // Files under the repository's archive directory: the copy must never add any.
  std::set<std::string> archive_files() const;

 private:
  std::map<std::string, std::string> env_;
};

struct AgentRun {
  int exit_code = -1;
  std::string stdout_text;
  std::string stderr_text;
};

// Runs build/bin/agent with `args`; stdin is /dev/null.
AgentRun run_agent(const std::vector<std::string>& args);
// Starts it and returns at once; `on_stderr_line` sees each line it logs.
// `wrapper` runs before the agent, e.g. {"prlimit", "--nofile=256:256", "--"}.
Result<std::unique_ptr<RunningProcess>> start_agent(const std::vector<std::string>& args,
                                                    std::function<void(std::string_view)> on_stderr_line,
                                                    const std::vector<std::string>& wrapper = {});
// Runs a program (its output goes to the log); fails the test if it cannot be started.
ProcessResult run_or_fail(const std::vector<std::string>& argv);

// The path of the agent binary under test.
std::string agent_binary();

// Runs the agent in its own user and mount namespace, with a tmpfs of `size_kib` mounted on
// the existing, empty directory `small_dir`: a real small disk without root.
AgentRun run_agent_on_small_disk(const std::vector<std::string>& args, const std::string& small_dir,
                                 int size_kib);

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string body;
};
// A plain HTTP/1.1 GET to 127.0.0.1:port.
HttpReply http_get(int port, const std::string& target);
// A free TCP port on loopback (released again: a small race, fine for tests).
int free_port();

// Processes whose command line contains `needle` (excluding zombies).
std::vector<pid_t> processes_matching(const std::string& needle);

struct DumpRows {
  std::set<int> ids;
  std::set<std::string> phases;
};
// The rows of public.events in a plain dump.
DumpRows events_in_dump(const std::string& dump_text);
// Each table's COPY block of a plain dump (its rows through "\."), by its COPY line.
std::map<std::string, std::string> copy_blocks(const std::string& dump);
// The runbook's check: rows 1..100 (written before the target) and none written after it.
void expect_rows_at_target(const std::string& dump_text);
// `promtool check metrics` accepts `scrape` (written to `file` for it).
void expect_promtool_accepts(const std::string& scrape, const std::string& file);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);
// Replaces the annotations in a Downward API volume directory the way the kubelet does: a new
// timestamped directory, `..data` swapped to it by rename, the old one removed.
// Writes `file` in `dir` as the kubelet updates a ConfigMap or Downward API volume: a new
// timestamped directory, the `..data` link swapped to it, `file` a link into `..data`.
void write_like_kubelet(const std::string& dir, const std::string& file, const std::string& content);
void write_annotations_like_kubelet(const std::string& dir, const std::string& content);
// Polls `condition` every 200 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& condition, std::chrono::seconds timeout);
bool file_exists(const std::string& path);
// pgBackRest's own 2.56.0 (PGO's), built once by tests/support/build-pgbackrest.sh: the path it
// prints, or empty when the build failed.
std::string built_pgbackrest_256();
// A TCP listener on a free loopback port, held open until destroyed.
class PortHolder {
 public:
  PortHolder();
  ~PortHolder();
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A running `agent run` (started and waited for until it listens), its log collected; stopped
// with SIGTERM when it goes out of scope.
class RunningAgent {
 public:
  explicit RunningAgent(const std::string& config_path, const std::vector<std::string>& wrapper = {});
  ~RunningAgent();
  std::string log();
  bool log_contains(const std::string& text);
  RunningProcess& process() { return *process_; }

 private:
  std::mutex mutex_;
  std::string log_;
  std::unique_ptr<RunningProcess> process_;
};

// A test suite sharing one cluster, built before its first test and removed after its last.
// `Suite::kBulkMb` sizes the bulk table (0: none); a suite with `Suite::kRepo2` true gets a
// second repository. Tests skip when the cluster could not be built.
template <typename Suite>
class ClusterSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bool repo2 = false;
    if constexpr (requires { Suite::kRepo2; }) repo2 = Suite::kRepo2;
    std::vector<std::string> options;  // more make-cluster.sh options: Suite::kClusterOptions
    if constexpr (requires { Suite::kClusterOptions; })
      options.assign(Suite::kClusterOptions.begin(), Suite::kClusterOptions.end());
    if (repo2) options.emplace_back("--repo2");
    cluster_ = new TestCluster(TestCluster::create_with(Suite::kBulkMb, options));
  }
  static void TearDownTestSuite() {
    cluster_->destroy();
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    if (cluster_->dir().empty())
      GTEST_SKIP() << "the test cluster could not be built (see the first failure)";
  }
  inline static TestCluster* cluster_ = nullptr;
};

}  // namespace agent::testing
