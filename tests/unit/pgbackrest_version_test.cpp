#include "pgbackrest/version.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace agent {
namespace {

using ::testing::HasSubstr;

PgBackRestVersion version(const char* text) {
  auto parsed = parse_pgbackrest_version(text);
  EXPECT_TRUE(parsed) << text;
  return parsed.value_or(PgBackRestVersion{});
}

BackupRecord written_by(const std::string& writer) {
  BackupRecord backup;
  backup.label = "20261130-020000F";
  backup.backrest_version = writer;
  return backup;
}

TEST(PgBackRestVersion, ParsesWhatPgBackRestPrints) {
  const auto v = parse_pgbackrest_version_output("pgBackRest 2.56.0\n");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->major, 2);
  EXPECT_EQ(v->minor, 56);
  EXPECT_EQ(v->patch, 0);
  EXPECT_EQ(v->text, "2.56.0");
  EXPECT_EQ(version("2.45").patch, 0);
  EXPECT_EQ(version("2.57.0dev").minor, 57);
  for (const char* bad : {"", "2", "two.45", "2.45.0.1", "2.45 ", "-2.45"})
    EXPECT_FALSE(parse_pgbackrest_version(bad)) << bad;
  EXPECT_FALSE(parse_pgbackrest_version_output("command not found"));
}

TEST(PgBackRestVersion, ComparesNumbersNotText) {
  EXPECT_LT(version("2.9"), version("2.45"));
  EXPECT_LT(version("2.45"), version("2.56.0"));
  EXPECT_LT(version("2.56.0"), version("2.56.1"));
  EXPECT_EQ(version("2.45"), version("2.45.0"));
}

TEST(PgBackRestVersion, AnOlderLocalBinaryIsRefusedNamingBothVersions) {
  const auto refusal = older_than_writer_refusal(version("2.45"), written_by("2.56.0"), "restore from");
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->kind, ErrorKind::environment);
  EXPECT_THAT(refusal->message, HasSubstr("written by pgBackRest 2.56.0"));
  EXPECT_THAT(refusal->message, HasSubstr("pgbackrest.bin is pgBackRest 2.45"));
  EXPECT_THAT(refusal->message, HasSubstr("restore from"));
  EXPECT_THAT(refusal->hint, HasSubstr("2.56.0"));
  // The same version, or a newer local one (pgBackRest reads what older versions wrote), is fine,
  // and so is a backup that does not say who wrote it.
  EXPECT_FALSE(older_than_writer_refusal(version("2.56.0"), written_by("2.56.0"), "restore from"));
  EXPECT_FALSE(older_than_writer_refusal(version("2.56.0"), written_by("2.45"), "restore from"));
  EXPECT_FALSE(older_than_writer_refusal(version("2.45"), written_by(""), "restore from"));
}

}  // namespace
}  // namespace agent
