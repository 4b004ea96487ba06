#include "core/spill_file.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "fakes/temp_directory.hpp"

namespace agent {
namespace {

using ::testing::HasSubstr;
using testing::TempDirectory;

std::string drained(SpillFile& file, std::size_t piece, std::size_t* pieces = nullptr) {
  std::string out;
  auto status = file.drain(
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

TEST(SpillFile, GivesBackWhatWasAppendedInOrderInPiecesAndEmptiesForReuse) {
  TempDirectory dir("spill-file-test");
  SpillFile file(dir.path);
  ASSERT_TRUE(file.append("first,", 6).ok());
  ASSERT_TRUE(file.append("second,third", 12).ok());
  EXPECT_EQ(file.size(), 18u);
  std::size_t pieces = 0;
  EXPECT_EQ(drained(file, 5, &pieces), "first,second,third");
  EXPECT_EQ(pieces, 4u);
  EXPECT_EQ(file.size(), 0u);
  ASSERT_TRUE(file.append("again", 5).ok());
  EXPECT_EQ(drained(file, 64), "again");
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

TEST(SpillFile, NothingAppendedCreatesNothingAndDrainsNothing) {
  SpillFile file("/nonexistent/directory");
  EXPECT_EQ(drained(file, 8), "");
}

TEST(SpillFile, AMissingDirectoryIsAClearError) {
  SpillFile file("/nonexistent/directory");
  auto status = file.append("rows", 4);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::environment);
  EXPECT_THAT(status.error().message,
              HasSubstr("cannot create a file for rows set aside in /nonexistent/directory: No such file"));
}

TEST(SpillFile, AFailingReaderStopsTheDrain) {
  TempDirectory dir("spill-file-test");
  SpillFile file(dir.path);
  ASSERT_TRUE(file.append("0123456789", 10).ok());
  int calls = 0;
  auto status = file.drain(
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
