// What `pgbackrest restore` says it restored, as the dump checks it.
#include "pgbackrest/restore_log.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace agent
