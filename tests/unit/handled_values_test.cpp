#include "jobs/handled_values.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace agent {
namespace {

namespace fs = std::filesystem;

class HandledValuesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/handled-values-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = (dir_ / "handled-annotations.json").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  HandledValues load() {
    auto loaded = HandledValues::load(path_);
    EXPECT_TRUE(loaded.ok()) << loaded.error().describe();
    return std::move(*loaded);
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(HandledValuesTest, MissingFileIsEmptyAndNotPersisted) {
  auto values = load();
  EXPECT_FALSE(values.persisted());
  EXPECT_FALSE(values.contains("x"));
  EXPECT_FALSE(values.last_value().has_value());
  EXPECT_FALSE(fs::exists(path_));
}

TEST_F(HandledValuesTest, RememberPersistsAndReloads) {
  const auto at = std::chrono::system_clock::time_point(std::chrono::seconds(1795428000));
  {
    auto values = load();
    ASSERT_TRUE(values.remember("first").ok());
    ASSERT_TRUE(values.remember("with \"quotes\"\nand a newline", at).ok());
    EXPECT_TRUE(values.persisted());
    EXPECT_TRUE(values.contains("first"));
  }
  struct stat info {};
  ASSERT_EQ(stat(path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_FALSE(fs::exists(path_ + ".partial"));

  auto values = load();
  EXPECT_TRUE(values.persisted());
  EXPECT_TRUE(values.contains("first"));
  EXPECT_TRUE(values.contains("with \"quotes\"\nand a newline"));
  EXPECT_FALSE(values.contains("other"));
  EXPECT_EQ(values.last_value(), "with \"quotes\"\nand a newline");
  EXPECT_EQ(values.last_handled_at(), at);
}

TEST_F(HandledValuesTest, SaveWithoutValuesLeavesAMark) {
  {
    auto values = load();
    ASSERT_TRUE(values.save().ok());
  }
  auto values = load();
  EXPECT_TRUE(values.persisted());
  EXPECT_TRUE(values.values().empty());
}

TEST_F(HandledValuesTest, KeepsOnlyTheLastHundred) {
  {
    auto values = load();
    for (int i = 0; i < 105; ++i) ASSERT_TRUE(values.remember("v" + std::to_string(i)).ok());
    EXPECT_EQ(values.values().size(), HandledValues::kMaxValues);
  }
  auto values = load();
  EXPECT_EQ(values.values().size(), 100u);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(values.contains("v" + std::to_string(i))) << i;
  for (int i = 5; i < 105; ++i) EXPECT_TRUE(values.contains("v" + std::to_string(i))) << i;
  EXPECT_EQ(values.values().front(), "v5");
  EXPECT_EQ(values.last_value(), "v104");
}

TEST_F(HandledValuesTest, RememberingAKnownValueDoesNotDuplicateIt) {
  auto values = load();
  ASSERT_TRUE(values.remember("a").ok());
  ASSERT_TRUE(values.remember("a").ok());
  EXPECT_EQ(values.values().size(), 1u);
}

TEST_F(HandledValuesTest, CorruptFileIsAnEnvironmentError) {
  for (const std::string content : {"{not json", "[]", "{\"version\": 1}", "{\"version\": 2, \"values\": []}",
                                    "{\"version\": 1, \"values\": [1, 2]}", ""}) {
    std::ofstream(path_) << content;
    auto loaded = HandledValues::load(path_);
    ASSERT_FALSE(loaded.ok()) << content;
    EXPECT_EQ(loaded.error().kind, ErrorKind::environment) << content;
    EXPECT_NE(loaded.error().message.find(path_), std::string::npos);
    EXPECT_FALSE(loaded.error().hint.empty());
  }
}

TEST_F(HandledValuesTest, UnreadableFileIsAnEnvironmentError) {
  fs::create_directory(path_);  // a directory where the file should be; unreadable even for root
  auto loaded = HandledValues::load(path_);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.error().kind, ErrorKind::environment);
}

TEST_F(HandledValuesTest, FailedWriteLeavesMemoryUnchanged) {
  // A path whose directory does not exist: the write fails.
  auto loaded = HandledValues::load((dir_ / "missing" / "state.json").string());
  ASSERT_TRUE(loaded.ok());
  auto status = loaded->remember("a");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::environment);
  EXPECT_FALSE(loaded->contains("a"));
  EXPECT_FALSE(loaded->persisted());
}

}  // namespace
}  // namespace agent
