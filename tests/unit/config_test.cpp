#include "config/config.hpp"

#include <gtest/gtest.h>

#include <fstream>
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

}  // namespace
}  // namespace agent
