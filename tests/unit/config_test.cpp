#include "config/config.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>
#include <sstream>

namespace agent {
namespace {

TEST(Config, DefaultsWithoutAFile) {
  const auto load = load_config_text("", "test.yaml", {});
  ASSERT_TRUE(load.issues.empty());
  EXPECT_EQ(load.config.stanza, "db");
  EXPECT_EQ(load.config.restore.port, 5533);
  EXPECT_EQ(load.config.postgres.bindir, "/usr/lib/postgresql/15/bin");
  EXPECT_EQ(load.config.pgbackrest.process_max, 2);
}

TEST(Config, ReadsNestedKeys) {
  const auto load = load_config_text(
      "stanza: main\npostgres:\n  port: 6543\n  data: /pgdata/pg15\ndump:\n  database: api\n", "test.yaml",
      {});
  ASSERT_TRUE(load.issues.empty());
  EXPECT_EQ(load.config.stanza, "main");
  EXPECT_EQ(load.config.postgres.port, 6543);
  EXPECT_EQ(load.config.dump.database, "api");
}

TEST(Config, ReportsEveryProblemWithItsLineAndAHint) {
  const auto load = load_config_text(
      "stanza: db\n"
      "postgres:\n"
      "  prot: 5432\n"     // line 3: typo
      "  port: seventy\n"  // line 4: not a number
      "restore:\n"
      "  port: 70000\n"  // line 6: out of range
      "log:\n"
      "  format: xml\n"  // line 8: not a choice
      "backups: {}\n",   // line 9: unknown section
      "bad.yaml", {});
  ASSERT_EQ(load.issues.size(), 5u);
  EXPECT_EQ(load.issues[0].line, 3);
  EXPECT_NE(load.issues[0].message.find("unknown key 'postgres.prot'"), std::string::npos);
  EXPECT_NE(load.issues[0].hint.find("did you mean 'postgres.port'"), std::string::npos);
  EXPECT_EQ(load.issues[1].line, 4);
  EXPECT_NE(load.issues[1].message.find("whole number"), std::string::npos);
  EXPECT_EQ(load.issues[2].line, 6);
  EXPECT_NE(load.issues[2].message.find("outside 1..65535"), std::string::npos);
  EXPECT_EQ(load.issues[3].line, 8);
  EXPECT_NE(load.issues[3].hint.find("text, json"), std::string::npos);
  EXPECT_EQ(load.issues[4].line, 9);
  const auto error = config_error(load.issues);
  EXPECT_EQ(error.kind, ErrorKind::usage);
  EXPECT_NE(error.message.find("bad.yaml:3:"), std::string::npos);
}

TEST(Config, RejectsBrokenYamlWithItsLine) {
  const auto load = load_config_text("stanza: db\npostgres:\n  port: [1, 2\n", "broken.yaml", {});
  ASSERT_EQ(load.issues.size(), 1u);
  EXPECT_NE(load.issues[0].message.find("not valid YAML"), std::string::npos);
  EXPECT_GT(load.issues[0].line, 0);
}

TEST(Config, RejectsAListWhereAValueBelongs) {
  const auto load = load_config_text("stanza: [a, b]\n", "list.yaml", {});
  ASSERT_EQ(load.issues.size(), 1u);
  EXPECT_NE(load.issues[0].message.find("not a list"), std::string::npos);
}

TEST(Config, CommandLineOverridesTheFile) {
  const auto load =
      load_config_text("restore:\n  port: 6000\n", "test.yaml",
                       {{"restore.port", "6001", "--port"}, {"dump.database", "api", "--database"}});
  ASSERT_TRUE(load.issues.empty());
  EXPECT_EQ(load.config.restore.port, 6001);
  EXPECT_EQ(load.config.dump.database, "api");
}

TEST(Config, BadOverrideNamesTheFlag) {
  const auto load = load_config_text("", "test.yaml", {{"log.format", "xml", "--log-format"}});
  ASSERT_EQ(load.issues.size(), 1u);
  EXPECT_EQ(load.issues[0].source, "command line --log-format");
}

TEST(Config, MissingExplicitFileIsAnIssue) {
  const auto load = load_config("/nonexistent/agent.yaml", true, {});
  ASSERT_EQ(load.issues.size(), 1u);
  EXPECT_NE(load.issues[0].message.find("cannot read"), std::string::npos);
  EXPECT_TRUE(load_config("/nonexistent/agent.yaml", false, {}).issues.empty());
}

TEST(Config, RefusesDuplicateKeysWithBothLines) {
  const auto load = load_config_text(
      "stanza: a\n"       // line 1
      "postgres:\n"       // line 2
      "  port: 5432\n"    // line 3
      "  host: /tmp\n"    // line 4
      "  port: 6543\n"    // line 5: repeated nested key
      "stanza: b\n"       // line 6: repeated top-level key
      "\"stanza\": c\n",  // line 7: the same key, quoted
      "dup.yaml", {});
  ASSERT_EQ(load.issues.size(), 3u);
  EXPECT_EQ(load.issues[0].line, 5);
  EXPECT_EQ(load.issues[0].message, "duplicate key 'postgres.port' (first at line 3)");
  EXPECT_EQ(load.issues[0].hint,
            "keep only one 'port' under 'postgres' and remove the other: the agent does not guess which one "
            "you meant");
  EXPECT_EQ(load.issues[1].line, 6);
  EXPECT_EQ(load.issues[1].message, "duplicate key 'stanza' (first at line 1)");
  EXPECT_EQ(load.issues[2].line, 7);
  EXPECT_EQ(load.issues[2].message, "duplicate key 'stanza' (first at line 1)");
  EXPECT_NE(config_error(load.issues).message.find("dup.yaml:5: duplicate key 'postgres.port'"),
            std::string::npos);
}

TEST(Config, RefusesARepeatedSectionAndReportsItInLineOrder) {
  const auto load = load_config_text(
      "schedules:\n"             // line 1
      "  full: \"0 2 * * *\"\n"  // line 2
      "log:\n"                   // line 3
      "  level: loud\n"          // line 4: not a choice
      "schedules:\n"             // line 5: the section again
      "  incr: \"0 * * * *\"\n"  // line 6
      "unknown:\n"               // line 7: not ours, still checked for repeats
      "  a: 1\n"
      "  a: 2\n",  // line 9
      "dup.yaml", {});
  ASSERT_EQ(load.issues.size(), 4u);
  EXPECT_EQ(load.issues[0].line, 4);
  EXPECT_EQ(load.issues[1].line, 5);
  EXPECT_EQ(load.issues[1].message, "duplicate key 'schedules' (first at line 1)");
  EXPECT_EQ(load.issues[2].line, 7);
  EXPECT_NE(load.issues[2].message.find("unknown section 'unknown'"), std::string::npos);
  EXPECT_EQ(load.issues[3].line, 9);
  EXPECT_EQ(load.issues[3].message, "duplicate key 'unknown.a' (first at line 8)");
}

TEST(Config, ARepeatInsideAnAliasIsReportedOnceAndAliasesCannotExplode) {
  // Ten levels of lists that each name the one before twice: 2^10 paths to the first list.
  std::string text = "l0: &l0 {a: 1, a: 2}\n";
  for (int i = 1; i <= 10; ++i)
    text += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [*l" + std::to_string(i - 1) + ", *l" +
            std::to_string(i - 1) + "]\n";
  const auto load = load_config_text(text, "alias.yaml", {});
  std::size_t repeats = 0;
  for (const auto& issue : load.issues) repeats += issue.message.find("duplicate key") != std::string::npos;
  EXPECT_EQ(repeats, 1u);
}

TEST(Config, RefusesSchedulesThatNeverFire) {
  const auto load = load_config_text(
      "schedules:\n"
      "  full: \"0 0 31 2 *\"\n"          // line 2
      "  diff: \"0 0 30 2 *\"\n"          // line 3
      "  incr: \"0 0 31 4,6,9,11 *\"\n",  // line 4
      "never.yaml", {});
  ASSERT_EQ(load.issues.size(), 3u);
  EXPECT_EQ(load.issues[0].line, 2);
  EXPECT_EQ(
      load.issues[0].message,
      "'schedules.full': cron expression '0 0 31 2 *': it never fires: FEB has no day 31; name a day that "
      "exists in that month (February has 29 days in leap years), or use the day-of-week field");
  EXPECT_EQ(load.issues[1].line, 3);
  EXPECT_NE(load.issues[1].message.find("'schedules.diff': cron expression '0 0 30 2 *': it never fires"),
            std::string::npos);
  EXPECT_EQ(load.issues[2].line, 4);
  EXPECT_NE(load.issues[2].message.find("'schedules.incr'"), std::string::npos);
  // The same from the command line, should a flag ever set a schedule.
  const auto flagged = load_config_text("", "t.yaml", {{"schedules.full", "0 0 30 2 *", "--full"}});
  ASSERT_EQ(flagged.issues.size(), 1u);
  EXPECT_NE(flagged.issues[0].message.find("never fires"), std::string::npos);
}

TEST(Config, AcceptsTheLeapDay) {
  const auto load =
      load_config_text("schedules:\n  full: \"0 0 29 2 *\"\n  incr: \"0 0 31 * *\"\n", "leap.yaml", {});
  EXPECT_TRUE(load.issues.empty()) << config_error(load.issues).message;
  EXPECT_EQ(load.config.schedules.full, "0 0 29 2 *");
}

// On another thread with a deadline: a blocking open of a FIFO would hang until a writer came.
// Then its write end is opened, which releases the reader, and the test fails instead of hanging.
ConfigLoad load_within_deadline(const std::string& path, bool must_exist) {
  auto loaded = std::async(std::launch::async, [&] { return load_config(path, must_exist, {}); });
  if (loaded.wait_for(std::chrono::seconds(5)) == std::future_status::timeout) {
    const int writer = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (writer >= 0) close(writer);
    ADD_FAILURE() << "reading a FIFO as the config blocked";
  }
  return loaded.get();
}

TEST(Config, AFifoOrADirectoryAsTheConfigIsRefusedAtOnce) {
  char pattern[] = "/tmp/config-test.XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  const std::string fifo = dir + "/agent.yaml";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const auto from_fifo = load_within_deadline(fifo, true);
  ASSERT_EQ(from_fifo.issues.size(), 1u);
  EXPECT_EQ(from_fifo.issues[0].message,
            "cannot read the config file: " + fifo + " is a FIFO (named pipe), not a regular file");
  // Not even the implicit default path passes a FIFO or a directory off as "no config".
  EXPECT_EQ(load_within_deadline(fifo, false).issues.size(), 1u);
  const auto from_directory = load_config(dir, false, {});
  ASSERT_EQ(from_directory.issues.size(), 1u);
  EXPECT_EQ(from_directory.issues[0].message,
            "cannot read the config file: " + dir + " is a directory, not a regular file");
  unlink(fifo.c_str());
  rmdir(dir.c_str());
}

TEST(Config, ExampleIsValidAndMatchesTheCheckedInFile) {
  const std::string example = example_config_yaml();
  EXPECT_TRUE(load_config_text(example, "example", {}).issues.empty());
  std::ifstream file(AGENT_SOURCE_DIR "/config/agent.example.yaml");
  ASSERT_TRUE(file) << "config/agent.example.yaml is missing";
  std::stringstream text;
  text << file.rdbuf();
  EXPECT_EQ(text.str(), example)
      << "regenerate it with: build/bin/agent config example > config/agent.example.yaml";
}

TEST(Config, SchedulesPerRepository) {
  const auto load = load_config_text(
      "schedules:\n"
      "  full: \"0 2 * * *\"\n"
      "  repo2:\n"
      "    full: \"0 3 * * 0\"\n"
      "    diff: \"0 3 * * 1-6\"\n"
      "  repo256:\n"
      "    incr: \"*/30 * * * *\"\n"
      "manual:\n"
      "  repo: 2\n",
      "repos.yaml", {});
  EXPECT_TRUE(load.issues.empty()) << config_error(load.issues).message;
  EXPECT_EQ(load.config.schedules.full, "0 2 * * *");
  ASSERT_EQ(load.config.schedules.repos.size(), 2u);
  EXPECT_EQ(load.config.schedules.repos.at(2).full, "0 3 * * 0");
  EXPECT_EQ(load.config.schedules.repos.at(2).diff, "0 3 * * 1-6");
  EXPECT_EQ(load.config.schedules.repos.at(2).incr, "");
  EXPECT_EQ(load.config.schedules.repos.at(256).incr, "*/30 * * * *");
  EXPECT_EQ(load.config.manual.repo, 2);
  EXPECT_TRUE(load_config_text("", "empty.yaml", {}).config.schedules.repos.empty());
}

TEST(Config, ARepositorySectionOutsideOneTo256OrWithABadScheduleIsRefused) {
  const auto load = load_config_text(
      "schedules:\n"
      "  repo0:\n"  // line 2
      "    full: \"0 2 * * *\"\n"
      "  repo257:\n"  // line 4
      "    full: \"0 2 * * *\"\n"
      "  repo02:\n"  // line 6
      "    full: \"0 2 * * *\"\n"
      "  repo3:\n"
      "    full: \"0 0 31 2 *\"\n"    // line 9
      "    weekly: \"0 2 * * 0\"\n",  // line 10
      "bad.yaml", {});
  ASSERT_EQ(load.issues.size(), 5u) << config_error(load.issues).message;
  EXPECT_EQ(load.issues[0].line, 2);
  EXPECT_EQ(load.issues[0].message, "unknown section 'schedules.repo0'");
  EXPECT_EQ(load.issues[1].message, "unknown section 'schedules.repo257'");
  EXPECT_EQ(load.issues[2].message, "unknown section 'schedules.repo02'");
  EXPECT_EQ(load.issues[3].line, 9);
  EXPECT_NE(
      load.issues[3].message.find("'schedules.repo3.full': cron expression '0 0 31 2 *': it never fires"),
      std::string::npos);
  EXPECT_EQ(load.issues[4].message, "unknown key 'schedules.repo3.weekly'");
}
}  // namespace
}  // namespace agent
