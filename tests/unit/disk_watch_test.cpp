#include "pipelines/disk_watch.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <map>

namespace agent {
namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

std::vector<WatchedFilesystem> live_volume() {
  return {{7, "/pgdata", "the scratch directory, and the live data directory /pgdata/pg15", 100 * kMiB}};
}

TEST(DiskWatch, ReservesAreCheckedPerFilesystem) {
  std::map<std::string, std::uint64_t> free_space = {{"/pgdata", 100 * kMiB}, {"/pgwal", 5 * kMiB}};
  const FreeSpaceProbe probe = [&](const std::string& path) -> std::optional<std::uint64_t> {
    const auto it = free_space.find(path);
    if (it == free_space.end()) return std::nullopt;
    return it->second;
  };
  auto filesystems = live_volume();
  EXPECT_FALSE(check_reserves(filesystems, probe));  // exactly the reserve is enough
  filesystems.push_back({9, "/unreadable", "the dump", 1});
  EXPECT_FALSE(check_reserves(filesystems, probe));  // skipped, read again next round
  free_space["/pgdata"] = 100 * kMiB - 1;
  const auto trip = check_reserves(filesystems, probe);
  ASSERT_TRUE(trip);
  EXPECT_EQ(trip->filesystem.device, 7u);
  EXPECT_EQ(trip->free_bytes, 100 * kMiB - 1);
  EXPECT_EQ(trip->error.kind, ErrorKind::environment);
  EXPECT_NE(trip->error.message.find("free space on /pgdata (the scratch directory, and the live data "
                                     "directory /pgdata/pg15) fell to 100.0 MiB, below the 100.0 MiB kept "
                                     "free for the live cluster"),
            std::string::npos)
      << trip->error.message;
  EXPECT_NE(trip->error.hint.find("volume of its own"), std::string::npos);
  EXPECT_NE(trip->error.hint.find("disk.reserve_percent"), std::string::npos);
}

TEST(DiskWatch, StatvfsReadsARealFilesystem) {
  EXPECT_TRUE(statvfs_free_bytes("/"));
  EXPECT_FALSE(statvfs_free_bytes("/no/such/path/at/all"));
}

TEST(DiskWatch, CancelsTheJobWhenFreeSpaceFallsBelowTheReserve) {
  CancelToken outer;
  std::atomic<std::uint64_t> free_bytes{200 * kMiB};
  std::atomic<int> probes{0};
  DiskWatch watch(outer, std::chrono::milliseconds(5),
                  [&](const std::string&) -> std::optional<std::uint64_t> {
                    ++probes;
                    return free_bytes.load();
                  });
  // Nothing watched yet: nothing read.
  EXPECT_FALSE(watch.token().wait_for(std::chrono::milliseconds(30)));
  EXPECT_EQ(probes.load(), 0);
  watch.watch(live_volume());
  EXPECT_FALSE(watch.token().wait_for(std::chrono::milliseconds(30)));
  EXPECT_GT(probes.load(), 0);
  EXPECT_FALSE(watch.tripped());
  free_bytes = 50 * kMiB;
  ASSERT_TRUE(watch.token().wait_for(std::chrono::seconds(10)));
  const auto trip = watch.tripped();
  ASSERT_TRUE(trip);
  EXPECT_EQ(trip->free_bytes, 50 * kMiB);
  EXPECT_EQ(watch.token().signal_number(), 0);
  EXPECT_FALSE(outer.cancelled());  // the caller's token is not the job's
}

TEST(DiskWatch, ForwardsTheCallersCancellation) {
  CancelToken outer;
  DiskWatch watch(outer, std::chrono::seconds(10),
                  [](const std::string&) { return std::optional<std::uint64_t>{}; });
  outer.cancel(SIGTERM);
  ASSERT_TRUE(watch.token().wait_for(std::chrono::seconds(5)));  // at once, not after the interval
  EXPECT_EQ(watch.token().signal_number(), SIGTERM);
  EXPECT_FALSE(watch.tripped());
}

TEST(DiskWatch, StopsPromptlyWhenDestroyed) {
  const auto begin = std::chrono::steady_clock::now();
  {
    DiskWatch watch(CancelToken::never(), std::chrono::seconds(30));
    watch.watch(live_volume());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(5));
}

TEST(DiskWatch, AnEmptyListStopsWatching) {
  CancelToken outer;
  std::atomic<std::uint64_t> free_bytes{0};
  DiskWatch watch(outer, std::chrono::milliseconds(5),
                  [&](const std::string&) -> std::optional<std::uint64_t> { return free_bytes.load(); });
  watch.watch({});
  EXPECT_FALSE(watch.token().wait_for(std::chrono::milliseconds(50)));
  EXPECT_FALSE(watch.tripped());
}

}  // namespace
}  // namespace agent
