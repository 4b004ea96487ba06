// The parallel row copy of `agent dump` against a real PostgreSQL 15 and pgBackRest: a few
// thousand tables under the usual soft limit of 1024 open files, a database restored by its
// non-superuser owner who revoked a privilege from itself, and plans pinned to sequential
// scans where the planner would rather read a covering index.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "exec/process.hpp"
#include "harness.hpp"

namespace agent::testing {
namespace {

constexpr int kManyTables = 2500;

// The statements of a plain dump in their order, without the rows: every line but COPY blocks,
// comments, blank lines, the session settings each piece repeats, and psql's restrict lines.
std::vector<std::string> statements_in_order(const std::string& dump) {
  std::vector<std::string> lines;
  std::istringstream in(dump);
  std::string line;
  bool in_copy = false;
  while (std::getline(in, line)) {
    if (in_copy) {
      in_copy = line != "\\.";
      continue;
    }
    if (line.rfind("COPY ", 0) == 0) {
      in_copy = true;
      continue;
    }
    if (line.empty() || line.rfind("--", 0) == 0 || line.rfind("SET ", 0) == 0 ||
        line.rfind("SELECT pg_catalog.set_config(", 0) == 0 || line.rfind("\\restrict ", 0) == 0 ||
        line.rfind("\\unrestrict ", 0) == 0)
      continue;
    lines.push_back(line);
  }
  return lines;
}

// Runs a program and returns its standard output; fails the test if it fails.
std::string output_of(const std::vector<std::string>& argv) {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = argv;
  spec.tag = "psql";
  spec.stdout_mode = StdoutMode::capture;
  auto result = runner->run(spec, CancelToken::never());
  EXPECT_TRUE(result.ok() && result->succeeded())
      << argv.back() << ": " << (result.ok() ? result->error_excerpt(5) : result.error().describe());
  return result.ok() ? result->stdout_text : std::string();
}

class DumpCopyIntegration : public ClusterSuite<DumpCopyIntegration> {
 public:
  static constexpr int kBulkMb = 0;

  static void SetUpTestSuite() {
    ClusterSuite<DumpCopyIntegration>::SetUpTestSuite();
    if (!cluster_->dir().empty()) add_databases_and_target();
  }

 protected:
  // Before a new backup and target: database `many` with a few thousand small tables, and
  // database `shop`, owned by the non-superuser shop_owner, who revoked INSERT on one of its
  // tables from itself; its database prefers index-only scans (cheap random reads) over a
  // covering index of a table whose rows are not in key order.
  static void add_databases_and_target() {
    const auto start = std::chrono::steady_clock::now();
    cluster_->sql("postgres", "CREATE DATABASE many");
    cluster_->sql("many",
                  "DO $$ BEGIN FOR i IN 1.." + std::to_string(kManyTables) +
                      " LOOP"
                      " EXECUTE format('CREATE TABLE t%s (id int, n bigint, x float8, at timestamptz)', i);"
                      " EXECUTE format('INSERT INTO t%s SELECT g, g * 7919, g / 3.0,"
                      " timestamptz ''2024-11-04 09:40:00-08'' + g * interval ''1 minute''"
                      " FROM generate_series(1, 200) g', i);"
                      " IF i % 250 = 0 THEN COMMIT; END IF;"
                      " END LOOP; END $$");
    cluster_->sql("postgres", "CREATE ROLE shop_owner LOGIN CREATEDB");
    cluster_->sql("postgres", "CREATE DATABASE shop OWNER shop_owner");
    cluster_->sql(
        "shop",
        "SET ROLE shop_owner;"
        " CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL, qty int);"
        " INSERT INTO orders SELECT g, 'item ' || g, g % 17 FROM generate_series(1, 5000) g;"
        " REVOKE INSERT ON orders FROM shop_owner;"
        " GRANT SELECT ON orders TO PUBLIC;"
        " CREATE TABLE ledger (id int, note text);"
        " INSERT INTO ledger SELECT g, repeat(md5(g::text), 4)"
        "   FROM (SELECT g FROM generate_series(1, 20000) g ORDER BY md5(g::text)) s;"
        " CREATE INDEX ledger_covering ON ledger (id) INCLUDE (note);"
        " CREATE SEQUENCE receipt_numbers; SELECT setval('receipt_numbers', 41);"
        " CREATE MATERIALIZED VIEW order_totals AS SELECT count(*) AS orders, sum(qty) AS qty FROM orders;"
        " ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC;"
        " REVOKE TEMPORARY ON DATABASE shop FROM PUBLIC;"
        " ALTER DATABASE shop SET random_page_cost = 0.1");
    cluster_->sql("shop", "VACUUM ANALYZE");
    // A backup that holds all this (so the copy does not replay it), its small files bundled
    // (each file is one more to write and, at the end, to delete), then a target after it and a
    // commit after the target, archived.
    const std::string pgbackrest_config = "--config=" + cluster_->get("PGBACKREST_CONFIG");
    ASSERT_TRUE(run_or_fail({"pgbackrest", pgbackrest_config, "--stanza=db", "--type=incr", "--repo1-bundle",
                             "backup"})
                    .succeeded());
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    const std::string psql = cluster_->get("BINDIR") + "/psql";
    target_ = output_of(
        {psql, "-X", "-A", "-t", "-h", cluster_->get("SOCKET_DIR"), "-p", cluster_->get("PORT"), "-U",
         "postgres", "-d", "postgres", "-c",
         "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"});
    while (!target_.empty() && target_.back() == '\n') target_.pop_back();
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    // A plain insert: a DDL statement's lock would be replayed before its commit and held by
    // the paused copy.
    cluster_->sql("api", "INSERT INTO events (id, phase) VALUES (1000, 'after the second target')");
    ASSERT_TRUE(run_or_fail({"pgbackrest", pgbackrest_config, "--stanza=db", "check"}).succeeded());
    std::cerr << "[DumpCopyIntegration] databases, backup and target " << target_ << " ready in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s\n";
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

  static std::vector<std::string> dump_args(const std::string& config, const std::string& database,
                                            const std::string& output) {
    return {"dump",
            "--config",
            config,
            "--target",
            target_,
            "--database",
            database,
            "--output",
            output,
            "--scratch",
            cluster_->get("SCRATCH"),
            "--overwrite"};
  }

  struct Dumped {
    int exit_code = -1;
    std::string log;
    std::string text;
    std::string limits;  // the agent's /proc/PID/limits, read while it ran
  };

  // Runs `agent dump` of `database` with `dump_settings`, under `wrapper` (e.g. prlimit).
  static Dumped dump(const std::string& name, const std::string& database, const std::string& dump_settings,
                     const std::vector<std::string>& wrapper = {}) {
    const std::string output = cluster_->get("OUTPUT_DIR") + "/" + name + ".sql";
    const auto args = dump_args(config_with_dump_settings(name + ".yaml", dump_settings), database, output);
    Dumped dumped;
    std::mutex mutex;
    std::atomic<bool> started{false};
    auto agent = start_agent(
        args,
        [&](std::string_view line) {
          std::lock_guard lock(mutex);
          dumped.log.append(line).push_back('\n');
          started = true;
        },
        wrapper);
    EXPECT_TRUE(agent.ok());
    if (!agent) return dumped;
    for (int i = 0; i < 2000 && !started; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    dumped.limits = read_file("/proc/" + std::to_string(agent.value()->pid()) + "/limits");
    auto result = agent.value()->wait(CancelToken::never(), std::chrono::minutes(4));
    EXPECT_TRUE(result.has_value()) << "the dump did not end";
    if (!result) {
      agent.value()->stop(SIGTERM, std::chrono::seconds(10));
      return dumped;
    }
    dumped.exit_code = result->exit_code;
    dumped.text = read_file(output);
    return dumped;
  }

  // The shop dumps, once for the tests that read them: split over three connections (every
  // table), and the runbook's single pg_dump.
  struct ShopDumps {
    Dumped split, single;
  };
  static const ShopDumps& shop_dumps() {
    static const ShopDumps dumps{dump("shop-split", "shop", "  connections: 3\n  split_table_mb: 0\n"),
                                 dump("shop-single", "shop", "  connections: 1\n")};
    return dumps;
  }

  // Restores `dump_file` as shop_owner (not a superuser) with psql into the fresh server at
  // `home`, returns a pg_dump of the restored database and drops it again.
  static std::string restore_as_owner_and_dump(const std::string& home, int port,
                                               const std::string& dump_file) {
    const std::string bindir = cluster_->get("BINDIR");
    const auto psql = [&](const std::string& user, std::vector<std::string> args) {
      std::vector<std::string> argv{
          bindir + "/psql",     "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", home, "-p",
          std::to_string(port), "-U", user, "-d", "postgres"};
      argv.insert(argv.end(), args.begin(), args.end());
      return run_or_fail(argv);
    };
    const auto restored = psql("shop_owner", {"-f", dump_file});
    EXPECT_TRUE(restored.succeeded())
        << dump_file << " could not be restored by its owner: " << restored.error_excerpt(5);
    std::string text;
    if (restored.succeeded()) {
      const std::string again = home + "/again.sql";
      EXPECT_TRUE(run_or_fail({bindir + "/pg_dump", "-h", home, "-p", std::to_string(port), "-U", "postgres",
                               "-d", "shop", "--create", "--restrict-key=same", "-f", again})
                      .succeeded());
      text = read_file(again);
      // What the revoke left: shop_owner can read its orders but not add to them.
      EXPECT_EQ(output_of({bindir + "/psql", "-X", "-A", "-t", "-h", home, "-p", std::to_string(port), "-U",
                           "postgres", "-d", "shop", "-c",
                           "SELECT count(*), has_table_privilege('shop_owner', 'orders', 'INSERT'),"
                           " has_table_privilege('shop_owner', 'orders', 'SELECT') FROM orders"}),
                "5000|f|t\n");
    }
    psql("postgres", {"-c", "DROP DATABASE IF EXISTS shop"});
    return text;
  }

  inline static std::string target_;
};

TEST_F(DumpCopyIntegration, AFewThousandTablesUnderTheUsualOpenFileLimitGiveASinglePgDumpsRows) {
  // Every table is copied by the agent, two connections, under a soft limit of 1024 open
  // files: one spill file per range ran out of descriptors here.
  const auto split = dump("many-split", "many", "  connections: 2\n  split_table_mb: 0\n",
                          {"prlimit", "--nofile=1024:", "--"});
  ASSERT_EQ(split.exit_code, 0) << split.log;
  EXPECT_NE(split.limits.find("Max open files            1024"), std::string::npos) << split.limits;
  EXPECT_NE(split.log.find("copying the rows of " + std::to_string(kManyTables + 0)), std::string::npos)
      << split.log;
  EXPECT_NE(split.log.find("over 2 connections"), std::string::npos) << split.log;
  EXPECT_NE(split.log.find("replay stayed paused at"), std::string::npos) << split.log;
  const auto single = dump("many-single", "many", "  connections: 1\n");
  ASSERT_EQ(single.exit_code, 0) << single.log;

  const auto split_blocks = copy_blocks(split.text);
  const auto single_blocks = copy_blocks(single.text);
  EXPECT_EQ(single_blocks.size(), static_cast<std::size_t>(kManyTables));
  ASSERT_EQ(split_blocks.size(), single_blocks.size());
  for (const auto& [copy_line, rows] : single_blocks) {
    const auto found = split_blocks.find(copy_line);
    ASSERT_NE(found, split_blocks.end()) << copy_line;
    ASSERT_TRUE(found->second == rows) << copy_line << ": the rows differ";
  }
  EXPECT_EQ(statements_in_order(split.text), statements_in_order(single.text));
  // The schema archive and its lists went with the dump step.
  for (const char* name : {"dump-schema.pgdump", "dump-post-data.list", "dump-acls.list"})
    EXPECT_FALSE(file_exists(cluster_->get("SCRATCH") + "/" + name)) << name;
}

// pg_dump writes privileges after the rows: a table owner who revoked INSERT from itself can
// still load its rows. The pieces keep that order, statement for statement, and the owner
// restores the same database from either dump.
TEST_F(DumpCopyIntegration, AnOwnerWhoRevokedItsOwnInsertRestoresTheSameDatabaseAsFromPgDump) {
  const auto& dumps = shop_dumps();
  ASSERT_EQ(dumps.split.exit_code, 0) << dumps.split.log;
  ASSERT_EQ(dumps.single.exit_code, 0) << dumps.single.log;
  EXPECT_NE(dumps.split.log.find("over 3 connections"), std::string::npos) << dumps.split.log;
  const auto manifest =
      nlohmann::json::parse(read_file(cluster_->get("OUTPUT_DIR") + "/shop-split.sql.manifest.json"));
  EXPECT_EQ(manifest["dump"]["tables_copied_in_parallel"].size(), 2u) << manifest.dump();

  // Statement for statement in pg_dump's order: the schema, the rows, the indexes, then the
  // database's privileges, every other privilege, and the materialized view's contents.
  const auto split_statements = statements_in_order(dumps.split.text);
  EXPECT_EQ(split_statements, statements_in_order(dumps.single.text));
  const auto position = [&](const std::string& part) {
    for (std::size_t i = 0; i < split_statements.size(); ++i)
      if (split_statements[i].find(part) != std::string::npos) return i;
    ADD_FAILURE() << "no statement with " << part;
    return split_statements.size();
  };
  EXPECT_LT(position("ADD CONSTRAINT orders_pkey"), position(" ON DATABASE shop "));
  EXPECT_LT(position(" ON DATABASE shop "), position(" ON TABLE public.orders "));
  EXPECT_LT(position(" ON TABLE public.orders "), position("REFRESH MATERIALIZED VIEW public.order_totals"));
  EXPECT_LT(dumps.split.text.find("COPY public.orders "), dumps.split.text.find(" ON TABLE public.orders "));

  // Restored by shop_owner (not a superuser) into an empty server, each way.
  const std::string bindir = cluster_->get("BINDIR");
  const std::string home = cluster_->dir() + "/restored-by-owner";
  const std::string data = home + "/data";
  const int port = free_port();
  ASSERT_TRUE(run_or_fail({bindir + "/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                           "--locale=C", "--no-sync", "--no-instructions"})
                  .succeeded());
  write_file(data + "/postgresql.auto.conf", "port = " + std::to_string(port) +
                                                 "\nlisten_addresses = ''\nunix_socket_directories = '" +
                                                 home + "'\nfsync = off\ntimezone = 'America/Vancouver'\n");
  ASSERT_TRUE(run_or_fail({bindir + "/pg_ctl", "-D", data, "-l", home + "/log", "-w", "start"}).succeeded());
  struct StopServer {
    std::vector<std::string> argv;
    ~StopServer() { run_or_fail(argv); }
  } stop{{bindir + "/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"}};
  ASSERT_TRUE(run_or_fail({bindir + "/psql", "-X", "-q", "-h", home, "-p", std::to_string(port), "-U",
                           "postgres", "-d", "postgres", "-c", "CREATE ROLE shop_owner LOGIN CREATEDB"})
                  .succeeded());
  const std::string from_single =
      restore_as_owner_and_dump(home, port, cluster_->get("OUTPUT_DIR") + "/shop-single.sql");
  const std::string from_split =
      restore_as_owner_and_dump(home, port, cluster_->get("OUTPUT_DIR") + "/shop-split.sql");
  ASSERT_FALSE(from_single.empty());
  EXPECT_NE(from_single.find("COPY public.orders "), std::string::npos);
  EXPECT_TRUE(from_split == from_single) << "the owner's restores differ";
}

// Where random reads are configured cheap, the planner reads `SELECT ... FROM ONLY ledger
// OFFSET a LIMIT n` through the covering index, in key order; pg_dump's COPY reads the table in
// physical order. The copy sessions' pins leave it a sequential scan: the ranges add up to
// pg_dump's rows in pg_dump's order.
TEST_F(DumpCopyIntegration, PlansArePinnedToASequentialScanWhereTheIndexLooksCheaper) {
  const std::string psql = cluster_->get("BINDIR") + "/psql";
  const auto plan = output_of({psql, "-X", "-A", "-t", "-h", cluster_->get("SOCKET_DIR"), "-p",
                               cluster_->get("PORT"), "-U", "postgres", "-d", "shop", "-c",
                               "EXPLAIN SELECT id, note FROM ONLY public.ledger OFFSET 9000 LIMIT 5000"});
  ASSERT_NE(plan.find("Index Only Scan using ledger_covering"), std::string::npos)
      << "without the pins the planner would not pick the index; the test proves nothing:\n"
      << plan;

  const auto& dumps = shop_dumps();
  ASSERT_EQ(dumps.split.exit_code, 0) << dumps.split.log;
  ASSERT_EQ(dumps.single.exit_code, 0) << dumps.single.log;
  const auto split_blocks = copy_blocks(dumps.split.text);
  const auto single_blocks = copy_blocks(dumps.single.text);
  const std::string ledger = "COPY public.ledger (id, note) FROM stdin;";
  ASSERT_EQ(single_blocks.count(ledger), 1u);
  ASSERT_EQ(split_blocks.count(ledger), 1u);
  EXPECT_TRUE(split_blocks.at(ledger) == single_blocks.at(ledger))
      << "the ledger's rows differ from pg_dump's";
  // The rows are not in key order: the index would have given them another order.
  std::vector<int> ids;
  std::istringstream rows(single_blocks.at(ledger));
  for (std::string line; std::getline(rows, line);)
    if (line != "\\.") ids.push_back(std::stoi(line.substr(0, line.find('\t'))));
  EXPECT_EQ(ids.size(), 20000u);
  EXPECT_FALSE(std::is_sorted(ids.begin(), ids.end()))
      << "physical order is key order: the test proves nothing";
  for (const auto& [copy_line, table_rows] : single_blocks) {
    ASSERT_EQ(split_blocks.count(copy_line), 1u) << copy_line;
    EXPECT_TRUE(split_blocks.at(copy_line) == table_rows) << copy_line;
  }
}

// The pieces follow pg_dump 15's format, order and session: another pg_dump writes the whole
// dump alone, and says so.
TEST_F(DumpCopyIntegration, AnUntestedPgDumpWritesTheWholeDumpAlone) {
  const std::string bindir = cluster_->get("BINDIR");
  const std::string other = cluster_->dir() + "/bindir-16";
  ASSERT_EQ(mkdir(other.c_str(), 0700), 0);
  for (const auto& entry : std::filesystem::directory_iterator(bindir))
    if (entry.path().filename() != "pg_dump")
      std::filesystem::create_symlink(entry.path(), other + "/" + entry.path().filename().string());
  write_file(other + "/pg_dump",
             "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'pg_dump (PostgreSQL) 16.4'; exit 0; fi\n"
             "exec " +
                 bindir + "/pg_dump \"$@\"\n");
  ASSERT_EQ(chmod((other + "/pg_dump").c_str(), 0700), 0);
  std::string config =
      read_file(config_with_dump_settings("other-pg-dump.yaml", "  connections: 3\n  split_table_mb: 0\n"));
  const auto at = config.find("bindir: " + bindir + "\n");
  ASSERT_NE(at, std::string::npos) << config;
  config.replace(at, 8 + bindir.size(), "bindir: " + other);
  write_file(cluster_->dir() + "/other-pg-dump.yaml", config);
  const std::string output = cluster_->get("OUTPUT_DIR") + "/other-pg-dump.sql";
  const auto run = run_agent(dump_args(cluster_->dir() + "/other-pg-dump.yaml", "shop", output));
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  EXPECT_NE(
      run.stderr_text.find("pg_dump (PostgreSQL) 16.4 is not a version the parallel copy was tested with "
                           "(PostgreSQL 15): one pg_dump writes the whole dump"),
      std::string::npos)
      << run.stderr_text;
  EXPECT_EQ(run.stderr_text.find("copying the rows of"), std::string::npos) << run.stderr_text;
  EXPECT_TRUE(nlohmann::json::parse(read_file(output + ".manifest.json"))["dump"]["tables_copied_in_parallel"]
                  .empty());
  const auto& dumps = shop_dumps();
  ASSERT_EQ(dumps.single.exit_code, 0) << dumps.single.log;
  EXPECT_EQ(statements_in_order(read_file(output)), statements_in_order(dumps.single.text));
  EXPECT_TRUE(copy_blocks(read_file(output)) == copy_blocks(dumps.single.text));
}

// The copy is paused at the target while the rows are copied: were its replay resumed
// meanwhile (here it promotes the copy), the connections could have seen different data. The
// replay state is read again after the last range and the dump fails.
TEST_F(DumpCopyIntegration, AReplayResumedWhileTheRowsAreCopiedFailsTheDump) {
  const std::string output = cluster_->get("OUTPUT_DIR") + "/resumed.sql";
  const auto args = dump_args(
      config_with_dump_settings("resumed.yaml", "  connections: 2\n  split_table_mb: 0\n"), "many", output);
  std::mutex mutex;
  std::string log;
  std::atomic<bool> copying{false};
  auto agent = start_agent(args, [&](std::string_view line) {
    std::lock_guard lock(mutex);
    log.append(line).push_back('\n');
    if (line.find("copying the rows of") != std::string_view::npos) copying = true;
  });
  ASSERT_TRUE(agent.ok());
  for (int i = 0; i < 120000 && !copying && !agent.value()->poll(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_TRUE(copying) << "the dump ended before the rows were copied";
  const auto resumed =
      run_or_fail({cluster_->get("BINDIR") + "/psql", "-X", "-q", "-h", cluster_->get("SCRATCH") + "/run",
                   "-p", cluster_->get("SCRATCH_PORT"), "-U", "postgres", "-d", "postgres", "-c",
                   "SELECT pg_catalog.pg_wal_replay_resume()"});
  ASSERT_TRUE(resumed.succeeded()) << resumed.error_excerpt(5);
  auto result = agent.value()->wait(CancelToken::never(), std::chrono::minutes(4));
  ASSERT_TRUE(result.has_value());
  std::lock_guard lock(mutex);
  EXPECT_EQ(result->exit_code, 4) << log;  // verification
  EXPECT_NE(log.find("is 'not in recovery' after the rows were copied, no longer paused at the target"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("replay stayed paused"), std::string::npos) << log;
  EXPECT_FALSE(file_exists(output));
  EXPECT_FALSE(file_exists(output + ".partial"));
}

}  // namespace
}  // namespace agent::testing
