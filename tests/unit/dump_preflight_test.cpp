#include "pipelines/dump_preflight.hpp"

#include <gtest/gtest.h>

namespace agent {
namespace {

DumpJob job_for(const std::string& scratch, const std::string& output) {
  DumpJob job;
  job.config.postgres.port = 5432;
  job.config.postgres.bindir = "/usr/lib/postgresql/15/bin";
  job.scratch = scratch;
  job.output = output;
  job.port = 5533;
  return job;
}

LocalFacts healthy() {
  LocalFacts facts;
  facts.live_data = "/pgdata/pg15";
  facts.tablespaces = {{"16400", "/tblspc/fast"}};
  facts.scratch = "/pgdata/restore";
  facts.output = "/pgdata/restore.sql";
  facts.free_bytes_for_scratch = 10'000'000;
  return facts;
}

std::string only_message(const std::vector<Error>& errors) {
  EXPECT_EQ(errors.size(), 1u);
  return errors.empty() ? "" : errors.front().message;
}

TEST(Preflight, HealthyFactsPass) {
  EXPECT_TRUE(check_local_facts(healthy(), job_for("/pgdata/restore", "/pgdata/restore.sql")).empty());
}

TEST(Preflight, PathWithin) {
  EXPECT_TRUE(path_within("/a/b", "/a"));
  EXPECT_TRUE(path_within("/a", "/a"));
  EXPECT_FALSE(path_within("/ab", "/a"));
  EXPECT_FALSE(path_within("/a", "/a/b"));
}

TEST(Preflight, ScratchMustNotOverlapTheLiveCluster) {
  const auto job = job_for("x", "/backups/restore.sql");
  auto facts = healthy();
  facts.output = "/backups/restore.sql";
  facts.scratch = "/pgdata/pg15";
  EXPECT_NE(only_message(check_local_facts(facts, job)).find("is or lies inside the live data directory"),
            std::string::npos);
  facts.scratch = "/pgdata/pg15/restore";
  EXPECT_NE(only_message(check_local_facts(facts, job)).find("is or lies inside the live data directory"),
            std::string::npos);
  facts.scratch = "/pgdata";
  EXPECT_NE(only_message(check_local_facts(facts, job)).find("contains the live data directory"),
            std::string::npos);
  facts.scratch = "/tblspc/fast/x";
  EXPECT_NE(only_message(check_local_facts(facts, job)).find("live tablespace"), std::string::npos);
}

TEST(Preflight, ScratchMustBeOursOrEmpty) {
  auto facts = healthy();
  facts.scratch_exists = true;
  facts.scratch_empty = false;
  const auto errors = check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql"));
  EXPECT_NE(only_message(errors).find("not empty and was not created by agent"), std::string::npos);
  facts.scratch_has_marker = true;
  EXPECT_TRUE(check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql")).empty());
}

TEST(Preflight, RunningServerInScratchIsRefused) {
  auto facts = healthy();
  facts.scratch_exists = true;
  facts.scratch_has_marker = true;
  facts.scratch_empty = false;
  facts.scratch_server_pid = 4242;
  facts.scratch_server_alive = true;
  const auto errors = check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql"));
  EXPECT_NE(only_message(errors).find("pid 4242"), std::string::npos);
  EXPECT_EQ(errors.front().kind, ErrorKind::environment);
  facts.scratch_server_alive = false;  // stale pid file: fine, prepare removes it
  EXPECT_TRUE(check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql")).empty());
}

TEST(Preflight, PortsAndOutput) {
  auto facts = healthy();
  facts.port_in_use = true;
  facts.output_dir_is_dir = false;
  const auto errors = check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql"));
  ASSERT_EQ(errors.size(), 2u);  // all problems at once
  EXPECT_NE(errors[0].message.find("port 5533 is already in use"), std::string::npos);
  EXPECT_NE(errors[1].message.find("does not exist"), std::string::npos);

  auto job = job_for("/pgdata/restore", "/pgdata/restore.sql");
  job.port = 5432;
  EXPECT_NE(only_message(check_local_facts(healthy(), job)).find("live server's port"), std::string::npos);

  facts = healthy();
  facts.output_exists = true;
  EXPECT_NE(only_message(check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql")))
                .find("already exists"),
            std::string::npos);
  facts.output = "/pgdata/restore/data/x.sql";
  facts.output_exists = false;
  EXPECT_NE(
      only_message(check_local_facts(facts, job_for("/pgdata/restore", "x"))).find("inside the scratch"),
      std::string::npos);
}

TEST(Preflight, RootIsRefused) {
  auto facts = healthy();
  facts.running_as_root = true;
  const auto errors = check_local_facts(facts, job_for("/pgdata/restore", "/pgdata/restore.sql"));
  EXPECT_NE(only_message(errors).find("root"), std::string::npos);
  EXPECT_NE(errors.front().hint.find("runuser"), std::string::npos);
}

TEST(Preflight, RestoredTablespacesMustStayInTheScratchDirectory) {
  const std::vector<TablespaceLink> live = {{"16400", "/tblspc/fast"}};
  EXPECT_TRUE(check_restored_tablespaces(live, {{"16400", "/s/tablespaces/fast"}}, "/s", "L").empty());
  auto errors = check_restored_tablespaces(live, {{"16400", "/tblspc/fast"}}, "/s", "L");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("outside the scratch directory"), std::string::npos);
  // A live tablespace the backup does not have: created after it.
  errors = check_restored_tablespaces({{"16400", "/tblspc/fast"}, {"16500", "/tblspc/new"}},
                                      {{"16400", "/s/tablespaces/fast"}}, "/s", "20241104-020000F");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(
      errors[0].message.find("live tablespace 16500 (/tblspc/new) is not in backup set 20241104-020000F"),
      std::string::npos);
}

StanzaInfo two_backups() {
  StanzaInfo stanza;
  stanza.name = "db";
  stanza.backups = {{"20241104-020000F", "full", 1000, 1100, 5'000'000, 100, false},
                    {"20241104-020000F_20241104-091500I", "incr", 2000, 2100, 6'000'000, 100, false}};
  return stanza;
}

TEST(Preflight, TargetMustBeInsideTheRecoverableWindow) {
  auto job = job_for("/pgdata/restore", "/pgdata/restore.sql");
  const auto now = std::chrono::system_clock::time_point{std::chrono::seconds{5000}};
  job.target.instant = SysMicros{std::chrono::seconds{1050}};
  auto result = check_against_repository(two_backups(), job, healthy(), now);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::target_window);
  EXPECT_NE(result.error().message.find("before the oldest backup finished"), std::string::npos);
  EXPECT_NE(result.error().hint.find("recoverable window is from 1970-01-01T00:18:21Z"), std::string::npos);

  job.target.instant = SysMicros{std::chrono::seconds{6000}};
  result = check_against_repository(two_backups(), job, healthy(), now);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("in the future"), std::string::npos);

  // Far beyond the range of system_clock's nanoseconds.
  job.target.instant = SysMicros{std::chrono::hours{24 * 365 * 1000}};
  result = check_against_repository(two_backups(), job, healthy(), now);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("in the future"), std::string::npos);

  job.target.instant = SysMicros{std::chrono::seconds{2500}};
  result = check_against_repository(two_backups(), job, healthy(), now);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->label, "20241104-020000F_20241104-091500I");
}

TEST(Preflight, NeedsDiskForTheChosenBackup) {
  auto job = job_for("/pgdata/restore", "/pgdata/restore.sql");
  job.target.instant = SysMicros{std::chrono::seconds{2500}};
  auto facts = healthy();
  facts.free_bytes_for_scratch = 1'000'000;
  auto result = check_against_repository(two_backups(), job, facts,
                                         std::chrono::system_clock::time_point{std::chrono::seconds{5000}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::environment);
  EXPECT_NE(result.error().message.find("not enough disk"), std::string::npos);
  facts.scratch_data_bytes = 5'500'000;  // a previous copy that --delta reuses counts
  EXPECT_TRUE(check_against_repository(two_backups(), job, facts,
                                       std::chrono::system_clock::time_point{std::chrono::seconds{5000}})
                  .ok());
}

TEST(Preflight, NamedSetMustExistAndEndBeforeTheTarget) {
  auto job = job_for("/pgdata/restore", "/pgdata/restore.sql");
  job.target.instant = SysMicros{std::chrono::seconds{1500}};
  job.backup_set = "20241104-020000F_20241104-091500I";
  auto result = check_against_repository(two_backups(), job, healthy(),
                                         std::chrono::system_clock::time_point{std::chrono::seconds{5000}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::target_window);
  job.backup_set = "20200101-000000F";
  result = check_against_repository(two_backups(), job, healthy(),
                                    std::chrono::system_clock::time_point{std::chrono::seconds{5000}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::usage);
}

}  // namespace
}  // namespace agent
