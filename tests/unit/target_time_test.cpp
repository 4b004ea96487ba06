#include "time/target_time.hpp"
#include "pipelines/recovery_target.hpp"

#include <gtest/gtest.h>

namespace agent {
namespace {

std::string pgbackrest_form(const std::string& text) {
  auto parsed = parse_target_time(text);
  EXPECT_TRUE(parsed.ok()) << text << ": " << (parsed.ok() ? "" : parsed.error().describe());
  return parsed.ok() ? format_for_pgbackrest(parsed->instant) : "";
}

TEST(TargetTime, RunbookNumericOffset) {
  EXPECT_EQ(pgbackrest_form("2024-11-04 09:40:00-08:00"), "2024-11-04 17:40:00+00");
  EXPECT_EQ(pgbackrest_form("2024-11-04 09:40:00-08"), "2024-11-04 17:40:00+00");
  EXPECT_EQ(pgbackrest_form("2024-11-04 09:40:00-0800"), "2024-11-04 17:40:00+00");
  EXPECT_EQ(pgbackrest_form("2024-11-04 23:10:00+0530"), "2024-11-04 17:40:00+00");
  EXPECT_EQ(pgbackrest_form("2024-11-04 17:40:00+00"), "2024-11-04 17:40:00+00");
}

TEST(TargetTime, RunbookAbbreviation) {
  EXPECT_EQ(pgbackrest_form("2024-02-06 19:50:11 PST"), "2024-02-07 03:50:11+00");
  EXPECT_EQ(pgbackrest_form("2024-07-06 19:50:11 PDT"), "2024-07-07 02:50:11+00");
  EXPECT_EQ(pgbackrest_form("2024-02-06 19:50:11 utc"), "2024-02-06 19:50:11+00");
}

TEST(TargetTime, Iso8601) {
  EXPECT_EQ(pgbackrest_form("2024-11-04T17:40:00Z"), "2024-11-04 17:40:00+00");
  EXPECT_EQ(pgbackrest_form("2024-11-04T09:40:00-08:00"), "2024-11-04 17:40:00+00");
  EXPECT_EQ(pgbackrest_form("2024-11-04T17:40:00.25Z"), "2024-11-04 17:40:00.250000+00");
  EXPECT_EQ(pgbackrest_form("2024-11-04 17:40:00.123456789+00"), "2024-11-04 17:40:00.123456+00");
}

TEST(TargetTime, IanaZoneFollowsDaylightSaving) {
  EXPECT_EQ(pgbackrest_form("2024-11-04 09:40:00 America/Vancouver"), "2024-11-04 17:40:00+00");
  EXPECT_EQ(pgbackrest_form("2024-07-04 09:40:00 America/Vancouver"), "2024-07-04 16:40:00+00");
}

TEST(TargetTime, IsoFormForLogs) {
  auto parsed = parse_target_time("2024-11-04 09:40:00-08:00");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(format_iso_utc(parsed->instant), "2024-11-04T17:40:00Z");
  EXPECT_EQ(parsed->as_typed, "2024-11-04 09:40:00-08:00");
}

void expect_refused(const std::string& text, const std::string& reason) {
  auto parsed = parse_target_time(text);
  ASSERT_FALSE(parsed.ok()) << text;
  EXPECT_EQ(parsed.error().kind, ErrorKind::usage);
  EXPECT_NE(parsed.error().message.find(reason), std::string::npos) << parsed.error().message;
  // Every refusal names the accepted forms.
  EXPECT_NE(parsed.error().hint.find("2024-11-04 09:40:00-08:00"), std::string::npos);
}

TEST(TargetTime, RefusesTimeWithoutZone) {
  expect_refused("2024-11-04 09:40:00", "no time zone or offset");
  expect_refused("2024-11-04T09:40:00", "no time zone or offset");
}

TEST(TargetTime, RefusesMalformedInput) {
  expect_refused("2024-11-04", "a date alone");
  expect_refused("yesterday", "expected a date");
  expect_refused("2024-02-30 10:00:00Z", "no such calendar date");
  expect_refused("2024-11-04 25:00:00Z", "out of range");
  expect_refused("2024-11-04 09:40:00 IST", "unknown or ambiguous");
  expect_refused("2024-11-04 09:40:00 Mars/Olympus", "unknown time zone");
  expect_refused("2024-11-04 09:40:00-08:00 extra", "unexpected text");
}

TEST(TargetTime, RefusesLocalTimesThatDaylightSavingMakesUnclear) {
  expect_refused("2026-03-08 02:30:00 America/Vancouver", "does not exist");
  expect_refused("2026-11-01 01:30:00 America/Vancouver", "happens twice");
}

}  // namespace
}  // namespace agent

// --target's other forms: each checked strictly, so that nothing becomes an option of pgBackRest
// or a setting of the copy.
namespace agent {
namespace {

TEST(RecoveryTarget, ReadsLatestLsnXidAndRestorePointNames) {
  auto latest = parse_recovery_target("latest");
  ASSERT_TRUE(latest && *latest);
  EXPECT_EQ((*latest)->kind, TargetKind::latest);
  EXPECT_EQ(pgbackrest_target_type(TargetKind::latest), "time");
  auto lsn = parse_recovery_target("lsn:0/3000028");
  ASSERT_TRUE(lsn && *lsn);
  EXPECT_EQ((*lsn)->kind, TargetKind::lsn);
  EXPECT_EQ((*lsn)->value, "0/3000028");
  EXPECT_EQ(lsn_position("0/3000028"), 0x3000028u);
  EXPECT_EQ(lsn_position("1/0"), 1ull << 32);
  EXPECT_EQ(lsn_position("FFFFFFFF/FFFFFFFF"), ~0ull);
  // Not an LSN (pgBackRest's info could hold anything): 0, never an exception.
  for (const char* bad : {"", "/", "x/1", "1/", "/1", "100000000/0", "1/-1", "1/ 2", "1/2/3"})
    EXPECT_EQ(lsn_position(bad), 0u) << bad;
  auto xid = parse_recovery_target("xid:1234");
  ASSERT_TRUE(xid && *xid);
  EXPECT_EQ((*xid)->kind, TargetKind::xid);
  EXPECT_EQ(pgbackrest_target_type(TargetKind::xid), "xid");
  auto name = parse_recovery_target("name:before-migration_2024.1");
  ASSERT_TRUE(name && *name);
  EXPECT_EQ((*name)->kind, TargetKind::name);
  EXPECT_EQ((*name)->value, "before-migration_2024.1");
  auto time = parse_recovery_target("2024-11-04 09:40:00-08:00");
  ASSERT_TRUE(time);
  EXPECT_FALSE(time->has_value()) << "a time is read by parse_target_time";
}

TEST(RecoveryTarget, RefusesValuesThatCouldBecomeOptionsOrSettings) {
  for (const char* bad : {"lsn:",
                          "lsn:0/0",
                          "lsn:0/3000028 --delta",
                          "lsn:--type=immediate",
                          "lsn:123456789/0",
                          "lsn:0x1/2",
                          "xid:",
                          "xid:0",
                          "xid:2",
                          "xid:-5",
                          "xid:4294967296",
                          "xid:12a",
                          "xid:012",
                          "name:",
                          "name:--set=x",
                          "name:-x",
                          "name:a b",
                          "name:a'b",
                          "name:a\nb",
                          "name:a\"b",
                          "name:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    auto parsed = parse_recovery_target(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().kind, ErrorKind::usage) << bad;
  }
  EXPECT_TRUE(parse_recovery_target("xid:4294967295"));
  EXPECT_TRUE(
      parse_recovery_target("name:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));  // 63
  EXPECT_TRUE(parse_recovery_target("lsn:FFFFFFFF/ffffffff"));
}

}  // namespace
}  // namespace agent
