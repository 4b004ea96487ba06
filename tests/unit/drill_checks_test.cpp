// The restore drill's checks against a scripted copy: every table read and counted, the first
// failing object named, amcheck run where installed and skipped with the reason where not,
// assertions; the drill job's modes; pg_checksums' output.
#include "pipelines/drill_checks.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "config/config.hpp"
#include "pipelines/drill_job.hpp"

namespace agent {
namespace {

// A copy whose answers are scripted per database: query text -> rows (or an error), and the
// COPY data of each table.
struct FakeCopy {
  struct Database {
    std::map<std::string, std::vector<std::vector<std::string>>> answers;  // by a part of the SQL
    std::map<std::string, std::string> failing;                            // SQL part -> error message
    std::map<std::string, std::string> copy_data;                          // table -> COPY text
  };
  std::map<std::string, Database> databases;
  std::vector<std::string> sent;
  int connections = 0;
};

class FakeSession final : public CopySession {
 public:
  FakeSession(FakeCopy& copy, std::string database) : copy_(copy), database_(std::move(database)) {}
  Status execute(const std::string& sql) override {
    copy_.sent.push_back(database_ + ": " + sql);
    return {};
  }
  Result<std::vector<std::vector<std::string>>> query(const std::string& sql) override {
    copy_.sent.push_back(database_ + ": " + sql);
    auto& db = copy_.databases[database_];
    for (const auto& [part, message] : db.failing)
      if (sql.find(part) != std::string::npos) return make_error(ErrorKind::external_tool, message);
    for (const auto& [part, rows] : db.answers)
      if (sql.find(part) != std::string::npos) return rows;
    return std::vector<std::vector<std::string>>{};
  }
  Status copy_out(const std::string& sql, const std::function<bool(const char*, std::size_t)>& on_data,
                  const CancelToken&) override {
    copy_.sent.push_back(database_ + ": " + sql);
    auto& db = copy_.databases[database_];
    for (const auto& [part, message] : db.failing)
      if (sql.find(part) != std::string::npos) return make_error(ErrorKind::external_tool, message);
    for (const auto& [table, data] : db.copy_data)
      if (sql.find("FROM ONLY " + table + ")") != std::string::npos) {
        // In two pieces, split inside a row.
        const auto half = data.size() / 2;
        on_data(data.data(), half);
        on_data(data.data() + half, data.size() - half);
        return {};
      }
    return {};
  }

 private:
  FakeCopy& copy_;
  std::string database_;
};

class FakeConnector final : public CopyConnector {
 public:
  explicit FakeConnector(FakeCopy& copy) : copy_(copy) {}
  Result<std::unique_ptr<CopySession>> connect(const std::string& conninfo) override {
    ++copy_.connections;
    const std::string database = conninfo.substr(conninfo.find("dbname=") + 7);
    if (copy_.databases.count(database) == 0)
      return make_error(ErrorKind::external_tool, "database \"" + database + "\" does not exist");
    return std::unique_ptr<CopySession>(new FakeSession(copy_, database));
  }

 private:
  FakeCopy& copy_;
};

FakeCopy healthy_copy() {
  FakeCopy copy;
  auto& postgres = copy.databases["postgres"];
  postgres.answers[kDrillDatabasesQuery] = {{"api"}, {"postgres"}};
  postgres.answers[kDrillChecksumVersionQuery] = {{"1"}};
  postgres.answers[kDrillTablesQuery] = {{"pg_catalog.pg_class", "1259"}};
  postgres.copy_data["pg_catalog.pg_class"] = "a\nb\n";
  auto& api = copy.databases["api"];
  api.answers[kDrillTablesQuery] = {{"public.events", "16400"}, {"public.\"Odd\"", "16410"}};
  api.answers[kDrillUnloggedQuery] = {{"0"}};
  api.answers[kDrillAmcheckQuery] = {{"public", "1.3"}};
  api.answers[kDrillIndexesQuery] = {{"public.events_pkey", "16405"}};
  api.copy_data["public.events"] = "1\tbefore\\nline\n2\tbefore\n3\tbefore\n";
  api.copy_data["public.\"Odd\""] = "";
  return copy;
}

CopyCheckSettings settings_for(std::vector<std::string> databases = {}) {
  CopyCheckSettings settings;
  settings.conninfo = [](const std::string& database) { return "host=/run dbname=" + database; };
  settings.databases = std::move(databases);
  return settings;
}

const DrillCheck* find(const DrillFindings& findings, const std::string& name, const std::string& database) {
  for (const auto& check : findings.checks)
    if (check.name == name && check.database == database) return &check;
  return nullptr;
}

TEST(DrillChecks, ReadsEveryTableOfEveryDatabaseAndCountsItsRows) {
  auto copy = healthy_copy();
  FakeConnector connector(copy);
  DrillFindings findings;
  ASSERT_TRUE(run_copy_checks(connector, settings_for(), CancelToken::never(), findings).ok());
  EXPECT_FALSE(findings.failed());
  EXPECT_EQ(findings.data_checksum_version, 1);
  ASSERT_EQ(findings.tables.size(), 3u);
  EXPECT_EQ(findings.tables[0].table, "public.events");
  EXPECT_EQ(findings.tables[0].rows, 3u);  // an escaped newline in a value is not a row
  EXPECT_EQ(findings.tables[1].rows, 0u);
  EXPECT_EQ(findings.tables[2].database, "postgres");
  EXPECT_EQ(findings.tables[2].rows, 2u);
  const auto* tables = find(findings, "tables", "api");
  ASSERT_NE(tables, nullptr);
  EXPECT_EQ(tables->checked, 2u);
  EXPECT_EQ(tables->result, "passed");
  // Row-level security off, so a policy makes the read fail rather than hide rows.
  EXPECT_NE(
      std::find(copy.sent.begin(), copy.sent.end(), "api: SET row_security = off; SET statement_timeout = 0"),
      copy.sent.end());
}

TEST(DrillChecks, RunsAmcheckWhereInstalledAndSaysWhyNotElsewhere) {
  auto copy = healthy_copy();
  FakeConnector connector(copy);
  DrillFindings findings;
  ASSERT_TRUE(run_copy_checks(connector, settings_for(), CancelToken::never(), findings).ok());
  const auto* indexes = find(findings, "amcheck-indexes", "api");
  ASSERT_NE(indexes, nullptr);
  EXPECT_EQ(indexes->result, "passed");
  EXPECT_EQ(indexes->checked, 1u);
  EXPECT_NE(
      std::find(copy.sent.begin(), copy.sent.end(),
                "api: SELECT public.bt_index_check(index => 16405::pg_catalog.regclass, heapallindexed => "
                "true)"),
      copy.sent.end());
  const auto* heap = find(findings, "amcheck-heap", "api");
  ASSERT_NE(heap, nullptr);
  EXPECT_EQ(heap->checked, 2u);
  const auto* skipped = find(findings, "amcheck-indexes", "postgres");
  ASSERT_NE(skipped, nullptr);
  EXPECT_EQ(skipped->result, "skipped");
  EXPECT_NE(skipped->reason.find("CREATE EXTENSION amcheck on the primary"), std::string::npos);
}

TEST(DrillChecks, NamesTheFirstFailingObjectAndGoesOn) {
  auto copy = healthy_copy();
  auto& api = copy.databases["api"];
  api.failing["FROM ONLY public.events)"] = "could not read block 3 in file \"base/16384/16400\"";
  api.answers["verify_heapam(relation => 16410"] = {
      {"0", "4", "line pointer redirection to item at offset 9"}};
  api.failing["bt_index_check(index => 16405"] = "index \"events_pkey\" lacks a main relation tuple";
  FakeConnector connector(copy);
  DrillFindings findings;
  ASSERT_TRUE(run_copy_checks(connector, settings_for(), CancelToken::never(), findings).ok());
  EXPECT_TRUE(findings.failed());
  const auto* tables = find(findings, "tables", "api");
  ASSERT_NE(tables, nullptr);
  EXPECT_EQ(tables->result, "failed");
  EXPECT_EQ(tables->first_failure, "api.public.events");
  EXPECT_NE(tables->reason.find("could not read block 3"), std::string::npos);
  EXPECT_EQ(tables->checked, 2u);  // the next table was still read
  EXPECT_EQ(tables->failed, 1u);
  const auto* heap = find(findings, "amcheck-heap", "api");
  EXPECT_EQ(heap->first_failure, "api.public.\"Odd\"");
  EXPECT_EQ(heap->reason, "block 0, item 4: line pointer redirection to item at offset 9");
  const auto* indexes = find(findings, "amcheck-indexes", "api");
  EXPECT_EQ(indexes->first_failure, "api.public.events_pkey");
  // The postgres database is still checked after api's failures.
  EXPECT_EQ(find(findings, "tables", "postgres")->result, "passed");
}

TEST(DrillChecks, OnlyTheDatabasesAskedForAndAMissingOneFails) {
  auto copy = healthy_copy();
  FakeConnector connector(copy);
  DrillFindings findings;
  ASSERT_TRUE(run_copy_checks(connector, settings_for({"api", "nope"}), CancelToken::never(), findings).ok());
  EXPECT_EQ(find(findings, "tables", "postgres"), nullptr);
  const auto* missing = find(findings, "tables", "nope");
  ASSERT_NE(missing, nullptr);
  EXPECT_EQ(missing->result, "failed");
  EXPECT_EQ(missing->first_failure, "nope");
  EXPECT_EQ(find(findings, "tables", "api")->result, "passed");
}

TEST(DrillChecks, AssertionsMustReturnOneTrue) {
  auto copy = healthy_copy();
  auto& api = copy.databases["api"];
  api.answers["SELECT true"] = {{"t"}};
  api.answers["SELECT false"] = {{"f"}};
  api.answers["SELECT 1, 2"] = {{"1", "2"}};
  api.failing["SELECT pg_sleep"] = "canceling statement due to statement timeout";
  FakeConnector connector(copy);
  auto settings = settings_for({"api"});
  settings.statement_timeout_seconds = 7;
  settings.assertions = {{"api", "SELECT true"},
                         {"api", "SELECT false"},
                         {"api", "SELECT 1, 2"},
                         {"api", "SELECT pg_sleep(60)"}};
  DrillFindings findings;
  ASSERT_TRUE(run_copy_checks(connector, settings, CancelToken::never(), findings).ok());
  std::vector<std::string> results, reasons;
  for (const auto& check : findings.checks)
    if (check.name == "assertion") {
      results.push_back(check.result);
      reasons.push_back(check.reason);
    }
  EXPECT_EQ(results, (std::vector<std::string>{"passed", "failed", "failed", "failed"}));
  EXPECT_EQ(reasons[1], "is false");
  EXPECT_NE(reasons[2].find("one boolean"), std::string::npos);
  EXPECT_NE(reasons[3].find("statement timeout"), std::string::npos);
  EXPECT_NE(std::find(copy.sent.begin(), copy.sent.end(),
                      "api: SET row_security = off; SET statement_timeout = '7s'"),
            copy.sent.end());
}

TEST(DrillChecks, ChecksumsSkippedWithTheReason) {
  class NoRunner final : public ProcessRunner {
   public:
    Result<ProcessResult> run(const ProcessSpec& spec, const CancelToken&) override {
      ADD_FAILURE() << "unexpected run of " << spec.argv.front();
      return ProcessResult{};
    }
    Result<std::unique_ptr<RunningProcess>> start(const ProcessSpec&) override {
      return make_error(ErrorKind::internal, "unexpected");
    }
  } runner;
  const auto none = run_checksums_check(runner, "/bin", "/copy", 0, true, CancelToken::never());
  EXPECT_EQ(none.result, "skipped");
  EXPECT_NE(none.reason.find("no data checksums"), std::string::npos);
  const auto unclean = run_checksums_check(runner, "/bin", "/copy", 1, false, CancelToken::never());
  EXPECT_EQ(unclean.result, "skipped");
  EXPECT_NE(unclean.reason.find("did not shut down cleanly"), std::string::npos);
}

TEST(DrillChecks, ParsesPgChecksumsOutput) {
  const auto out = parse_checksums_output(
      {"pg_checksums: error: checksum verification failed in file \"/s/data/base/5/16400\", block 3: "
       "calculated "
       "checksum 1A2B but block contains 3C4D",
       "pg_checksums: error: checksum verification failed in file \"/s/data/base/5/16401\", block 0: x",
       "Checksum operation completed", "Files scanned:   1267", "Blocks scanned:  4170", "Bad checksums:  2",
       "Data checksum version: 1"});
  EXPECT_EQ(out.blocks, 4170u);
  EXPECT_EQ(out.bad, 2u);
  EXPECT_EQ(out.first_bad, "/s/data/base/5/16400, block 3");
}

// pgBackRest 2.56.0's verify --set --verbose at console level info, as the drill runs it.
class VerifyRunner final : public ProcessRunner {
 public:
  std::vector<std::string> lines;
  int exit_code = 0;
  std::vector<std::vector<std::string>> argvs;
  Result<ProcessResult> run(const ProcessSpec& spec, const CancelToken&) override {
    argvs.push_back(spec.argv);
    if (spec.on_line)
      for (const auto& line : lines) spec.on_line(line);
    ProcessResult result;
    result.exit_code = exit_code;
    return result;
  }
  Result<std::unique_ptr<RunningProcess>> start(const ProcessSpec&) override {
    return make_error(ErrorKind::internal, "unexpected");
  }
};

const PgBackRestTarget kVerifyTarget{"/usr/bin/pgbackrest", {}, "demo", 2};

TEST(DrillChecks, RepositoryVerifyOfTheDrilledSetPasses) {
  VerifyRunner runner;
  runner.lines = {
      "P00   INFO: verify command begin 2.56.0: --log-level-console=info --repo=2 --set=20241104-020000F",
      "P00   INFO: stanza: demo",
      "                                    status: ok",
      "                                      archiveId: 15-1, total WAL checked: 4, total valid WAL: 4",
      "                                        missing: 0, checksum invalid: 0, size invalid: 0, other: 0",
      "                                      backup: 20241104-020000F, status: valid, total files checked: "
      "1270, total valid files: 1270",
      "P00   INFO: verify command end: completed successfully"};
  const auto check = run_repository_verify(runner, kVerifyTarget, {2, 56, 0, "2.56.0"}, "20241104-020000F",
                                           CancelToken::never());
  EXPECT_EQ(check.name, "pgbackrest-verify");
  EXPECT_EQ(check.result, "passed") << check.reason;
  EXPECT_EQ(check.checked, 1274u);
  EXPECT_EQ(check.failed, 0u);
  ASSERT_EQ(runner.argvs.size(), 1u);
  const auto& argv = runner.argvs[0];
  for (const char* option : {"--stanza=demo", "--repo=2", "--set=20241104-020000F", "--verbose", "verify"})
    EXPECT_NE(std::find(argv.begin(), argv.end(), option), argv.end()) << option;
  EXPECT_EQ(argv.back(), "verify");
}

TEST(DrillChecks, RepositoryVerifyNamesTheFirstInvalidFile) {
  VerifyRunner runner;
  runner.lines = {
      "P00   INFO: verify command begin 2.56.0: --set=20241104-020000F",
      "P01   INFO: invalid checksum '20241104-020000F/pg_data/base/16384/16390'",
      "P01   INFO: invalid checksum '20241104-020000F/pg_data/base/16384/16391'",
      "P00   INFO: stanza: demo",
      "                                    status: error",
      "                                      archiveId: 15-1, total WAL checked: 4, total valid WAL: 4",
      "                                      backup: 20241104-020000F, status: invalid, total files checked: "
      "1270, "
      "total valid files: 1268",
      "                                        missing: 0, checksum invalid: 2, size invalid: 0, other: 0",
      "P00   INFO: verify command end: completed successfully"};
  const auto check = run_repository_verify(runner, kVerifyTarget, {2, 56, 0, "2.56.0"}, "20241104-020000F",
                                           CancelToken::never());
  EXPECT_EQ(check.result, "failed");
  EXPECT_EQ(check.checked, 1274u);
  EXPECT_EQ(check.failed, 2u);
  EXPECT_EQ(check.first_failure, "invalid checksum '20241104-020000F/pg_data/base/16384/16390'");
  EXPECT_NE(check.reason.find("status: error"), std::string::npos) << check.reason;
}

TEST(DrillChecks, RepositoryVerifyThatFailsOrSaysNothingFailsTheCheck) {
  VerifyRunner runner;
  runner.exit_code = 31;
  runner.lines = {"P00  ERROR: [031]: option 'set' not valid for command 'verify'"};
  const auto failed = run_repository_verify(runner, kVerifyTarget, {2, 56, 0, "2.56.0"}, "20241104-020000F",
                                            CancelToken::never());
  EXPECT_EQ(failed.result, "failed");
  EXPECT_NE(failed.reason.find("exited with code 31"), std::string::npos) << failed.reason;
  EXPECT_EQ(failed.failed, 1u);
  runner.exit_code = 0;
  runner.lines = {};
  const auto silent = run_repository_verify(runner, kVerifyTarget, {2, 56, 0, "2.56.0"}, "20241104-020000F",
                                            CancelToken::never());
  EXPECT_EQ(silent.result, "failed");
  EXPECT_NE(silent.reason.find("no result"), std::string::npos) << silent.reason;
}

TEST(DrillChecks, RepositoryVerifySkippedWithTheReasonBeforePgBackRest255) {
  VerifyRunner runner;
  const auto check = run_repository_verify(runner, kVerifyTarget, {2, 45, 0, "2.45"}, "20241104-020000F",
                                           CancelToken::never());
  EXPECT_EQ(check.result, "skipped");
  EXPECT_NE(check.reason.find("pgBackRest 2.45"), std::string::npos) << check.reason;
  EXPECT_NE(check.reason.find("2.55"), std::string::npos) << check.reason;
  EXPECT_TRUE(runner.argvs.empty()) << "verify ran on a pgBackRest without --set";
}

TEST(DrillChecks, AMissingWalSegmentIsOnlyAWarningNotTheFirstFailure) {
  const auto out =
      parse_verify_output({"P01   WARN: file missing '15-1/0000000100000000/000000010000000000000001'",
                           "P00   INFO: stanza: demo", "  status: ok"});
  EXPECT_TRUE(out.status_seen);
  EXPECT_FALSE(out.status_error);
  EXPECT_TRUE(out.first_invalid.empty()) << out.first_invalid;
}

TEST(DrillJob, ModesTargetsAndAssertions) {
  const auto config =
      load_config_text("state_dir: /state\ndrill:\n  databases: api, shop\n", "t.yaml", {}).config;
  const SysMicros now = parse_target_time("2024-11-04 09:40:00-08:00")->instant;
  auto latest = build_drill_job(config, {}, now);
  ASSERT_TRUE(latest.ok()) << latest.error().describe();
  EXPECT_EQ(latest->mode, "latest");
  EXPECT_EQ(latest->copy.target.instant, now);  // as far as the archived WAL goes
  EXPECT_EQ(latest->copy.output, "-");
  EXPECT_EQ(latest->copy.database, "postgres");
  EXPECT_EQ(latest->databases, (std::vector<std::string>{"api", "shop"}));
  EXPECT_EQ(latest->manifest_dir, "/state/drills");

  DrillArguments set;
  set.backup_set = "20241104-020000F";
  set.databases = {"api"};
  set.assertions = {"api: SELECT count(*) > 0 FROM events"};
  auto by_set = build_drill_job(config, set, now);
  ASSERT_TRUE(by_set.ok());
  EXPECT_EQ(by_set->mode, "set");
  EXPECT_EQ(by_set->databases, (std::vector<std::string>{"api"}));
  ASSERT_EQ(by_set->assertions.size(), 1u);
  EXPECT_EQ(by_set->assertions[0].database, "api");
  EXPECT_EQ(by_set->assertions[0].sql, "SELECT count(*) > 0 FROM events");

  DrillArguments target;
  target.target = "2024-11-04 09:00:00-08:00";
  EXPECT_EQ(build_drill_job(config, target, now)->mode, "target");
  target.latest = true;
  EXPECT_EQ(build_drill_job(config, target, now).error().kind, ErrorKind::usage);

  DrillArguments bad;
  bad.assertions = {"SELECT 1"};
  EXPECT_EQ(build_drill_job(config, bad, now).error().kind, ErrorKind::usage);
}

TEST(DrillJob, TheRepositoryIsTheCommandsElseDrillRepoElseAsADumps) {
  const SysMicros now = parse_target_time("2024-11-04 09:40:00-08:00")->instant;
  const auto plain = load_config_text("state_dir: /state\n", "t.yaml", {}).config;
  EXPECT_EQ(build_drill_job(plain, {}, now)->copy.repo, 0);  // pgBackRest's choice
  const auto dumps_repo = load_config_text("pgbackrest:\n  repo: 1\n", "t.yaml", {}).config;
  EXPECT_EQ(build_drill_job(dumps_repo, {}, now)->copy.repo, 1);
  const auto drills_repo =
      load_config_text("pgbackrest:\n  repo: 1\ndrill:\n  repo: 2\n", "t.yaml", {}).config;
  EXPECT_EQ(build_drill_job(drills_repo, {}, now)->copy.repo, 2);
  DrillArguments asked;
  asked.repo = 3;
  EXPECT_EQ(build_drill_job(drills_repo, asked, now)->copy.repo, 3);
  for (int bad : {0, 257}) {
    asked.repo = bad;
    auto refused = build_drill_job(drills_repo, asked, now);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.error().kind, ErrorKind::usage);
    EXPECT_NE(refused.error().message.find("repository " + std::to_string(bad)), std::string::npos);
  }
  // Out of range, of the wrong type, or garbage: a config issue, never a repository.
  for (const char* bad : {"257", "-1", "two", "2.5", "[2]", "99999999999999999999"})
    EXPECT_FALSE(load_config_text(std::string("drill:\n  repo: ") + bad + "\n", "t.yaml", {}).issues.empty())
        << bad;
}

TEST(DrillJob, AssertionsFileSkipsCommentsAndNamesTheBadLine) {
  auto parsed =
      parse_drill_assertions("# rows\napi: SELECT count(*) > 0 FROM events\n\n shop :SELECT true\n", "f");
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[1].database, "shop");
  EXPECT_EQ((*parsed)[1].sql, "SELECT true");
  auto bad = parse_drill_assertions("api: SELECT true\nno colon here\n", "a.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("a.txt:2"), std::string::npos);
}

}  // namespace
}  // namespace agent
