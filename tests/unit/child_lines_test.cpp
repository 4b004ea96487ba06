// Child programs' lines are logged at the level they print, and the lines that continue a
// message join its record: the classifier per program, then the real runner end to end.
#include "exec/child_lines.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "core/log.hpp"
#include "exec/process.hpp"

namespace agent {
namespace {

using Level = spdlog::level::level_enum;

std::optional<Level> level(ChildLine line) {
  EXPECT_FALSE(line.continues);
  return line.level;
}

TEST(ChildLines, PgBackRestConsoleAndStderrLevels) {
  EXPECT_EQ(level(pgbackrest_line("P00   WARN: archive-push command encountered error(s)")), Level::warn);
  EXPECT_EQ(level(pgbackrest_line("P00  ERROR: [075]: unable to find backup set with stop time less than 1")),
            Level::err);
  EXPECT_EQ(level(pgbackrest_line("2024-11-04 09:40:00.123 P00  ERROR: [050]: unable to acquire lock")),
            Level::err);
  EXPECT_EQ(
      level(pgbackrest_line("2024-11-04 09:40:00.123 P00   WARN: option 'repo1-retention-full' is not set")),
      Level::warn);
  EXPECT_EQ(level(pgbackrest_line("ERROR: [075]: unable to find backup set")), Level::err);
  EXPECT_EQ(level(pgbackrest_line("WARN: a timeline was created")), Level::warn);
  EXPECT_EQ(level(pgbackrest_line("ASSERT: [025]: assertion failed")), Level::critical);
  EXPECT_EQ(level(pgbackrest_line("P00   INFO: restore command begin 2.45: --stanza=db")), Level::info);
  EXPECT_EQ(level(pgbackrest_line("P01 DETAIL: restore file /pgdata/base/1/1249 (440KB, 12.34%)")),
            Level::debug);
  EXPECT_EQ(level(pgbackrest_line("P00  DEBUG:     command/restore/restore::restoreFile: (...)")),
            Level::debug);
  EXPECT_EQ(level(pgbackrest_line("P00  TRACE:         common/io::ioRead")), Level::trace);
  // No level of its own: the spec's log_level.
  EXPECT_EQ(level(pgbackrest_line("stanza: db")), std::nullopt);
  EXPECT_EQ(level(pgbackrest_line("ERRORS happen")), std::nullopt);
  EXPECT_EQ(level(pgbackrest_line("Pxx  ERROR: not a process")), std::nullopt);
  EXPECT_EQ(level(pgbackrest_line("")), std::nullopt);
}

TEST(ChildLines, PgBackRestIndentedLinesContinueTheMessage) {
  EXPECT_TRUE(pgbackrest_line("            HINT: is archive_command configured correctly?").continues);
  EXPECT_TRUE(pgbackrest_line("       HINT: is the same version of pgBackRest installed?").continues);
  EXPECT_TRUE(pgbackrest_line("\tat a tab").continues);
}

TEST(ChildLines, PostgresSeverities) {
  EXPECT_EQ(
      level(postgres_line("[123] FATAL:  recovery ended before configured recovery target was reached")),
      Level::err);
  EXPECT_EQ(level(postgres_line("[123] ERROR:  relation \"t\" does not exist")), Level::err);
  EXPECT_EQ(level(postgres_line("[123] PANIC:  could not locate a valid checkpoint record")),
            Level::critical);
  EXPECT_EQ(level(postgres_line("[123] WARNING:  page 12 of relation base/5/16384 is uninitialized")),
            Level::warn);
  EXPECT_EQ(level(postgres_line("[123] LOG:  redo starts at 0/2000028")), Level::info);
  EXPECT_EQ(level(postgres_line("[123] DEBUG2:  checkpointer updated shared memory")), Level::debug);
  EXPECT_EQ(level(postgres_line("2024-11-04 09:40:00.123 UTC [77] LOG:  database system is ready")),
            Level::info);
  EXPECT_EQ(level(postgres_line("LOG:  no prefix at all")), Level::info);
  // A lower-case word or a colon in the message is not a severity.
  EXPECT_EQ(level(postgres_line("[123] LOG:  restored ERROR:  no, the LOG came first")), Level::info);
  // Lines without a severity come from what the server runs: pgBackRest's archive-get.
  EXPECT_EQ(level(postgres_line("ERROR: [042]: unable to get 000000010000000000000007")), Level::err);
  EXPECT_EQ(level(postgres_line("P00   WARN: repo1: unable to find")), Level::warn);
  EXPECT_EQ(level(postgres_line("something else")), std::nullopt);
}

TEST(ChildLines, PostgresDetailHintAndContextContinueTheMessage) {
  for (const char* line : {"[123] DETAIL:  Failed on request of size 8192.",
                           "[123] HINT:  Check free disk space.", "[123] CONTEXT:  WAL redo at 0/3000060",
                           "[123] STATEMENT:  select 1", "       HINT: archive-get's continuation"})
    EXPECT_TRUE(postgres_line(line).continues) << line;
}

TEST(ChildLines, ClientProgramsErrorWarningDetailHint) {
  EXPECT_EQ(level(client_program_line("pg_dump: error: query failed: ERROR:  permission denied for table t")),
            Level::err);
  EXPECT_EQ(level(client_program_line("pg_dump: warning: could not find where to insert IF EXISTS")),
            Level::warn);
  EXPECT_EQ(level(client_program_line("pg_restore: error: could not execute query")), Level::err);
  EXPECT_EQ(level(client_program_line("pg_dump: dumping contents of table \"public.t\"")), std::nullopt);
  EXPECT_EQ(level(client_program_line("no program name: error: here")), std::nullopt);
  EXPECT_TRUE(client_program_line("pg_dump: detail: Query was: LOCK TABLE public.t").continues);
  EXPECT_TRUE(client_program_line("pg_dump: hint: try --no-sync").continues);
}

TEST(ChildLines, ByProgramTag) {
  EXPECT_EQ(classify_child_line("pgbackrest", "P00   WARN: x").level, Level::warn);
  EXPECT_EQ(classify_child_line("postgres", "[1] FATAL:  x").level, Level::err);
  EXPECT_EQ(classify_child_line("pg_dump", "pg_dump: error: x").level, Level::err);
  EXPECT_EQ(classify_child_line("pg_restore", "pg_restore: warning: x").level, Level::warn);
  // pgBackRest's words mean nothing in pg_dump's output, and the reverse.
  EXPECT_EQ(classify_child_line("pg_dump", "ERROR: [075]: x").level, std::nullopt);
  EXPECT_EQ(classify_child_line("pgbackrest", "pg_dump: error: x").level, std::nullopt);
}

// --- the runner logs them so -------------------------------------------------------------

class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    file_ = std::tmpfile();
    dup2(fileno(file_), STDERR_FILENO);
  }
  ~StderrCapture() {
    restore();
    std::fclose(file_);
  }
  std::vector<nlohmann::json> records() {
    restore();
    std::string out;
    std::rewind(file_);
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, file_)) > 0) out.append(buffer, n);
    std::vector<nlohmann::json> records;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
    return records;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    saved_ = -1;
  }
  int saved_ = -1;
  std::FILE* file_ = nullptr;
};

class ChildRecords : public ::testing::Test {
 protected:
  void SetUp() override { log::setup(log::Format::json, spdlog::level::info); }
  void TearDown() override { log::setup(log::Format::text, spdlog::level::info); }

  // Runs `sh -c script` under `tag` and returns the records it logged.
  std::vector<nlohmann::json> run(const std::string& tag, const std::string& script) {
    StderrCapture capture;
    {
      auto runner = make_posix_process_runner();
      ProcessSpec spec;
      spec.argv = {"sh", "-c", script};
      spec.tag = tag;
      auto result = runner->run(spec, CancelToken::never());
      EXPECT_TRUE(result.ok());
    }
    return capture.records();
  }
};

TEST_F(ChildRecords, PgBackRestErrorAndItsIndentedHintAreOneErrorRecord) {
  // Separate writes, as pgBackRest writes each line of a message; WARN on stdout.
  const auto records =
      run("pgbackrest",
          "printf 'P00   WARN: option repo1-retention-full is not set\\n'; "
          "printf 'ERROR: [075]: unable to find backup set with stop time less than 2024\\n' >&2; "
          "printf '       HINT: is the target after the oldest backup?\\n' >&2; "
          "printf 'P00   INFO: restore command end: aborted with exception [075]\\n'");
  ASSERT_EQ(records.size(), 3u);
  std::map<std::string, nlohmann::json> by_level;
  for (const auto& r : records) by_level[r["log.level"]] = r;
  ASSERT_TRUE(by_level.count("error"));
  EXPECT_EQ(by_level["error"]["message"],
            "ERROR: [075]: unable to find backup set with stop time less than 2024\n"
            "       HINT: is the target after the oldest backup?");
  EXPECT_EQ(by_level["error"]["log.logger"], "pgbackrest");
  EXPECT_EQ(by_level["warn"]["message"], "P00   WARN: option repo1-retention-full is not set");
  EXPECT_EQ(by_level["info"]["message"], "P00   INFO: restore command end: aborted with exception [075]");
}

// What pgBackRest 2.45 printed on stderr for a backup of a stanza that was never created
// (exit code 55), line by line as it writes them.
TEST_F(ChildRecords, PgBackRestsOwnBackupFailureIsAWarningAndAnErrorRecord) {
  const std::vector<std::string> stderr_lines = {
      "WARN: option 'repo1-retention-full' is not set for 'repo1-retention-full-type=count', the repository "
      "may "
      "run out of space",
      "      HINT: to retain full backups indefinitely (without warning), set option 'repo1-retention-full' "
      "to the "
      "maximum.",
      "ERROR: [055]: unable to load info file '/r/backup/x/backup.info' or '/r/backup/x/backup.info.copy':",
      "       FileMissingError: unable to open missing file '/r/backup/x/backup.info' for read",
      "       FileMissingError: unable to open missing file '/r/backup/x/backup.info.copy' for read",
      "       HINT: backup.info cannot be opened and is required to perform a backup.",
      "       HINT: has a stanza-create been performed?"};
  std::string script =
      "printf '2026-12-01 00:07:32.319 P00   INFO: backup command begin 2.45: --stanza=x\\n'; ";
  for (const auto& line : stderr_lines) script += "printf '%s\\n' \"" + line + "\" >&2; ";
  script +=
      "printf '2026-12-01 00:07:32.319 P00   INFO: backup command end: aborted with exception [055]\\n'";
  const auto records = run("pgbackrest", script);
  std::vector<nlohmann::json> problems;
  for (const auto& r : records)
    if (r["log.level"] != "info") problems.push_back(r);
  ASSERT_EQ(records.size(), 4u);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0]["log.level"], "warn");
  EXPECT_EQ(problems[0]["message"], stderr_lines[0] + "\n" + stderr_lines[1]);
  EXPECT_EQ(problems[1]["log.level"], "error");
  std::string error = stderr_lines[2];
  for (std::size_t i = 3; i < stderr_lines.size(); ++i) error += "\n" + stderr_lines[i];
  EXPECT_EQ(problems[1]["message"], error);
}

TEST_F(ChildRecords, PostgresAndPgDumpLinesKeepTheirLevels) {
  const auto server = run("postgres",
                          "printf '[12] LOG:  redo starts at 0/2000028\\n"
                          "[12] FATAL:  recovery ended before configured recovery target was reached\\n"
                          "[12] WARNING:  page is uninitialized\\n[12] HINT:  look at it\\n' >&2");
  ASSERT_EQ(server.size(), 3u);
  EXPECT_EQ(server[0]["log.level"], "info");
  EXPECT_EQ(server[1]["log.level"], "error");
  EXPECT_EQ(server[2]["log.level"], "warn");
  EXPECT_EQ(server[2]["message"], "[12] WARNING:  page is uninitialized\n[12] HINT:  look at it");

  const auto dump = run("pg_dump",
                        "printf 'pg_dump: warning: something odd\\npg_dump: error: query failed\\n"
                        "pg_dump: detail: Query was: LOCK TABLE t\\n' >&2");
  ASSERT_EQ(dump.size(), 2u);
  EXPECT_EQ(dump[0]["log.level"], "warn");
  EXPECT_EQ(dump[1]["log.level"], "error");
  EXPECT_EQ(dump[1]["message"], "pg_dump: error: query failed\npg_dump: detail: Query was: LOCK TABLE t");
}

TEST_F(ChildRecords, ChildLinesCarryTheJobAndStepOfTheThreadThatStartedIt) {
  log::ScopedJob job("dump", "3");
  log::ScopedStep step("restore");
  const auto records = run("pgbackrest", "echo 'P00   INFO: restore command begin'");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["job.type"], "dump");
  EXPECT_EQ(records[0]["job.id"], "3");
  EXPECT_EQ(records[0]["job.step"], "restore");
}

TEST_F(ChildRecords, BytesThatAreNotUtf8StillMakeValidJson) {
  const auto records = run("pg_dump", "printf 'pg_dump: error: bad \\377\\376 bytes \\033[31m\\n' >&2");
  ASSERT_EQ(records.size(), 1u);  // records() parsed it
  EXPECT_EQ(records[0]["log.level"], "error");
  EXPECT_EQ(records[0]["message"], "pg_dump: error: bad \xef\xbf\xbd\xef\xbf\xbd bytes \x1b[31m");
}

}  // namespace
}  // namespace agent
