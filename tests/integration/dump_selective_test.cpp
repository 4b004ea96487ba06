// `agent dump` restores only the database it dumps (restore.only_dumped_database): on a cluster
// with three user databases of similar size, the copy takes well under the full restore's disk,
// the dump equals one from a full restore, and replay of writes to the left-out databases after
// the backup (their pages zeroed in the copy) ends with the right rows and no crash.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "exec/process.hpp"
#include "harness.hpp"

namespace agent::testing {
namespace {

namespace fs = std::filesystem;

class DumpSelectiveIntegration : public ClusterSuite<DumpSelectiveIntegration> {
 public:
  static constexpr int kBulkMb = 0;

  static void SetUpTestSuite() {
    ClusterSuite<DumpSelectiveIntegration>::SetUpTestSuite();
    if (cluster_->dir().empty()) return;
    cluster_->sql("postgres", "CREATE DATABASE billing");
    cluster_->sql("postgres", "CREATE DATABASE reports");
    // About 70 MB in each: three databases of similar size.
    for (const char* db : {"api", "billing", "reports"})
      cluster_->sql(db,
                    "CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 6) AS pad "
                    "FROM generate_series(1, 300000) g");
    const auto backup = run_agent({"backup", "--type", "full", "--config", cluster_->get("AGENT_CONFIG")});
    ASSERT_EQ(backup.exit_code, 0) << backup.stderr_text;
    // pgBackRest restores a set for a time target only when the set stopped in an earlier second
    // than the target: the target below must not share the backup's last second (it did in a CI
    // run, and pgBackRest took the set before, which had no billing or reports).
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    // After the backup, before the target: rows in api, and writes that replay applies to the
    // databases the copy leaves out (updates, deletes, VACUUMs whose visibility records meet
    // their zeroed pages, a new table). A few pages each: the usual case, in which the left-out
    // databases stay sparse.
    cluster_->sql("api",
                  "INSERT INTO events(id, phase) SELECT g, 'selective' FROM generate_series(9001, 9010) g");
    cluster_->sql("billing", "UPDATE filler SET pad = pad || 'x' WHERE id % 1000 = 0");
    cluster_->sql("billing", "VACUUM filler");
    cluster_->sql("reports", "DELETE FROM filler WHERE id < 2000");
    cluster_->sql("reports", "VACUUM filler");
    cluster_->sql("reports", "CREATE TABLE later AS SELECT g FROM generate_series(1, 1000) g");
    target_ = new std::string(now_as_target());
    cluster_->sql("api",
                  "INSERT INTO events(id, phase) SELECT g, 'too late' FROM generate_series(9011, 9020) g");
    cluster_->sql("billing", "UPDATE filler SET pad = 'after' WHERE id < 100");
    ASSERT_TRUE(archived_to_here());
  }
  static void TearDownTestSuite() {
    delete target_;
    target_ = nullptr;
    ClusterSuite<DumpSelectiveIntegration>::TearDownTestSuite();
  }

 protected:
  inline static std::string* target_ = nullptr;

  static std::string query(const std::string& database, const std::string& statement) {
    return cluster_->query(database, statement);
  }

  // The server's clock now, as a target in UTC.
  static std::string now_as_target() {
    return query("postgres",
                 "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
  }

  // Switches WAL and waits until the segment of every commit so far is archived.
  static bool archived_to_here() {
    const std::string segment = query("postgres", "SELECT pg_walfile_name(pg_switch_wal())");
    return eventually(
        [&] {
          return query("postgres", "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= segment;
        },
        std::chrono::seconds(60));
  }

  // The cluster's agent config with `lines` added under `restore:`.
  static std::string config_with_restore(const std::string& name, const std::string& lines) {
    std::string config = read_file(cluster_->get("AGENT_CONFIG"));
    const auto at = config.find("\nrestore:\n");
    if (at == std::string::npos)
      config += "restore:\n" + lines;
    else
      config.insert(at + 10, lines);
    const std::string path = cluster_->dir() + "/" + name;
    write_file(path, config);
    return path;
  }

  // Disk blocks in use under `dir` (sparse files count what they hold, not their length).
  static std::uint64_t disk_usage(const std::string& dir) {
    std::uint64_t bytes = 0;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      struct stat st {};
      if (lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
        bytes += static_cast<std::uint64_t>(st.st_blocks) * 512;
    }
    return bytes;
  }

  struct Dumped {
    AgentRun run;
    std::string dump;
    nlohmann::json manifest;
    std::uint64_t scratch_bytes = 0;
    std::string scratch;
  };

  // A plain dump with pg_dump's random \restrict keys (15.14 and later) made the same.
  static std::string without_restrict_keys(const std::string& dump) {
    std::string out;
    out.reserve(dump.size());
    for (std::size_t start = 0; start < dump.size();) {
      const auto end = std::min(dump.find('\n', start), dump.size());
      const std::string_view line(dump.data() + start, end - start);
      if (line.rfind("\\restrict ", 0) == 0)
        out += "\\restrict KEY";
      else if (line.rfind("\\unrestrict ", 0) == 0)
        out += "\\unrestrict KEY";
      else
        out += line;
      out += '\n';
      start = end + 1;
    }
    return out;
  }
  static Dumped dump_api(const std::string& name, const std::string& restore_lines) {
    Dumped dumped;
    const std::string scratch = cluster_->dir() + "/scratch-" + name;
    dumped.scratch = scratch;
    const std::string output = cluster_->get("OUTPUT_DIR") + "/" + name + ".sql";
    // The cluster's config keeps the copy (restore.keep_scratch: always), so it can be measured.
    const auto config = config_with_restore(name + ".yaml", restore_lines);
    dumped.run = run_agent({"dump", "--config", config, "--target", *target_, "--database", "api", "--output",
                            output, "--scratch", scratch, "--overwrite"});
    if (dumped.run.exit_code != 0) return dumped;
    dumped.dump = read_file(output);
    dumped.manifest = nlohmann::json::parse(read_file(output + ".manifest.json"));
    dumped.scratch_bytes = disk_usage(scratch);
    return dumped;
  }
};

TEST_F(DumpSelectiveIntegration, OnlyTheDumpedDatabaseIsRestoredAndTheDumpEqualsAFullRestores) {
  const auto oid = query("postgres", "SELECT oid FROM pg_database WHERE datname = 'api'");
  const auto selective = dump_api("selective", "");
  ASSERT_NE(read_file(cluster_->get("AGENT_CONFIG")).find("keep_scratch: always"), std::string::npos);
  ASSERT_EQ(selective.run.exit_code, 0) << selective.run.stderr_text;
  EXPECT_NE(selective.run.stderr_text.find("--db-include=" + oid), std::string::npos)
      << selective.run.stderr_text;
  EXPECT_NE(selective.run.stderr_text.find("left out (zeroed): billing, reports"), std::string::npos);
  EXPECT_EQ(selective.manifest["restore"]["databases"], "only the dumped database and the system databases")
      << selective.manifest.dump(2);
  EXPECT_FALSE(selective.manifest["restore"]["restored_in_full_after_invalid_pages"].get<bool>());

  const auto full = dump_api("full", "  only_dumped_database: \"off\"\n");
  ASSERT_EQ(full.run.exit_code, 0) << full.run.stderr_text;
  EXPECT_EQ(full.run.stderr_text.find("--db-include"), std::string::npos);
  EXPECT_EQ(full.manifest["restore"]["databases"], "all");
  // Replay met the left-out databases' zeroed pages, and went on.
  EXPECT_GT(selective.manifest["restore"]["invalid_pages_reported"].get<int>(), 0)
      << selective.manifest.dump(2);

  // Compared as a bool: gtest's diff of two 60 MB strings would take gigabytes.
  EXPECT_GT(selective.dump.size(), 1000000u);
  const bool same = without_restrict_keys(selective.dump) == without_restrict_keys(full.dump);
  EXPECT_TRUE(same) << "the dump of api differs between the selective and the full restore ("
                    << selective.dump.size() << " and " << full.dump.size() << " bytes)";
  const auto rows = events_in_dump(selective.dump);
  for (int id = 9001; id <= 9010; ++id) EXPECT_TRUE(rows.ids.count(id)) << id;
  EXPECT_FALSE(rows.ids.count(9011));
  EXPECT_FALSE(rows.phases.count("too late"));

  // Measured: the selective copy's disk blocks against the full copy's.
  std::cout << "scratch disk usage: selective " << selective.scratch_bytes << " bytes, full "
            << full.scratch_bytes << " bytes; invalid pages reported "
            << selective.manifest["restore"]["invalid_pages_reported"] << std::endl;
  EXPECT_GT(full.scratch_bytes, 0u);
  EXPECT_LT(static_cast<double>(selective.scratch_bytes), 0.6 * static_cast<double>(full.scratch_bytes));
}

// Recovery that reports invalid pages of the dumped database itself: the copy is not to be
// trusted, so the agent restores every database and recovers again, or refuses. Made real here:
// a pgbackrest that zeroes api's filler table after a --db-include restore (as the restore does
// to the databases it leaves out), and updates of that table after the backup written with
// full_page_writes off, so that replay reads the zeroed page instead of restoring it from an
// image. The copy would otherwise be dumped with those rows missing.
TEST_F(DumpSelectiveIntegration, InvalidPagesInTheDumpedDatabaseRestoreInFullOrRefuse) {
  const std::string relation = query("api", "SELECT pg_relation_filepath('filler')");
  const auto oid = query("postgres", "SELECT oid FROM pg_database WHERE datname = 'api'");
  ASSERT_EQ(relation.rfind("base/" + oid + "/", 0), 0u) << relation;
  cluster_->sql("postgres", "ALTER SYSTEM SET full_page_writes = off");
  cluster_->sql("postgres", "SELECT pg_reload_conf()");
  ASSERT_TRUE(eventually([] { return query("postgres", "SHOW full_page_writes") == "off"; },
                         std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the checkpointer applies it too
  cluster_->sql("api", "UPDATE filler SET pad = 'after fpw off' WHERE id <= 20");
  const std::string target = now_as_target();
  // A commit after the target, so that recovery sees the target passed.
  cluster_->sql("billing", "UPDATE filler SET pad = 'later' WHERE id = 100");
  cluster_->sql("postgres", "ALTER SYSTEM RESET full_page_writes");
  cluster_->sql("postgres", "SELECT pg_reload_conf()");
  ASSERT_TRUE(archived_to_here());

  const std::string wrapper = cluster_->dir() + "/pgbackrest-zeroes-api-filler";
  write_file(
      wrapper,
      "#!/bin/sh\n"
      "include=; data=\n"
      "for word in \"$@\"; do\n"
      "  case \"$word\" in --db-include=*) include=1 ;; --pg1-path=*) data=${word#--pg1-path=} ;; esac\n"
      "done\n"
      "pgbackrest \"$@\" || exit $?\n"
      "[ -n \"$include\" ] || exit 0\n"
      "file=\"$data/" +
          relation +
          "\"\n"
          "size=$(stat -c %s \"$file\") && truncate -s 0 \"$file\" && truncate -s \"$size\" \"$file\"\n");
  chmod(wrapper.c_str(), 0755);
  auto config_for = [&](const std::string& name, const std::string& invalid_pages) {
    std::string config = read_file(config_with_restore(name, "  invalid_pages: " + invalid_pages + "\n"));
    const auto at = config.find("\npgbackrest:\n");
    EXPECT_NE(at, std::string::npos);
    config.insert(at + 13, "  bin: " + wrapper + "\n");
    const std::string path = cluster_->dir() + "/" + name;
    write_file(path, config);
    return path;
  };
  auto dump = [&](const std::string& name, const std::string& config) {
    return run_agent({"dump", "--config", config, "--target", target, "--database", "api", "--output",
                      cluster_->get("OUTPUT_DIR") + "/" + name, "--scratch",
                      cluster_->dir() + "/scratch-" + name, "--overwrite"});
  };

  const auto refused = dump("refused.sql", config_for("refuse.yaml", "refuse"));
  EXPECT_EQ(refused.exit_code, 4) << refused.stderr_text;
  EXPECT_NE(refused.stderr_text.find(
                "invalid page(s) in database 'api' or a shared catalog (first: relation " + relation),
            std::string::npos)
      << refused.stderr_text;
  EXPECT_NE(refused.stderr_text.find("nothing was dumped (restore.invalid_pages: refuse)"),
            std::string::npos);
  EXPECT_FALSE(file_exists(cluster_->get("OUTPUT_DIR") + "/refused.sql"));
  EXPECT_FALSE(file_exists(cluster_->get("OUTPUT_DIR") + "/refused.sql.partial"));

  const auto in_full = dump("in-full.sql", config_for("in-full.yaml", "restore_in_full"));
  ASSERT_EQ(in_full.exit_code, 0) << in_full.stderr_text;
  EXPECT_NE(in_full.stderr_text.find("restoring every database and recovering again"), std::string::npos)
      << in_full.stderr_text;
  const auto manifest =
      nlohmann::json::parse(read_file(cluster_->get("OUTPUT_DIR") + "/in-full.sql.manifest.json"));
  EXPECT_TRUE(manifest["restore"]["restored_in_full_after_invalid_pages"].get<bool>()) << manifest.dump(2);
  EXPECT_GT(manifest["restore"]["invalid_pages_reported"].get<int>(), 0);
  // Every updated row is in the dump: the second recovery read the pages the backup holds.
  const std::string text = read_file(cluster_->get("OUTPUT_DIR") + "/in-full.sql");
  std::size_t updated = 0;
  for (auto at = text.find("\tafter fpw off\n"); at != std::string::npos;
       at = text.find("\tafter fpw off\n", at + 1))
    ++updated;
  EXPECT_EQ(updated, 20u);
}

}  // namespace
}  // namespace agent::testing
