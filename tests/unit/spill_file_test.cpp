#include "core/spill_file.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "fakes/temp_directory.hpp"

namespace agent {
namespace {

using ::testing::HasSubstr;
using testing::TempDirectory;

std::string read_back(SpillFile& file, std::uint64_t offset, std::uint64_t length, std::size_t piece,
                      std::size_t* pieces = nullptr) {
  std::string out;
  auto status = file.read_back(
      offset, length,
      [&](const char* data, std::size_t size) -> Status {
        EXPECT_LE(size, piece);
        out.append(data, size);
        if (pieces) ++*pieces;
        return {};
      },
      piece);
  EXPECT_TRUE(status.ok()) << status.error().describe();
  return out;
}

TEST(SpillFile, GivesBackEachStretchWhereItWasAppendedInPieces) {
  TempDirectory dir("spill-file-test");
  SpillFile file(dir.path);
  auto first = file.append("first,", 6);
  auto second = file.append("second,third", 12);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, 0u);
  EXPECT_EQ(*second, 6u);
  std::size_t pieces = 0;
  EXPECT_EQ(read_back(file, *second, 12, 5, &pieces), "second,third");
  EXPECT_EQ(pieces, 3u);
  EXPECT_EQ(read_back(file, *first, 6, 64), "first,");
  auto third = file.append("again", 5);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*third, 18u) << "what was read back keeps its place";
  EXPECT_EQ(read_back(file, *third, 5, 64), "again");
}

// The writer reads back what the connection set aside while the connection goes on adding.
TEST(SpillFile, ReadsBackWhileAnotherThreadAppends) {
  TempDirectory dir("spill-file-test");
  SpillFile file(dir.path);
  constexpr int kPieces = 400;
  std::vector<std::uint64_t> offsets(kPieces);
  std::atomic<int> appended{0};
  std::thread appender([&] {
    for (int i = 0; i < kPieces; ++i) {
      const std::string piece(1000 + i, static_cast<char>('a' + i % 26));
      auto at = file.append(piece.data(), piece.size());
      ASSERT_TRUE(at.ok());
      offsets[static_cast<std::size_t>(i)] = *at;
      appended.store(i + 1, std::memory_order_release);
    }
  });
  for (int i = 0; i < kPieces; ++i) {
    while (appended.load(std::memory_order_acquire) <= i) std::this_thread::yield();
    const auto size = static_cast<std::size_t>(1000 + i);
    EXPECT_EQ(read_back(file, offsets[static_cast<std::size_t>(i)], size, 4096),
              std::string(size, static_cast<char>('a' + i % 26)))
        << "piece " << i;
  }
  appender.join();
}

TEST(SpillFile, WhatWasReadBackNoLongerTakesRoom) {
  TempDirectory dir("spill-file-test");
  SpillFile file(dir.path);
  const std::string rows(4 << 20, 'r');
  auto at = file.append(rows.data(), rows.size());
  ASSERT_TRUE(at.ok());
  EXPECT_GE(file.bytes_on_disk(), rows.size());
  EXPECT_EQ(read_back(file, *at, rows.size(), 1 << 20).size(), rows.size());
  EXPECT_LT(file.bytes_on_disk(), 64u << 10) << "the pages read back are still held";
}

TEST(SpillFile, LeavesNoNameInTheDirectory) {
  TempDirectory dir("spill-file-test");
  {
    SpillFile file(dir.path);
    ASSERT_TRUE(file.append("rows", 4).ok());
    EXPECT_TRUE(std::filesystem::is_empty(dir.path)) << "the file has a name while in use";
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path));
}

TEST(SpillFile, NothingAppendedCreatesNothingAndReadsNothing) {
  SpillFile file("/nonexistent/directory");
  EXPECT_EQ(read_back(file, 0, 0, 8), "");
}

TEST(SpillFile, AMissingDirectoryIsAClearError) {
  SpillFile file("/nonexistent/directory");
  auto status = file.append("rows", 4);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::environment);
  EXPECT_THAT(status.error().message,
              HasSubstr("cannot create a file for rows set aside in /nonexistent/directory: No such file"));
}

TEST(SpillFile, AFailingReaderStopsTheReadBack) {
  TempDirectory dir("spill-file-test");
  SpillFile file(dir.path);
  ASSERT_TRUE(file.append("0123456789", 10).ok());
  int calls = 0;
  auto status = file.read_back(
      0, 10,
      [&](const char*, std::size_t) -> Status {
        ++calls;
        return make_error(ErrorKind::environment, "cannot write the dump: No space left on device");
      },
      4);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message, HasSubstr("No space left"));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace agent
