// `agent dump` selection, formats, compression and roles against a real PostgreSQL 15 and
// pgBackRest repository: what each output loads into an empty server is the plain dump's rows.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness.hpp"

namespace agent::testing {
namespace {

constexpr int kExitUsage = 2;

// An empty PostgreSQL 15 server of the test's own, on a private socket: where the dumps are
// loaded, and where the live cluster's roles do not exist.
class EmptyServer {
 public:
  EmptyServer(const std::string& bindir, const std::string& dir) : bindir_(bindir), dir_(dir) {
    std::filesystem::create_directories(dir_);
    port_ = free_port();
    run_or_fail({bindir_ + "/initdb", "-D", dir_ + "/data", "-U", "postgres", "--auth=trust", "--no-sync"});
    run_or_fail({bindir_ + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/log", "-w", "-o",
                 "-p " + std::to_string(port_) + " -k " + dir_ + " -c listen_addresses= -c fsync=off",
                 "start"});
  }
  ~EmptyServer() { run_or_fail({bindir_ + "/pg_ctl", "-D", dir_ + "/data", "-m", "immediate", "stop"}); }
  EmptyServer(const EmptyServer&) = delete;
  EmptyServer& operator=(const EmptyServer&) = delete;

  int port() const { return port_; }
  const std::string& socket() const { return dir_; }
  std::vector<std::string> psql(const std::string& database) const {
    return {bindir_ + "/psql",     "-X", "-q",       "-h", dir_,    "-p",
            std::to_string(port_), "-U", "postgres", "-d", database};
  }
  std::vector<std::string> pg_restore(const std::string& database) const {
    return {bindir_ + "/pg_restore",
            "--exit-on-error",
            "-h",
            dir_,
            "-p",
            std::to_string(port_),
            "-U",
            "postgres",
            "-d",
            database};
  }
  // Runs psql with `args`; its exit code and output.
  ProcessResult run(std::vector<std::string> argv) const {
    auto runner = make_posix_process_runner();
    ProcessSpec spec;
    spec.argv = std::move(argv);
    spec.stdout_mode = StdoutMode::capture;
    auto result = runner->run(spec, CancelToken::never());
    EXPECT_TRUE(result.ok());
    return result.ok() ? *result : ProcessResult{};
  }
  std::string query(const std::string& database, const std::string& sql) const {
    auto argv = psql(database);
    argv.insert(argv.end(), {"-At", "-v", "ON_ERROR_STOP=1", "-c", sql});
    const auto result = run(argv);
    EXPECT_TRUE(result.succeeded()) << sql << ": " << result.error_excerpt();
    return result.stdout_text;
  }
  // Every user table's rows, as one text per table (sorted rows), in name order.
  std::string fingerprint(const std::string& database) const {
    std::string out;
    std::istringstream tables(query(database,
                                    "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables "
                                    "ORDER BY 1"));
    std::string table;
    while (std::getline(tables, table))
      out += table + " " +
             query(database,
                   "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY "
                   "t::text)), '') FROM ONLY " +
                       table + " t");
    return out;
  }

 private:
  std::string bindir_, dir_;
  int port_ = 0;
};

class DumpFormatIntegration : public ClusterSuite<DumpFormatIntegration> {
 public:
  static constexpr int kBulkMb = 0;
  static constexpr std::array<const char*, 1> kClusterOptions = {"--role-owned-table"};

 protected:
  static std::vector<std::string> dump_args(const std::string& output, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"dump",     "--config",         cluster_->get("AGENT_CONFIG"),
                                     "--target", cluster_->target(), "--output",
                                     output,     "--scratch",        cluster_->get("SCRATCH")};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  static nlohmann::json manifest(const std::string& output) {
    return nlohmann::json::parse(read_file(output + ".manifest.json"));
  }
};

TEST_F(DumpFormatIntegration, OneTableDumpsExactlyItsRowsAtTheTarget) {
  const std::string output = cluster_->get("OUTPUT_DIR") + "/events-only.sql";
  const auto run = run_agent(dump_args(output, {"--table", "public.events"}));
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const std::string text = read_file(output);
  expect_rows_at_target(text);
  std::size_t copies = 0;
  for (auto at = text.find("\nCOPY "); at != std::string::npos; at = text.find("\nCOPY ", at + 1)) ++copies;
  EXPECT_EQ(copies, 1u) << "only events' rows";
  EXPECT_EQ(text.find("CREATE DATABASE"), std::string::npos) << "loads into an existing database";
  EXPECT_EQ(text.find("marks"), std::string::npos);
  EXPECT_EQ(manifest(output)["dump"]["selection"]["tables"], nlohmann::json::array({"public.events"}));
}

TEST_F(DumpFormatIntegration, PatternsThatTryToBecomeOptionsAreRefusedOrInert) {
  const std::string output = cluster_->get("OUTPUT_DIR") + "/evil.sql";
  const std::string evil = cluster_->dir() + "/evil";
  // Refused before anything is asked of anyone.
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--table=-x"}, std::vector<std::string>{"--table=--file=" + evil},
        std::vector<std::string>{"--table", "events\n--file=" + evil},
        std::vector<std::string>{"--schema", ""}, std::vector<std::string>{"--exclude-table", "a\tb"},
        std::vector<std::string>{"--data-only", "--schema-only"}, std::vector<std::string>{"--jobs", "2"},
        std::vector<std::string>{"--compress", "zstd", "--format", "custom"}}) {
    auto args = dump_args(output, bad);
    const auto run = run_agent(args);
    EXPECT_EQ(run.exit_code, kExitUsage) << bad.front() << ": " << run.stderr_text;
    EXPECT_NE(run.stderr_text.find("HINT"), std::string::npos) << run.stderr_text;
    EXPECT_EQ(run.stderr_text.find("restore: started"), std::string::npos) << "refused before the restore";
  }
  auto to_stdout = dump_args("-", {"--format", "directory"});
  const auto directory_out = run_agent(to_stdout);
  EXPECT_EQ(directory_out.exit_code, kExitUsage) << directory_out.stderr_text;
  EXPECT_NE(directory_out.stderr_text.find("standard output"), std::string::npos)
      << directory_out.stderr_text;
  // One argv element: pg_dump takes it as a pattern that matches nothing (--strict-names).
  const auto run = run_agent(dump_args(output, {"--table", "x --file=" + evil}));
  EXPECT_EQ(run.exit_code, kExitUsage) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("no matching"), std::string::npos) << run.stderr_text;
  EXPECT_FALSE(file_exists(evil));
  EXPECT_FALSE(file_exists(output));
  EXPECT_FALSE(file_exists(output + ".partial"));
  EXPECT_TRUE(processes_matching(cluster_->get("SCRATCH") + "/").empty());
}

// Plain (with --globals), custom, directory --jobs 2 and a zstd stream, each loaded into an
// empty server: the same rows. The plain dump loads with ON_ERROR_STOP only once the roles are
// there.
TEST_F(DumpFormatIntegration, EveryFormatLoadsTheSameRowsIntoAnEmptyServer) {
  const std::string dir = cluster_->get("OUTPUT_DIR");
  const std::string plain = dir + "/all.sql", custom = dir + "/all.pgdump", directory = dir + "/all.dir",
                    stream = dir + "/all.sql.zst";
  auto run = run_agent(dump_args(plain, {"--globals"}));
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  expect_rows_at_target(read_file(plain));
  const auto plain_manifest = manifest(plain);
  EXPECT_EQ(plain_manifest["globals"]["path"], plain + ".globals.sql");
  EXPECT_NE(read_file(plain + ".globals.sql").find("CREATE ROLE marks_owner"), std::string::npos);
  EXPECT_EQ(read_file(plain + ".globals.sql").find("PASSWORD"), std::string::npos);

  run = run_agent(dump_args(custom, {"--format", "custom"}));
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_EQ(read_file(custom).rfind("PGDMP", 0), 0u);
  EXPECT_EQ(manifest(custom)["dump"]["format"], "custom");

  run = run_agent(dump_args(directory, {"--format", "directory", "--jobs", "2"}));
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_TRUE(std::filesystem::is_directory(directory));
  EXPECT_FALSE(file_exists(directory + ".partial"));
  const auto dir_manifest = manifest(directory);
  EXPECT_EQ(dir_manifest["dump"]["jobs"], 2);
  ASSERT_FALSE(dir_manifest["dump"]["files"].empty());
  std::uint64_t listed = 0;
  for (const auto& f : dir_manifest["dump"]["files"]) {
    EXPECT_EQ(std::filesystem::file_size(directory + "/" + f["name"].get<std::string>()),
              f["bytes"].get<std::uint64_t>());
    listed += f["bytes"].get<std::uint64_t>();
  }
  EXPECT_EQ(listed, dir_manifest["dump"]["bytes"].get<std::uint64_t>());

  run = run_agent(dump_args("-", {"--compress", "zstd"}));
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  write_file(stream, run.stdout_text);
  EXPECT_NE(run.stderr_text.find("zstd:3"), std::string::npos) << "the manifest in the log";

  const std::string bindir = cluster_->get("BINDIR");
  EmptyServer server(bindir, cluster_->dir() + "/empty-server");
  const std::string ts_dir = cluster_->dir() + "/empty-server/ts1";
  std::filesystem::create_directories(ts_dir);
  server.query("postgres", "CREATE TABLESPACE ts1 LOCATION '" + ts_dir + "'");
  auto load_plain = server.psql("postgres");
  load_plain.insert(load_plain.end(), {"-v", "ON_ERROR_STOP=1", "-f", plain});
  const auto without_roles = server.run(load_plain);
  EXPECT_FALSE(without_roles.succeeded()) << "marks is owned by a role the empty server lacks";
  EXPECT_NE(without_roles.error_excerpt().find("marks_owner"), std::string::npos)
      << without_roles.error_excerpt();
  server.query("postgres", "DROP DATABASE IF EXISTS api");
  auto load_globals = server.psql("postgres");
  load_globals.insert(load_globals.end(), {"-f", plain + ".globals.sql"});  // CREATE ROLE postgres fails
  server.run(load_globals);
  EXPECT_TRUE(server.run(load_plain).succeeded());
  server.query("postgres", "ALTER DATABASE api RENAME TO api_plain");

  const auto zstd_load =
      server.run({"bash", "-c",
                  "set -o pipefail; zstd -dc \"$1\" | \"$2\" -X -q -v ON_ERROR_STOP=1 -h \"$3\" -p \"$4\" -U "
                  "postgres -d postgres",
                  "load", stream, bindir + "/psql", server.socket(), std::to_string(server.port())});
  EXPECT_TRUE(zstd_load.succeeded()) << zstd_load.error_excerpt();
  server.query("postgres", "ALTER DATABASE api RENAME TO api_zstd");

  for (const auto& [database, archive, jobs] :
       {std::tuple{"api_custom", custom, "1"}, std::tuple{"api_dir", directory, "2"}}) {
    server.query("postgres", std::string("CREATE DATABASE ") + database);
    auto restore = server.pg_restore(database);
    restore.insert(restore.end(), {std::string("--jobs=") + jobs, archive});
    const auto restored = server.run(restore);
    EXPECT_TRUE(restored.succeeded()) << database << ": " << restored.error_excerpt();
  }
  const std::string expected = server.fingerprint("api_plain");
  EXPECT_NE(expected.find("public.events 100 "), std::string::npos) << expected;
  EXPECT_NE(expected.find("public.marks 50 "), std::string::npos) << expected;
  for (const char* database : {"api_zstd", "api_custom", "api_dir"})
    EXPECT_EQ(server.fingerprint(database), expected) << database;
}

}  // namespace
}  // namespace agent::testing
