// `agent drill` against a real PostgreSQL 15 and pgBackRest repository: a healthy backup drills
// green (every table read, with the row counts the live tables had at the target; amcheck on
// every B-tree index of the database that has it; checksums verified), a drill that finds a
// problem fails naming it, and nothing live is touched.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "exec/process.hpp"
#include "harness.hpp"

namespace agent::testing {
namespace {

constexpr int kExitVerification = 4;

class DrillIntegration : public ClusterSuite<DrillIntegration> {
 public:
  static constexpr int kBulkMb = 0;
  static void SetUpTestSuite() {
    cluster_ = new TestCluster(TestCluster::create_with(0, {"--data-checksums", "--amcheck"}));
  }

 protected:
  // The cluster's agent config with a state directory of its own (where the manifests go).
  static std::string config_path() {
    const std::string path = cluster_->dir() + "/drill-agent.yaml";
    if (!file_exists(path))
      write_file(path,
                 read_file(cluster_->get("AGENT_CONFIG")) + "state_dir: " + cluster_->dir() + "/state\n");
    return path;
  }

  // psql -At on the live server: the rows, one a line.
  static std::string live_query(const std::string& database, const std::string& sql) {
    auto runner = make_posix_process_runner();
    ProcessSpec spec;
    spec.argv = {cluster_->get("BINDIR") + "/psql",
                 "-X",
                 "-At",
                 "-v",
                 "ON_ERROR_STOP=1",
                 "-h",
                 cluster_->get("SOCKET_DIR"),
                 "-p",
                 cluster_->get("PORT"),
                 "-U",
                 "postgres",
                 "-d",
                 database,
                 "-c",
                 sql};
    spec.stdout_mode = StdoutMode::capture;
    auto result = runner->run(spec, CancelToken::never());
    EXPECT_TRUE(result.ok() && result->succeeded()) << sql;
    return result.ok() ? result->stdout_text : "";
  }

  static nlohmann::json last_manifest() {
    return nlohmann::json::parse(read_file(cluster_->dir() + "/state/drills/last.json"));
  }

  static const nlohmann::json* find_check(const nlohmann::json& manifest, const std::string& name,
                                          const std::string& database) {
    for (const auto& check : manifest["checks"])
      if (check["check"] == name &&
          (database.empty() ? check["database"].is_null() : check["database"] == database))
        return &check;
    return nullptr;
  }
};

TEST_F(DrillIntegration, HealthyBackupDrillsGreenAtTheTarget) {
  const auto archive_before = cluster_->archive_files();
  const auto run = run_agent({"drill", "--config", config_path(), "--target", cluster_->target()});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const auto manifest = last_manifest();
  EXPECT_EQ(manifest["result"], "passed");
  EXPECT_EQ(manifest["mode"], "target");
  EXPECT_EQ(manifest["recovery_stop"], "target");
  EXPECT_FALSE(manifest["backup_set"]["label"].get<std::string>().empty());
  ASSERT_FALSE(manifest["replay_timestamp"].is_null());
  EXPECT_GE(manifest["replay_gap_seconds"].get<double>(), 0.0);
  for (const char* phase : {"check", "restore", "start", "wait", "verify", "checks", "stop", "checksums"})
    EXPECT_TRUE(manifest["durations_seconds"].contains(phase)) << phase;
  EXPECT_GT(manifest["total_seconds"].get<double>(), 0.0);

  // Every table of api read, with the live row counts at the target: events had the rows
  // written before the target; the other tables did not change after it.
  std::map<std::string, std::uint64_t> read;
  for (const auto& table : manifest["tables"])
    if (table["database"] == "api") read[table["table"]] = table["rows"];
  std::istringstream live_tables(live_query(
      "api",
      "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = "
      "c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
      "ORDER BY 1"));
  std::string table;
  int compared = 0;
  while (std::getline(live_tables, table)) {
    ASSERT_EQ(read.count(table), 1u) << table << " was not read";
    const auto live = std::stoull(live_query("api", "SELECT count(*) FROM ONLY " + table));
    const std::uint64_t expected =
        table == "public.events" ? std::stoull(cluster_->get("ROWS_BEFORE")) : live;
    EXPECT_EQ(read[table], expected) << table;
    ++compared;
  }
  EXPECT_EQ(compared, 7);  // events and the awkward tables (a partitioned table has no rows of its own)

  const auto* tables = find_check(manifest, "tables", "api");
  ASSERT_NE(tables, nullptr);
  EXPECT_EQ((*tables)["result"], "passed");
  // amcheck ran on every B-tree index of api (installed there), and is skipped with the reason
  // in postgres (not installed).
  const auto* indexes = find_check(manifest, "amcheck-indexes", "api");
  ASSERT_NE(indexes, nullptr);
  EXPECT_EQ((*indexes)["result"], "passed");
  EXPECT_EQ((*indexes)["checked"].get<std::uint64_t>(),
            std::stoull(live_query("api",
                                   "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                   "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree'")));
  const auto* heap = find_check(manifest, "amcheck-heap", "api");
  ASSERT_NE(heap, nullptr);
  EXPECT_EQ((*heap)["result"], "passed");
  EXPECT_GT((*heap)["checked"].get<std::uint64_t>(), 0u);
  const auto* skipped = find_check(manifest, "amcheck-indexes", "postgres");
  ASSERT_NE(skipped, nullptr);
  EXPECT_EQ((*skipped)["result"], "skipped");
  EXPECT_NE((*skipped)["reason"].get<std::string>().find("CREATE EXTENSION amcheck on the primary"),
            std::string::npos);
  // Checksums verified on the stopped copy.
  EXPECT_EQ(manifest["data_checksums"], true);
  const auto* checksums = find_check(manifest, "checksums", "");
  ASSERT_NE(checksums, nullptr);
  EXPECT_EQ((*checksums)["result"], "passed");
  EXPECT_GT((*checksums)["checked"].get<std::uint64_t>(), 0u);

  // Nothing live touched: no file (no .history, no new timeline) added to the live archive,
  // and the live server is still the primary on timeline 1.
  EXPECT_EQ(cluster_->archive_files(), archive_before) << "the live archive changed";
  EXPECT_EQ(live_query("postgres", "SELECT pg_is_in_recovery()"), "f\n");
  EXPECT_EQ(live_query("postgres", "SELECT timeline_id FROM pg_control_checkpoint()"), "1\n");
  EXPECT_TRUE(processes_matching(cluster_->dir() + "/scratch/data").empty())
      << "the copy's server still runs";
}

TEST_F(DrillIntegration, LatestDrillWithAFalseAssertionFailsNamingIt) {
  const auto archive_before = cluster_->archive_files();
  const auto run = run_agent({"drill", "--config", config_path(), "--latest", "--database", "api", "--assert",
                              "api: SELECT count(*) = 200 FROM events", "--assert",
                              "api: SELECT count(*) = 100 FROM events"});
  EXPECT_EQ(run.exit_code, kExitVerification) << run.stderr_text;
  const auto manifest = last_manifest();
  EXPECT_EQ(manifest["result"], "failed");
  EXPECT_EQ(manifest["mode"], "latest");
  const std::string first = manifest["first_failure"];
  EXPECT_NE(first.find("SELECT count(*) = 100 FROM events"), std::string::npos) << first;
  EXPECT_NE(first.find("is false"), std::string::npos) << first;
  EXPECT_NE(run.stderr_text.find("SELECT count(*) = 100 FROM events"), std::string::npos);
  EXPECT_EQ(manifest["objects_failed"], 1);
  // At the end of the archived WAL every row is there; only api was checked.
  for (const auto& table : manifest["tables"]) {
    EXPECT_EQ(table["database"], "api");
    if (table["table"] == "public.events") {
      EXPECT_EQ(table["rows"], 200);
    }
  }
  EXPECT_EQ(find_check(manifest, "tables", "postgres"), nullptr);
  EXPECT_EQ(cluster_->archive_files(), archive_before) << "the live archive changed";
}

}  // namespace
}  // namespace agent::testing
