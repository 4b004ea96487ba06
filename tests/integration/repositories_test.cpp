// Two pgBackRest repositories, as PGO runs them (repo1 on a volume, repo2 in a bucket; here both
// are directories on local disk): make-cluster.sh --repo2 takes a full and an incremental into
// each, then this suite takes another full and incremental into repo1 only, so repo2 holds an
// older full and a stale incremental. Every repository value must be that repository's own, the
// dump must restore what pgBackRest chooses (the first repository in key order with a set for
// the target, not the newest set over both) and say so, and a repository that cannot be read
// must fail alone.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "exec/process.hpp"
#include "harness.hpp"
#include "time/target_time.hpp"

namespace agent::testing {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitExternalTool = 6;

// The value of one series in a scrape, or nothing.
std::optional<double> series(const std::string& scrape, const std::string& name_and_labels) {
  std::istringstream lines(scrape);
  std::string line;
  while (std::getline(lines, line))
    if (line.rfind(name_and_labels + " ", 0) == 0) return std::stod(line.substr(name_and_labels.size() + 1));
  return std::nullopt;
}

std::string labels(int repo, const std::string& type = "") {
  return "{repo=\"" + std::to_string(repo) + "\",stanza=\"db\"" +
         (type.empty() ? "" : ",type=\"" + type + "\"") + "}";
}

// Makes a directory unreadable for the agent's user until it goes out of scope.
class Unreadable {
 public:
  explicit Unreadable(std::string path) : path_(std::move(path)) { EXPECT_EQ(chmod(path_.c_str(), 0), 0); }
  ~Unreadable() { chmod(path_.c_str(), 0750); }
  Unreadable(const Unreadable&) = delete;
  Unreadable& operator=(const Unreadable&) = delete;

 private:
  std::string path_;
};

class RepositoriesIntegration : public ClusterSuite<RepositoriesIntegration> {
 public:
  static constexpr int kBulkMb = 0;
  static constexpr bool kRepo2 = true;

 protected:
  static void SetUpTestSuite() {
    ClusterSuite::SetUpTestSuite();
    if (cluster_->dir().empty()) return;
    http_port_ = free_port();
    // The cluster's own config (dump, restore, postgres) and what `agent run` needs; a weekly
    // full into repo2 that never fires during the suite.
    config_ = cluster_->dir() + "/repos-agent.yaml";
    write_file(config_, read_file(cluster_->get("AGENT_CONFIG")) + "state_dir: " + cluster_->dir() +
                            "/repos-state\n"
                            "control:\n  socket: " +
                            cluster_->dir() +
                            "/repos-agent.sock\n"
                            "manual:\n  annotations_file: \"\"\n"
                            "schedules:\n  repo2:\n    full: \"0 3 * * 0\"\n"
                            "http:\n  listen: 127.0.0.1:" +
                            std::to_string(http_port_) +
                            "\n"
                            "metrics:\n  refresh_seconds: 10\n  crunchy_compat: \"true\"\n");
    // More backups into repo1 only (no agent runs yet, so `agent backup` runs them itself).
    for (const char* type : {"full", "incr"}) {
      const auto run = run_agent({"backup", "--type", type, "--repo", "1", "--config", config_});
      EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    }
  }

  static std::vector<BackupRecord> backups_in(int repo) {
    std::vector<BackupRecord> found;
    for (const auto& backup : cluster_->backups())
      if (repo_of(backup) == repo) found.push_back(backup);
    return found;
  }

  static const BackupRecord* newest(const std::vector<BackupRecord>& backups, const std::string& type) {
    const BackupRecord* found = nullptr;
    for (const auto& backup : backups)
      if (backup.type == type && (!found || backup.stop_epoch > found->stop_epoch)) found = &backup;
    return found;
  }

  // The set pgBackRest restores for the cluster's target from `repo`: the newest that ended
  // before it.
  static BackupRecord set_for_target(int repo) {
    auto target = parse_target_time(cluster_->target());
    EXPECT_TRUE(target.ok());
    const auto target_seconds =
        std::chrono::floor<std::chrono::seconds>(target->instant).time_since_epoch().count();
    BackupRecord found;
    for (const auto& backup : backups_in(repo))
      if (backup.stop_epoch < target_seconds && backup.stop_epoch > found.stop_epoch) found = backup;
    EXPECT_FALSE(found.label.empty()) << "repo" << repo << " has no set for the target";
    return found;
  }

  static std::string scrape() {
    const auto reply = http_get(http_port_, "/metrics");
    EXPECT_EQ(reply.status, 200);
    return reply.body;
  }

  static nlohmann::json status() {
    const auto run = run_agent({"status", "--json", "--config", config_});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    auto parsed = nlohmann::json::parse(run.stdout_text, nullptr, false);
    return parsed.is_object() ? parsed : nlohmann::json::object();
  }

  static AgentRun dump(const std::string& name, const std::vector<std::string>& extra,
                       const std::string& config = "") {
    std::vector<std::string> args{"dump",
                                  "--config",
                                  config.empty() ? cluster_->get("AGENT_CONFIG") : config,
                                  "--target",
                                  cluster_->target(),
                                  "--output",
                                  cluster_->get("OUTPUT_DIR") + "/" + name};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_agent(args);
  }

  static nlohmann::json manifest(const std::string& name) {
    return nlohmann::json::parse(read_file(cluster_->get("OUTPUT_DIR") + "/" + name + ".manifest.json"),
                                 nullptr, false);
  }

  static std::string config_;
  static int http_port_;
};

std::string RepositoriesIntegration::config_;
int RepositoriesIntegration::http_port_ = 0;

TEST_F(RepositoriesIntegration, FreshnessSizesAndCountsPerRepositoryEqualPgBackRestInfo) {
  RunningAgent agent(config_);
  ASSERT_TRUE(eventually(
      [&] {
        const auto text = scrape();
        return series(text, "agent_repository_info_success" + labels(1)) == 1.0 &&
               series(text, "agent_repository_info_success" + labels(2)) == 1.0;
      },
      std::chrono::seconds(30)))
      << agent.log();
  const auto text = scrape();
  for (int repo : {1, 2}) {
    const auto backups = backups_in(repo);
    for (const std::string type : {"full", "incr"}) {
      const auto* expected = newest(backups, type);
      ASSERT_NE(expected, nullptr) << "repo" << repo << " " << type;
      EXPECT_EQ(series(text, "agent_backup_last_completion_timestamp_seconds" + labels(repo, type)),
                static_cast<double>(expected->stop_epoch))
          << "repo" << repo << " " << type;
      EXPECT_EQ(series(text, "agent_backup_last_repository_size_bytes" + labels(repo, type)),
                static_cast<double>(expected->repo_bytes));
      const auto count = std::count_if(backups.begin(), backups.end(),
                                       [&](const BackupRecord& b) { return b.type == type; });
      EXPECT_EQ(series(text, "agent_repository_backups" + labels(repo, type)), static_cast<double>(count));
    }
    EXPECT_TRUE(series(text, "ccp_backrest_last_full_backup_time_since_completion_seconds" + labels(repo)))
        << text;
  }
  // repo2 is staler than repo1, and shows it: over both repositories it would not.
  const auto full1 = series(text, "agent_backup_age_seconds" + labels(1, "full"));
  const auto full2 = series(text, "agent_backup_age_seconds" + labels(2, "full"));
  const auto incr2 = series(text, "agent_backup_age_seconds" + labels(2, "incr"));
  ASSERT_TRUE(full1 && full2 && incr2) << text;
  EXPECT_GT(*full2, *full1);
  EXPECT_GT(*incr2, *series(text, "agent_backup_age_seconds" + labels(1, "incr")));

  // promtool lints the scrape with its repo labels.
  expect_promtool_accepts(text, cluster_->dir() + "/repos-scrape.txt");

  // `agent status`: each repository with its newest sets, each schedule with its repository.
  auto shown = status();
  ASSERT_EQ(shown["repositories"].size(), 2u) << shown.dump(2);
  for (int repo : {1, 2}) {
    auto& entry = shown["repositories"][repo - 1];
    EXPECT_EQ(entry["repo"], repo);
    EXPECT_EQ(entry["readable"], true);
    EXPECT_EQ(entry["newest"]["full"]["label"], newest(backups_in(repo), "full")->label);
  }
  ASSERT_EQ(shown["schedules"].size(), 1u);
  EXPECT_EQ(shown["schedules"][0]["repo"], 2);
  EXPECT_EQ(shown["schedules"][0]["type"], "full");
  const auto human = run_agent({"status", "--config", config_});
  EXPECT_NE(human.stdout_text.find("schedule: full into repo2 '0 3 * * 0'"), std::string::npos)
      << human.stdout_text;
  EXPECT_NE(human.stdout_text.find("repo2: readable"), std::string::npos) << human.stdout_text;
}

TEST_F(RepositoriesIntegration, DumpRestoresPgBackRestsChoiceAndRecordsTheRepositoryAndSet) {
  const BackupRecord in_repo1 = set_for_target(1);
  const BackupRecord in_repo2 = set_for_target(2);
  // The point: repo2's set is the newer one over both repositories, and pgBackRest still
  // restores repo1's, the first repository with a set for the target.
  ASSERT_GT(in_repo2.stop_epoch, in_repo1.stop_epoch);

  auto run = dump("choice.sql", {});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  expect_rows_at_target(read_file(cluster_->get("OUTPUT_DIR") + "/choice.sql"));
  auto recorded = manifest("choice.sql");
  EXPECT_EQ(recorded["backup_set"]["repo"], 1) << recorded.dump(2);
  EXPECT_EQ(recorded["backup_set"]["label"], in_repo1.label);
  EXPECT_TRUE(recorded["repo_requested"].is_null());
  // pgBackRest's own line, and the agent's check of it.
  EXPECT_NE(run.stderr_text.find("repo1: restore backup set " + in_repo1.label), std::string::npos)
      << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("pgBackRest restored backup set " + in_repo1.label + " in repo1, as chosen"),
            std::string::npos);

  run = dump("repo2.sql", {"--repo", "2"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  expect_rows_at_target(read_file(cluster_->get("OUTPUT_DIR") + "/repo2.sql"));
  recorded = manifest("repo2.sql");
  EXPECT_EQ(recorded["backup_set"]["repo"], 2) << recorded.dump(2);
  EXPECT_EQ(recorded["backup_set"]["label"], in_repo2.label);
  EXPECT_EQ(recorded["repo_requested"], 2);
  EXPECT_NE(run.stderr_text.find("repo2: restore backup set " + in_repo2.label), std::string::npos)
      << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("--repo=2"), std::string::npos) << "the restore was not given --repo=2";
}

TEST_F(RepositoriesIntegration, RepoIsCheckedBeforeAnythingIsWritten) {
  const std::string scratch = cluster_->dir() + "/never-made";
  for (const auto& [repo, code, message] :
       {std::tuple{"3", kExitUsage,
                   "--repo 3: stanza 'db' has no repo3 (pgbackrest info lists repo1, repo2)"},
        std::tuple{"0", kExitUsage, "--repo"}, std::tuple{"257", kExitUsage, "--repo"},
        std::tuple{"two", kExitUsage, "--repo"}}) {
    const auto run = dump("refused.sql", {"--repo", repo, "--scratch", scratch});
    EXPECT_EQ(run.exit_code, code) << repo << ": " << run.stderr_text;
    EXPECT_NE(run.stderr_text.find(message), std::string::npos) << repo << ": " << run.stderr_text;
    EXPECT_FALSE(file_exists(scratch)) << "--repo " << repo;
    EXPECT_FALSE(file_exists(cluster_->get("OUTPUT_DIR") + "/refused.sql"));
  }
}

// What pgBackRest reports it restored is checked against the set the agent chose and checked
// the window and the disk for. Here a pgBackRest that restores from repo2 when asked for no
// repository (a wrapper adds --repo=2 to its restore) stands for one whose choice differs.
TEST_F(RepositoriesIntegration, ARestoreOfAnotherSetThanTheChosenOneFailsTheDump) {
  const std::string wrapper = cluster_->dir() + "/pgbackrest-prefers-repo2";
  write_file(wrapper,
             "#!/bin/sh\n"
             "for word in \"$@\"; do [ \"$word\" = restore ] && exec pgbackrest --repo=2 \"$@\"; done\n"
             "exec pgbackrest \"$@\"\n");
  ASSERT_EQ(chmod(wrapper.c_str(), 0755), 0);
  std::string config = read_file(cluster_->get("AGENT_CONFIG"));
  const auto section = config.find("\npgbackrest:\n");
  ASSERT_NE(section, std::string::npos) << config;
  config.insert(section + 13, "  bin: " + wrapper + "\n");
  const std::string path = cluster_->dir() + "/prefers-repo2.yaml";
  write_file(path, config);

  const auto run = dump("mismatch.sql", {}, path);
  EXPECT_EQ(run.exit_code, 4) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("pgbackrest restore restored backup set " + set_for_target(2).label +
                                 " from repo2, but the agent chose and checked backup set " +
                                 set_for_target(1).label + " in repo1"),
            std::string::npos)
      << run.stderr_text;
  EXPECT_NE(
      run.stderr_text.find("HINT: nothing was dumped; name the repository and the set with --repo and --set"),
      std::string::npos);
  EXPECT_FALSE(file_exists(cluster_->get("OUTPUT_DIR") + "/mismatch.sql"));
  EXPECT_FALSE(file_exists(cluster_->get("OUTPUT_DIR") + "/mismatch.sql.manifest.json"));
}

TEST_F(RepositoriesIntegration, AnUnreadableRepo2FailsAloneAndNothingElse) {
  RunningAgent agent(config_);
  ASSERT_TRUE(eventually([&] { return series(scrape(), "agent_repository_info_success" + labels(2)) == 1.0; },
                         std::chrono::seconds(30)))
      << agent.log();
  const double full2_before =
      *series(scrape(), "agent_backup_last_completion_timestamp_seconds" + labels(2, "full"));
  {
    Unreadable repo2(cluster_->get("REPO2_DIR"));
    ASSERT_TRUE(
        eventually([&] { return series(scrape(), "agent_repository_info_success" + labels(2)) == 0.0; },
                   std::chrono::seconds(30)))
        << agent.log();
    const auto text = scrape();
    EXPECT_EQ(series(text, "agent_repository_info_success" + labels(1)), 1.0) << text;
    EXPECT_GE(series(text, "agent_repository_info_errors_total" + labels(2)).value_or(0), 1.0);
    EXPECT_EQ(series(text, "agent_repository_info_errors_total" + labels(1)), 0.0);
    // repo1's series stay and are still right; repo2's keep their last values.
    for (const std::string type : {"full", "incr"})
      EXPECT_EQ(series(text, "agent_backup_last_completion_timestamp_seconds" + labels(1, type)),
                static_cast<double>(newest(backups_in(1), type)->stop_epoch))
          << type;
    EXPECT_EQ(series(text, "agent_backup_last_completion_timestamp_seconds" + labels(2, "full")),
              full2_before);
    EXPECT_TRUE(series(text, "agent_backup_age_seconds" + labels(1, "full")));
    // Readiness says the agent is up; a repository problem is not a reason to take the
    // database pod out of service.
    const auto ready = http_get(http_port_, "/readyz");
    EXPECT_EQ(ready.status, 200);
    EXPECT_NE(ready.body.find("repo2: "), std::string::npos) << ready.body;
    EXPECT_EQ(http_get(http_port_, "/healthz").status, 200);
    auto shown = status();
    ASSERT_EQ(shown["repositories"].size(), 2u) << shown.dump(2);
    EXPECT_EQ(shown["repositories"][0]["readable"], true);
    EXPECT_EQ(shown["repositories"][1]["readable"], false);
    EXPECT_NE(shown["repositories"][1]["problem"].get<std::string>().find("Permission denied"),
              std::string::npos)
        << shown.dump(2);

    // The dump goes on from repo1, through the running agent.
    auto run = dump("without-repo2.sql", {}, config_);
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text << agent.log();
    EXPECT_NE(run.stderr_text.find("the running agent took the dump"), std::string::npos) << run.stderr_text;
    EXPECT_NE(run.stderr_text.find("in repo1"), std::string::npos) << run.stderr_text;
    EXPECT_EQ(manifest("without-repo2.sql")["backup_set"]["repo"], 1);
    expect_rows_at_target(read_file(cluster_->get("OUTPUT_DIR") + "/without-repo2.sql"));
    // Asked for repo2 by name, it is refused clearly.
    run = dump("from-repo2.sql", {"--repo", "2"}, config_);
    EXPECT_EQ(run.exit_code, kExitExternalTool) << run.stderr_text;
    EXPECT_NE(run.stderr_text.find("repo2 cannot be read (status 99"), std::string::npos) << run.stderr_text;
    EXPECT_FALSE(file_exists(cluster_->get("OUTPUT_DIR") + "/from-repo2.sql"));
  }
  EXPECT_TRUE(eventually([&] { return series(scrape(), "agent_repository_info_success" + labels(2)) == 1.0; },
                         std::chrono::seconds(30)))
      << "repo2 readable again";
}

TEST_F(RepositoriesIntegration, BackupsGoToTheirRepositoryThroughTheOneQueue) {
  RunningAgent agent(config_);
  const auto repo1_before = backups_in(1).size();
  const auto repo2_before = backups_in(2).size();
  const auto run = run_agent({"backup", "--type", "incr", "--repo", "2", "--wait", "--config", config_});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text << agent.log();
  EXPECT_NE(run.stderr_text.find("(repo2) succeeded"), std::string::npos) << run.stderr_text;
  const auto repo2 = backups_in(2);
  ASSERT_EQ(repo2.size(), repo2_before + 1);
  EXPECT_EQ(backups_in(1).size(), repo1_before);
  const auto* incr = newest(repo2, "incr");
  ASSERT_NE(incr, nullptr);
  const auto text = scrape();
  EXPECT_EQ(series(text, "agent_backup_last_completion_timestamp_seconds" + labels(2, "incr")),
            static_cast<double>(incr->stop_epoch))
      << text;
  EXPECT_EQ(
      series(text,
             R"(agent_backups_total{repo="2",result="succeeded",stanza="db",trigger="manual",type="incr"})"),
      1.0)
      << text;
  auto shown = status();
  ASSERT_FALSE(shown["recent"].empty());
  EXPECT_EQ(shown["recent"][0]["repo"], 2);
  // A repository pgBackRest does not list: refused in the check step, naming the ones it lists,
  // before pgBackRest's backup runs.
  const auto unknown = run_agent({"backup", "--type", "incr", "--repo", "3", "--wait", "--config", config_});
  EXPECT_EQ(unknown.exit_code, kExitUsage) << unknown.stderr_text;
  EXPECT_NE(unknown.stderr_text.find(
                "repo3 is not configured for stanza 'db' (pgbackrest info lists repo1, repo2)"),
            std::string::npos)
      << unknown.stderr_text;
}

// Each repository can be drilled: drill.repo (or --repo) sends the drill's restore, its WAL
// and its annotation to that repository, through the running agent as from the command line.
TEST_F(RepositoriesIntegration, ADrillOfRepo2RestoresRepo2sNewestSetAndRecordsItThere) {
  const std::string config = cluster_->dir() + "/repos-drill.yaml";
  write_file(config, read_file(config_) + "drill:\n  repo: 2\n");
  RunningAgent agent(config);
  ASSERT_TRUE(eventually([&] { return agent.log_contains("running for stanza"); }, std::chrono::seconds(20)))
      << agent.log();
  const auto run = run_agent({"drill", "--config", config});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text << agent.log();
  EXPECT_NE(run.stderr_text.find("the running agent queued the drill (job"), std::string::npos)
      << run.stderr_text;
  const auto last =
      nlohmann::json::parse(read_file(cluster_->dir() + "/repos-state/drills/last.json"), nullptr, false);
  ASSERT_TRUE(last.is_object());
  EXPECT_EQ(last["result"], "passed") << last.dump(2);
  EXPECT_EQ(last["repo_requested"], 2);
  EXPECT_EQ(last["backup_set"]["repo"], 2) << last.dump(2);
  // repo2's newest set before the drill's start (pgBackRest's choice without a repository is
  // repo1's, the first in key order).
  const auto target = parse_target_time(last["target"].get<std::string>());
  ASSERT_TRUE(target.ok());
  const auto target_second =
      std::chrono::floor<std::chrono::seconds>(target->instant).time_since_epoch().count();
  BackupRecord expected;
  for (const auto& backup : backups_in(2))
    if (backup.stop_epoch < target_second && backup.stop_epoch > expected.stop_epoch) expected = backup;
  EXPECT_EQ(last["backup_set"]["label"], expected.label);
  EXPECT_TRUE(agent.log_contains("--repo=2")) << "the restore was not given --repo=2\n" << agent.log();

  // The result is recorded on that set in repo2, in the backup slot.
  ASSERT_TRUE(eventually(
      [&] { return agent.log_contains("is recorded on backup set " + expected.label + " in repo2"); },
      std::chrono::seconds(30)))
      << agent.log();
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"pgbackrest",
               "--config=" + cluster_->get("PGBACKREST_CONFIG"),
               "--stanza=db",
               "--repo=2",
               "--set=" + expected.label,
               "--output=json",
               "info"};
  spec.stdout_mode = StdoutMode::capture;
  const auto info = runner->run(spec, CancelToken::never());
  ASSERT_TRUE(info && info->succeeded());
  const auto stanzas = nlohmann::json::parse(info->stdout_text, nullptr, false);
  ASSERT_TRUE(stanzas.is_array() && !stanzas.empty()) << info->stdout_text;
  nlohmann::json annotation;
  for (const auto& set : stanzas.at(0).value("backup", nlohmann::json::array()))
    if (set.value("label", "") == expected.label)
      annotation = set.value("annotation", nlohmann::json::object());
  EXPECT_EQ(annotation.value("agent-drill-result", ""), "passed") << info->stdout_text;
  EXPECT_EQ(annotation.value("agent-drill-id", ""), last["drill"]) << info->stdout_text;

  // A repository the stanza does not have: refused in the check step, nothing made.
  const std::string scratch = cluster_->dir() + "/never-made-by-a-drill";
  const auto refused = run_agent({"drill", "--config", config, "--repo", "3", "--scratch", scratch});
  EXPECT_EQ(refused.exit_code, kExitUsage) << refused.stderr_text;
  EXPECT_NE(refused.stderr_text.find("stanza 'db' has no repo3"), std::string::npos) << refused.stderr_text;
  EXPECT_FALSE(file_exists(scratch));
}

}  // namespace
}  // namespace agent::testing
