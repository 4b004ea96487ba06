// Crunchy PGO's repository-host topology on loopback (tests/support/make-pgo-topology.sh): a
// database pod and a repository host, each running `pgbackrest server` over TLS with PGO's config
// layout, both with the pgBackRest PGO 5.8 and 6.0 ship (2.56.0, built from source by
// tests/support/build-pgbackrest.sh, cached), and the real agent on the database pod.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "exec/process.hpp"
#include "harness.hpp"
#include "pgbackrest/info.hpp"

namespace agent::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kExitEnvironment = 5;
constexpr int kExitExternalTool = 6;

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// Runs a program with its stdout captured (stderr goes to the log); fails the test if it cannot
// be started.
ProcessResult capture(const std::vector<std::string>& argv, std::chrono::minutes timeout) {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = argv;
  spec.tag = fs::path(argv.size() > 1 && argv[0] == "bash" ? argv[1] : argv[0]).filename().string();
  spec.stdout_mode = StdoutMode::capture;
  spec.timeout = timeout;
  auto result = runner->run(spec, CancelToken::never());
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().describe());
  return result.ok() ? *result : ProcessResult{};
}

class PgoTopologyIntegration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() == 0) {
      ADD_FAILURE() << "PostgreSQL refuses root: run the integration tests as an ordinary user "
                       "(tests/run-all.sh drops to agentci)";
      return;
    }
    // Reuses the cached build (tests/run-all.sh makes it as root first; ctest's pgbackrest.build
    // fixture otherwise), so this takes milliseconds, or about a minute on a cold cache.
    const auto built =
        capture({"bash", AGENT_SOURCE_DIR "/tests/support/build-pgbackrest.sh"}, std::chrono::minutes(30));
    if (!built.succeeded()) {
      ADD_FAILURE() << "build-pgbackrest.sh " << built.describe() << ": " << built.error_excerpt(10);
      return;
    }
    const std::string pgbackrest = trim(built.stdout_text);
    char pattern[] = "/tmp/agent-pgo-XXXXXX";
    const char* dir = mkdtemp(pattern);
    if (dir == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
      return;
    }
    dir_ = dir;
    const auto made = run_or_fail(
        {AGENT_SOURCE_DIR "/tests/support/make-pgo-topology.sh", "--dir", dir_, "--pgbackrest", pgbackrest});
    if (!made.succeeded()) {
      ADD_FAILURE() << "make-pgo-topology.sh " << made.describe() << ": " << made.error_excerpt(10);
      return;
    }
    std::ifstream env(dir_ + "/topology.env");
    std::string line;
    while (std::getline(env, line)) {
      const auto eq = line.find('=');
      if (eq != std::string::npos) env_[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }

  static void TearDownTestSuite() {
    if (dir_.empty()) return;
    // Stops PostgreSQL, both pgBackRest servers and anything else running from the directory; it
    // is removed only when the topology was built (else make-pgo-topology.sh left it to inspect).
    std::vector<std::string> stop{AGENT_SOURCE_DIR "/tests/support/stop-cluster.sh", "--dir", dir_};
    if (!env_.empty()) stop.push_back("--remove");
    run_or_fail(stop);
    EXPECT_TRUE(processes_matching(dir_ + "/").empty()) << "a process of the topology outlived the suite";
    env_.clear();
    dir_.clear();
  }

  void SetUp() override {
    if (env_.empty()) GTEST_SKIP() << "the topology could not be built (see the first failure)";
  }

  static std::string get(const std::string& key) {
    const auto it = env_.find(key);
    return it == env_.end() ? std::string() : it->second;
  }

  // The version number `pgbackrest version` printed for the topology's binary, e.g. "2.56.0".
  static std::string version() { return get("PGBACKREST_VERSION").substr(std::string("pgBackRest ").size()); }

  // The backups `pgbackrest info` lists on the repository host, oldest first.
  static std::vector<BackupRecord> repository_host_backups() {
    const auto info = capture({get("PGBACKREST_BIN"), "--config-path=" + get("REPO_CONFIG_PATH"),
                               "--stanza=" + get("STANZA"), "--output=json", "info"},
                              std::chrono::minutes(1));
    EXPECT_TRUE(info.succeeded()) << info.error_excerpt(5);
    auto stanzas = parse_info_json(info.stdout_text);
    if (!stanzas || stanzas->size() != 1) {
      ADD_FAILURE() << "pgbackrest info on the repository host: " << info.stdout_text;
      return {};
    }
    EXPECT_EQ(stanzas->front().status_code, 0) << stanzas->front().status_message;
    return stanzas->front().backups;
  }

  static std::set<std::string> repository_archive_files() {
    std::set<std::string> files;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(get("REPO_PATH") + "/archive", ec), end; !ec && it != end;
         it.increment(ec))
      files.insert(it->path().string());
    return files;
  }

  // An `agent run` config for the database pod in a directory of its own: PGO's layout found by
  // pgBackRest itself (pgbackrest.config_path is the pod's /etc/pgbackrest), `extra` appended.
  static std::string run_config(const std::string& name, const std::string& pgbackrest_bin,
                                const std::string& extra) {
    const std::string dir = get("DIR") + "/" + name;
    fs::create_directories(dir);
    const std::string path = dir + "/agent.yaml";
    write_file(
        path, "stanza: " + get("STANZA") + "\nstate_dir: " + dir +
                  "/state\npgbackrest:\n  bin: " + pgbackrest_bin +
                  "\n  config_path: " + get("DB_CONFIG_PATH") + "\npostgres:\n  bindir: " + get("BINDIR") +
                  "\n  data: " + get("DATA") + "\n  host: " + get("SOCKET_DIR") + "\n  port: " + get("PORT") +
                  "\n  user: postgres\ncontrol:\n  socket: " + dir +
                  "/agent.sock\nhttp:\n  listen: 127.0.0.1:" + std::to_string(free_port()) + "\n" + extra);
    return path;
  }

  static nlohmann::json status_of(const std::string& config) {
    const auto run = run_agent({"status", "--json", "--config", config});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    auto parsed = nlohmann::json::parse(run.stdout_text, nullptr, false);
    return parsed.is_discarded() ? nlohmann::json::object() : parsed;
  }

  inline static std::string dir_;
  inline static std::map<std::string, std::string> env_;
};

constexpr const char* kBackupAnnotation = "postgres-operator.crunchydata.com/pgbackrest-backup";

TEST_F(PgoTopologyIntegration, BackupsFromTheDatabasePodLandInTheRepositoryHostsRepository) {
  EXPECT_EQ(get("PGBACKREST_VERSION"), "pgBackRest 2.56.0");
  // Both pods serve TLS with that version, and the live server archives through it.
  for (const char* pod : {"/db/server.log", "/repo/server.log"})
    EXPECT_NE(read_file(get("DIR") + pod).find("server command begin " + version()), std::string::npos)
        << pod;
  EXPECT_NE(
      read_file(get("DATA") + "/postgresql.conf").find("archive_command = '" + get("PGBACKREST_BIN") + " "),
      std::string::npos);

  // stanza-create, the full and the incremental backup ran on the database pod (pgBackRest >= 2.55
  // backs up to a remote repository)...
  ASSERT_EQ(get("BACKUP_FROM"), "db");
  const std::string db_log = read_file(get("DIR") + "/db/pgdata/pgbackrest/log/db-backup.log");
  EXPECT_NE(db_log.find("backup command begin " + version()), std::string::npos);
  EXPECT_NE(db_log.find("--repo1-host-type=tls"), std::string::npos);
  // ...and wrote into the repository host's repository, which is where `pgbackrest info` run on
  // the repository host finds them.
  const auto backups = repository_host_backups();
  ASSERT_EQ(backups.size(), 2u);
  EXPECT_EQ(backups[0].type, "full");
  EXPECT_EQ(backups[1].type, "incr");
  EXPECT_TRUE(file_exists(get("REPO_PATH") + "/backup/" + get("STANZA") + "/" + backups[1].label));
}

TEST_F(PgoTopologyIntegration, DumpAtTheTargetFromTheDatabasePod) {
  const auto archive_before = repository_archive_files();
  // The live archive-push's queue in PGO's spool-path (archive-async=y): a restore empties the
  // queue in the spool it is given, so the agent's must be given its own.
  const std::string live_queue = get("DIR") + "/db/pgdata/pgbackrest-spool/archive/" + get("STANZA") + "/out";
  ASSERT_TRUE(file_exists(live_queue));
  const std::string output = get("OUTPUT_DIR") + "/pgo.sql";
  const auto run =
      run_agent({"dump", "--config", get("AGENT_CONFIG"), "--target", get("TARGET"), "--output", output});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  // The restore and the copy's archive-get went to the repository host over TLS, with 2.56.0.
  EXPECT_NE(run.stderr_text.find("restore command begin " + version()), std::string::npos) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("--repo1-host-type=tls"), std::string::npos);
  expect_rows_at_target(read_file(output));
  EXPECT_TRUE(file_exists(live_queue)) << "the restore emptied the live spool";
  EXPECT_NE(run.stderr_text.find("--spool-path=" + get("SCRATCH") + "/pgbackrest/spool"), std::string::npos);
  EXPECT_EQ(repository_archive_files(), archive_before) << "the copy archived into the live repository";
  EXPECT_TRUE(processes_matching(get("SCRATCH") + "/").empty());
}

TEST_F(PgoTopologyIntegration, AgentBackupFromTheDatabasePodLandsInTheRepositoryHostsRepository) {
  const auto before = repository_host_backups();
  ASSERT_FALSE(before.empty());
  // No `agent run`: the agent runs the backup itself.
  const auto run = run_agent({"backup", "--type", "incr", "--config", get("AGENT_CONFIG")});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("running the backup directly"), std::string::npos) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("backup command begin " + version()), std::string::npos);
  const auto after = repository_host_backups();
  ASSERT_EQ(after.size(), before.size() + 1);
  EXPECT_EQ(after.back().type, "incr");
  EXPECT_TRUE(std::none_of(before.begin(), before.end(),
                           [&](const BackupRecord& b) { return b.label == after.back().label; }));
  // The live server's archive_command never failed, whatever ran before (a dump's restore that
  // emptied the live spool made it wait for archive-timeout and fail).
  const auto archiver =
      capture({get("BINDIR") + "/psql", "-X", "-A", "-t", "-h", get("SOCKET_DIR"), "-p", get("PORT"), "-U",
               "postgres", "-d", "postgres", "-c", "SELECT failed_count FROM pg_stat_archiver"},
              std::chrono::minutes(1));
  EXPECT_EQ(trim(archiver.stdout_text), "0") << read_file(get("POSTGRES_LOG"));
}

// A restore drill from the database pod: restored over TLS from the repository host, the set
// verified there by 2.56.0's `verify --set`, and the drill's result annotated on the set in the
// repository host's backup.info (annotate, like backup, works on the remote repository).
TEST_F(PgoTopologyIntegration, DrillFromTheDatabasePodIsRecordedOnTheRepositoryHostsSet) {
  const auto archive_before = repository_archive_files();
  const auto run = run_agent({"drill", "--config", get("AGENT_CONFIG"), "--latest"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("restore command begin " + version()), std::string::npos) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("pgbackrest-verify: passed"), std::string::npos) << run.stderr_text;
  const std::string marker = "is recorded on backup set ";
  const auto at = run.stderr_text.find(marker);
  ASSERT_NE(at, std::string::npos) << run.stderr_text;
  const auto from = at + marker.size();
  const std::string label = run.stderr_text.substr(from, run.stderr_text.find(' ', from) - from);

  const auto info = capture({get("PGBACKREST_BIN"), "--config-path=" + get("REPO_CONFIG_PATH"),
                             "--stanza=" + get("STANZA"), "--output=json", "info"},
                            std::chrono::minutes(1));
  ASSERT_TRUE(info.succeeded()) << info.error_excerpt(5);
  const auto stanzas = nlohmann::json::parse(info.stdout_text, nullptr, false);
  ASSERT_TRUE(stanzas.is_array() && stanzas.size() == 1) << info.stdout_text;
  nlohmann::json annotations;
  for (const auto& set : stanzas[0].value("backup", nlohmann::json::array()))
    if (set.value("label", "") == label) annotations = set.value("annotation", nlohmann::json::object());
  ASSERT_TRUE(annotations.is_object())
      << "no set " << label << " on the repository host: " << info.stdout_text;
  EXPECT_EQ(annotations.value("agent-drill-result", ""), "passed") << annotations.dump();

  EXPECT_EQ(repository_archive_files(), archive_before) << "the drill archived into the live repository";
  EXPECT_TRUE(processes_matching(get("SCRATCH") + "/").empty());
}

TEST_F(PgoTopologyIntegration, DebiansPgBackRestIsRefusedAsAVersionMismatch) {
  const std::string debian = get("DEBIAN_PGBACKREST");
  if (!file_exists(debian)) GTEST_SKIP() << debian << " is not installed (Debian package pgbackrest)";
  const std::string debian_version = trim(capture({debian, "version"}, std::chrono::minutes(1)).stdout_text)
                                         .substr(std::string("pgBackRest ").size());
  if (debian_version == version()) GTEST_SKIP() << debian << " is " << debian_version << " too";
  const auto backups_before = repository_host_backups();

  // pgBackRest answers the greeting of another version with "[ProtocolError] expected value '2.45'
  // for greeting key 'version' but got '2.56.0'": the agent names both versions and the fix.
  const std::string output = get("OUTPUT_DIR") + "/debian.sql";
  const auto dump = run_agent(
      {"dump", "--config", get("AGENT_CONFIG_DEBIAN"), "--target", get("TARGET"), "--output", output});
  EXPECT_EQ(dump.exit_code, kExitEnvironment) << dump.stderr_text;
  EXPECT_NE(
      dump.stderr_text.find("pgBackRest versions differ: pgbackrest.bin is pgBackRest " + debian_version +
                            ", the remote pgBackRest it connects to (the repository host, over TLS or SSH) "
                            "is " +
                            version()),
      std::string::npos)
      << dump.stderr_text;
  EXPECT_NE(dump.stderr_text.find("HINT: set pgbackrest.bin to a pgBackRest " + version()),
            std::string::npos);
  EXPECT_FALSE(file_exists(output));

  // A backup too is refused in its first step (the repository check), before pgBackRest writes.
  const auto archive_before = repository_archive_files();
  const auto backup = run_agent({"backup", "--type", "incr", "--config", get("AGENT_CONFIG_DEBIAN")});
  EXPECT_EQ(backup.exit_code, kExitEnvironment) << backup.stderr_text;
  EXPECT_NE(
      backup.stderr_text.find("pgBackRest versions differ: pgbackrest.bin is pgBackRest " + debian_version),
      std::string::npos)
      << backup.stderr_text;
  EXPECT_EQ(backup.stderr_text.find("backup command begin"), std::string::npos) << backup.stderr_text;
  EXPECT_EQ(repository_host_backups().size(), backups_before.size());
  EXPECT_EQ(repository_archive_files(), archive_before);

  // `agent run` refuses its schedules at start, with the reason, instead of failing every tick:
  // 2.45 backs up only on the repository host.
  const std::string config = run_config("run-debian", debian,
                                        "schedules:\n  timezone: UTC\n  full: \"\"\n  incr: \"* * * * "
                                        "*\"\nmanual:\n  annotations_file: \"\"\n");
  RunningAgent agent(config);
  nlohmann::json status;
  ASSERT_TRUE(eventually(
      [&] {
        status = status_of(config);
        return status.contains("schedules_refused");
      },
      std::chrono::seconds(30)))
      << agent.log();
  ASSERT_TRUE(status["schedules_refused"].is_string()) << status.dump();
  const std::string reason = status["schedules_refused"];
  EXPECT_NE(reason.find("pgbackrest.bin is pgBackRest " + debian_version), std::string::npos) << reason;
  EXPECT_NE(reason.find("repo1-host is 127.0.0.1"), std::string::npos) << reason;
  EXPECT_TRUE(status["schedules"].empty()) << status.dump();
  EXPECT_TRUE(agent.log_contains("the backup schedules are refused")) << agent.log();
}

// `agent run` on the database pod with the matched pgBackRest: a scheduled backup and one the
// operator's annotation asks for both land in the repository host's repository.
TEST_F(PgoTopologyIntegration, ScheduledAndAnnotationBackupsFromTheDatabasePodLandOnTheRepositoryHost) {
  const auto before = repository_host_backups();
  const std::string podinfo = get("DIR") + "/podinfo";
  write_annotations_like_kubelet(podinfo, std::string(kBackupAnnotation) + "=\"first\"\n");
  // Every minute: the one wait on the wall clock in the suite (at most a minute), overlapping
  // the annotation's full backup.
  const std::string config = run_config(
      "run", get("PGBACKREST_BIN"),
      "schedules:\n  timezone: UTC\n  full: \"\"\n  incr: \"* * * * *\"\nmanual:\n  annotations_file: " +
          podinfo + "/annotations\n  annotation: " + kBackupAnnotation + "\n  type: full\n");
  RunningAgent agent(config);
  ASSERT_TRUE(eventually([&] { return status_of(config).contains("schedules"); }, std::chrono::seconds(30)))
      << agent.log();
  write_annotations_like_kubelet(podinfo, std::string(kBackupAnnotation) + "=\"second\"\n");
  const auto succeeded = [&](const std::string& trigger) {
    const auto status = status_of(config);
    if (!status.contains("recent")) return false;
    return std::any_of(status["recent"].begin(), status["recent"].end(), [&](const nlohmann::json& r) {
      return r.value("trigger", "") == trigger && r.value("outcome", "") == "succeeded";
    });
  };
  EXPECT_TRUE(eventually([&] { return succeeded("annotation"); }, std::chrono::seconds(180))) << agent.log();
  EXPECT_TRUE(eventually([&] { return succeeded("schedule"); }, std::chrono::seconds(180))) << agent.log();
  const auto status = status_of(config);
  EXPECT_TRUE(status["schedules_refused"].is_null()) << status.dump();

  // Both are in the repository host's repository: a new full and a new incremental.
  const auto after = repository_host_backups();
  std::vector<BackupRecord> added;
  for (const auto& backup : after)
    if (std::none_of(before.begin(), before.end(),
                     [&](const BackupRecord& b) { return b.label == backup.label; }))
      added.push_back(backup);
  EXPECT_TRUE(std::any_of(added.begin(), added.end(), [](const BackupRecord& b) { return b.type == "full"; }))
      << after.size();
  EXPECT_TRUE(std::any_of(added.begin(), added.end(), [](const BackupRecord& b) { return b.type == "incr"; }))
      << after.size();
  for (const auto& backup : added) EXPECT_EQ(backup.backrest_version, version()) << backup.label;
  EXPECT_TRUE(agent.log_contains("backup command begin " + version())) << agent.log();
}

}  // namespace
}  // namespace agent::testing
