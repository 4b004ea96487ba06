#include "pgbackrest/config_files.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fakes/temp_directory.hpp"

namespace agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

void write_file(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

TEST(PgBackRestConfigArgs, NothingConfiguredLeavesTheDiscoveryToPgBackRest) {
  EXPECT_THAT(pgbackrest_config_args({}), IsEmpty());
}

TEST(PgBackRestConfigArgs, AConfigFileKeepsTheIncludeDirectoryThatExists) {
  testing::TempDirectory etc("pgbr-etc");
  const PgBackRestConfigLocation location{"", "/cfg/pgbackrest.conf", ""};
  // No conf.d: passing it would make pgBackRest fail ("unable to list file info for missing path").
  EXPECT_THAT(pgbackrest_config_args(location, etc.path), ElementsAre("--config=/cfg/pgbackrest.conf"));
  std::filesystem::create_directory(etc.path + "/conf.d");
  EXPECT_THAT(pgbackrest_config_args(location, etc.path),
              ElementsAre("--config=/cfg/pgbackrest.conf", "--config-include-path=" + etc.path + "/conf.d"));
}

TEST(PgBackRestConfigArgs, ConfiguredOptionsArePassedAsTheyAre) {
  EXPECT_THAT(pgbackrest_config_args({"/pod/etc/pgbackrest", "", ""}),
              ElementsAre("--config-path=/pod/etc/pgbackrest"));
  // --config-path already keeps its conf.d with --config.
  EXPECT_THAT(pgbackrest_config_args({"/p", "/p/x.conf", ""}),
              ElementsAre("--config-path=/p", "--config=/p/x.conf"));
  EXPECT_THAT(pgbackrest_config_args({"", "/c.conf", "/inc"}),
              ElementsAre("--config=/c.conf", "--config-include-path=/inc"));
}

TEST(PgBackRestConfigFiles, PgosLayoutIsTheIncludeDirectoryAlone) {
  testing::TempDirectory root("pgbr-pgo");
  write_file(root.path + "/conf.d/pgbackrest_instance.conf", "[global]\n");
  write_file(root.path + "/conf.d/another.conf", "[global]\n");
  write_file(root.path + "/conf.d/notes.txt", "not read");
  std::filesystem::create_directories(root.path + "/conf.d/dir.conf");
  std::filesystem::create_directories(root.path + "/conf.d/~postgres-operator");
  const auto found = find_pgbackrest_config_files({root.path, "", ""});
  EXPECT_THAT(found.problems, IsEmpty());
  EXPECT_EQ(found.main_file, root.path + "/pgbackrest.conf");
  EXPECT_EQ(found.include_dir, root.path + "/conf.d");
  EXPECT_THAT(found.files, ElementsAre(root.path + "/conf.d/another.conf",
                                       root.path + "/conf.d/pgbackrest_instance.conf"));
}

TEST(PgBackRestConfigFiles, ANamedFileOrDirectoryThatDoesNotExistIsAProblem) {
  testing::TempDirectory root("pgbr-missing");
  auto found = find_pgbackrest_config_files({"", root.path + "/nope.conf", ""});
  ASSERT_EQ(found.problems.size(), 1u);
  EXPECT_THAT(found.problems[0], HasSubstr(root.path + "/nope.conf"));
  EXPECT_THAT(found.problems[0], HasSubstr("pgbackrest.config"));
  write_file(root.path + "/main.conf", "[global]\n");
  found = find_pgbackrest_config_files({"", root.path + "/main.conf", root.path + "/inc"});
  ASSERT_EQ(found.problems.size(), 1u);
  EXPECT_THAT(found.problems[0], HasSubstr("pgbackrest.config_include_path"));
  EXPECT_THAT(found.files, ElementsAre(root.path + "/main.conf"));
  // Under pgBackRest's own discovery a missing file is no problem: it runs on its defaults.
  EXPECT_THAT(find_pgbackrest_config_files({root.path + "/empty", "", ""}).problems, IsEmpty());
}

TEST(PgBackRestSettings, SectionsMergeInPgBackRestsOrder) {
  const std::string ini =
      "[db:backup]\n"
      "repo1-retention-full = 4\n"
      "[global]\n"
      "# a comment = no\n"
      "repo1-host = repo-host\n"
      "repo1-retention-full = 1\n"
      "process-max = 2\n"
      "[global:backup]\n"
      "process-max = 3\n"
      "[other]\n"
      "repo2-host = elsewhere\n"
      "[db]\n"
      "pg1-path = /pgdata/pg15\n"
      "repo1-retention-full = 2\n";
  const auto backup = merge_pgbackrest_settings(ini, "db", "backup");
  EXPECT_EQ(backup.at("repo1-retention-full"), "4");
  EXPECT_EQ(backup.at("process-max"), "3");
  EXPECT_EQ(backup.at("pg1-path"), "/pgdata/pg15");
  EXPECT_FALSE(backup.contains("repo2-host"));
  const auto restore = merge_pgbackrest_settings(ini, "db", "restore");
  EXPECT_EQ(restore.at("repo1-retention-full"), "2");
  EXPECT_EQ(restore.at("process-max"), "2");
}

TEST(PgBackRestSettings, RemoteRepositoriesAreThoseWithAHost) {
  const auto settings = merge_pgbackrest_settings(
      "[global]\nrepo2-host=b\nrepo1-path=/repo\nrepo10-host=c\nrepo3-host=\n"
      "repo1-host-type=tls\n",
      "db", "backup");
  EXPECT_THAT(remote_repositories(settings), ElementsAre(2, 10));
}

TEST(PgBackRestSettings, FilesAreReadInOrderAndAnUnreadableOneIsAnError) {
  testing::TempDirectory root("pgbr-read");
  write_file(root.path + "/a.conf", "[global]\nrepo1-host = first\n");
  write_file(root.path + "/b.conf", "[db]\nrepo1-host = second\n");
  auto settings = read_pgbackrest_settings({root.path + "/a.conf", root.path + "/b.conf"}, "db", "backup");
  ASSERT_TRUE(settings);
  EXPECT_EQ(settings->at("repo1-host"), "second");
  auto missing = read_pgbackrest_settings({root.path + "/gone.conf"}, "db", "backup");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("gone.conf"));
}

}  // namespace
}  // namespace agent
