// What `pgbackrest restore` says it restored, as the dump checks it.
#include "pgbackrest/restore_log.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace agent {
namespace {

TEST(RestoreLog, TheLineNamesTheRepositoryAndTheSet) {
  // pgBackRest 2.45, --log-level-console=detail.
  EXPECT_EQ(
      parse_restored_set("2026-11-30 23:22:12.752 P00   INFO: repo2: restore backup set 20261130-232152F, "
                         "recovery will start at 2026-11-30 23:21:52"),
      (RestoredSet{2, "20261130-232152F"}));
  EXPECT_EQ(parse_restored_set("P00   INFO: repo1: restore backup set 20261130-232147F_20261130-232157I, "
                               "recovery will start at 2026-11-30 23:21:57"),
            (RestoredSet{1, "20261130-232147F_20261130-232157I"}));
  // An offline backup has no "recovery will start"; a pgBackRest before 2.33 names no repository.
  EXPECT_EQ(parse_restored_set("P00   INFO: repo12: restore backup set 20241104-020000F_20241104-091500D"),
            (RestoredSet{12, "20241104-020000F_20241104-091500D"}));
  EXPECT_EQ(parse_restored_set("P00   INFO: restore backup set 20241104-020000F"),
            (RestoredSet{1, "20241104-020000F"}));
}

TEST(RestoreLog, OtherLinesNameNothing) {
  EXPECT_FALSE(parse_restored_set("P00   INFO: restore command begin 2.45: --repo=2 --set=20241104-020000F"));
  EXPECT_FALSE(parse_restored_set("P00 DETAIL: restore file /s/base/1/112 (8KB, 0.01%)"));
  EXPECT_FALSE(parse_restored_set("WARN: repo1: [FileOpenError] unable to load info file"));
  EXPECT_FALSE(parse_restored_set("P00   INFO: repo1: restore backup set not-a-label"));
}

TEST(RestoreLog, EveryPerFileLineGivesThePercentage) {
  // Lines of pgBackRest 2.45 and 2.56 (restore.c's restoreJobResult and its tests).
  EXPECT_EQ(parse_restore_percent("P01 DETAIL: restore file /s/data/base/1/112 (8KB, 0.01%) checksum "
                                  "4d7b2a36c5387decf799352a3751883b7ceb96aa"),
            1u);
  EXPECT_EQ(parse_restore_percent("P00 DETAIL: restore file pg_data/test (0B, 100.00%)"), 10000u);
  EXPECT_EQ(
      parse_restore_percent("2026-11-30 23:22:12.752 P02 DETAIL: restore zeroed file /s/base/16384/1259 "
                            "(1.2MB, 44.12%)"),
      4412u);
  EXPECT_EQ(parse_restore_percent("P01 DETAIL: restore file /s/PG_VERSION - exists and matches backup "
                                  "(bundle 20241104-020000F/1/128, 4B, 73.53%) checksum "
                                  "d3b57b066120b2abc25be3bac96c87cfc8d82a6c"),
            7353u);
  EXPECT_EQ(parse_restore_percent("P01 DETAIL: restore file /s/base/1/bi (bi 24KB/48KB, 9.99%) checksum ab"),
            999u);
  // Trailing carriage return or spaces are not the line's.
  EXPECT_EQ(parse_restore_percent("P01 DETAIL: restore file /s/f (8KB, 50.00%)\r"), 5000u);
  // A path that looks like the end of a line does not fool it: the line is read from its end.
  EXPECT_EQ(parse_restore_percent("P01 DETAIL: restore file /s/odd (1B, 99.99%) checksum 00 (8KB, 12.50%)"),
            1250u);
}

TEST(RestoreLog, AnyOtherLineGivesNoPercentage) {
  for (const std::string line : {
           "",
           "%)",
           "DETAIL: restore ",
           "P00   INFO: repo1: restore backup set 20241104-020000F, recovery will start at 2024-11-04",
           "P00 DETAIL: check '/s/data' exists (50.00%)",       // not a restore line
           "P01 DETAIL: restore file /s/f (8KB, 50.00%) tail",  // something after it
           "P01 DETAIL: restore file /s/f (8KB, 50.0%)",        // two decimals, always
           "P01 DETAIL: restore file /s/f (8KB, .50%)",
           "P01 DETAIL: restore file /s/f (8KB, 5000.00%)",  // more than three digits
           "P01 DETAIL: restore file /s/f (8KB, 100.01%)",   // more than everything
           "P01 DETAIL: restore file /s/f (8KB, 999.99%)",
           "P01 DETAIL: restore file /s/f (8KB,50.00%)",  // no separator
           "P01 DETAIL: restore file /s/f (8KB, -1.00%)",
           "P01 DETAIL: restore file /s/f (8KB, 1e3.00%)",
           "P01 DETAIL: restore file /s/f (8KB, 50.00%",  // cut off
           "P01 DETAIL: restore file /s/f (8KB, 50.",
           "P01 DETAIL: restore file /s/f (8KB, 50.00%) checksum XYZ",  // not hex
           "P01 DETAIL: restore file /s/f (8KB, 50.00%) checksum",
           "P01 DETAIL: restore file /s/f (8KB, 12.34%)%)",  // doubled
           "P01 DETAIL: restore file /s/f (8KB, 12.34%))",
           "12.34%) (8KB, 12.34%)",  // not a restore line
       })
    EXPECT_FALSE(parse_restore_percent(line)) << line;
  // Binary garbage and a huge line: nothing, and no crash.
  std::string garbage = "DETAIL: restore ";
  for (int i = 0; i < 4096; ++i) garbage.push_back(static_cast<char>(i * 37 % 256));
  EXPECT_FALSE(parse_restore_percent(garbage));
  EXPECT_FALSE(parse_restore_percent("P01 DETAIL: restore file " + std::string(1 << 20, '9') + "%)"));
  EXPECT_EQ(parse_restore_percent("P01 DETAIL: restore file (" + std::string(1 << 20, ' ') + "0.00%)"), 0u);
  const char with_nul[] = "P01 DETAIL: restore file /s/f (8KB, 5\0.00%)";
  EXPECT_FALSE(parse_restore_percent(std::string(with_nul, sizeof with_nul - 1)));
}

TEST(RestoreLog, BytesDoneAreThePercentageOfTheSetsSize) {
  EXPECT_EQ(restored_bytes_at(0, 3'159'000), 0u);
  EXPECT_EQ(restored_bytes_at(4540, 3'159'000), 1'434'186u);  // 45.40%
  EXPECT_EQ(restored_bytes_at(10000, 3'159'001), 3'159'001u);
  EXPECT_EQ(restored_bytes_at(1, 0), 0u);
  // Huge sizes do not overflow: exact at the end, within a hundredth of a percent before it.
  constexpr auto huge = std::numeric_limits<std::uint64_t>::max();
  EXPECT_EQ(restored_bytes_at(10000, huge), huge);
  EXPECT_EQ(restored_bytes_at(20000, huge), huge);
  EXPECT_LE(restored_bytes_at(9999, huge), huge);
  EXPECT_GE(restored_bytes_at(9999, huge), huge / 10000 * 9999);
  EXPECT_EQ(restored_bytes_at(5000, 10), 5u);
}

}  // namespace
}  // namespace agent
