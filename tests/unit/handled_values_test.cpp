#include "jobs/handled_values.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>

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

// --- open(): degrade, don't stop ---------------------------------------------------------------

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

const auto kNow =
    std::chrono::system_clock::time_point(std::chrono::seconds(1795428000));  // 2026-11-23 10:00 UTC

TEST_F(HandledValuesTest, OpenOfAMissingFileIsAFirstStart) {
  const auto values = HandledValues::open(path_, kNow);
  EXPECT_TRUE(values.usable());
  EXPECT_FALSE(values.persisted());
  EXPECT_FALSE(values.recovery().has_value());
  EXPECT_FALSE(values.problem().has_value());
}

TEST_F(HandledValuesTest, OpenOfAGoodFileReadsIt) {
  {
    auto values = HandledValues::open(path_, kNow);
    ASSERT_TRUE(values.remember("v1").ok());
  }
  const auto values = HandledValues::open(path_, kNow);
  EXPECT_TRUE(values.usable());
  EXPECT_TRUE(values.persisted());
  EXPECT_TRUE(values.contains("v1"));
  EXPECT_FALSE(values.recovery().has_value());
}

TEST_F(HandledValuesTest, CorruptOrEmptyFileIsKeptAsideAndTheStateStartsAfresh) {
  const std::string kept = path_ + ".corrupt-20261123T100000Z";
  for (const std::string& content :
       {std::string("{not json"), std::string(""), std::string("[]"),
        std::string("{\"version\": 2, \"values\": []}"), std::string("{\"version\": 1, \"values\": [1]}"),
        std::string("\0\xff\xfe garbage", 11)}) {
    std::ofstream(path_, std::ios::binary) << content;
    auto values = HandledValues::open(path_, kNow);
    EXPECT_TRUE(values.usable()) << content;
    // Unpersisted, like a first start: the trigger's next read only records the current value.
    EXPECT_FALSE(values.persisted()) << content;
    EXPECT_TRUE(values.values().empty());
    ASSERT_TRUE(values.recovery().has_value()) << content;
    EXPECT_EQ(values.recovery()->kept_as, kept);
    EXPECT_EQ(values.recovery()->at, kNow);
    EXPECT_FALSE(values.recovery()->reason.empty());
    EXPECT_FALSE(fs::exists(path_)) << content;
    EXPECT_EQ(read_all(kept), content) << "the corrupt file is kept as it was";
    const std::string said = values.recovery()->describe(path_);
    EXPECT_NE(said.find(path_ + " was corrupt"), std::string::npos) << said;
    EXPECT_NE(said.find("kept it as " + kept), std::string::npos) << said;
    EXPECT_NE(said.find("set the annotation to a new value"), std::string::npos) << said;
    // Saving works again, and the next start reads the new file normally.
    ASSERT_TRUE(values.remember("after").ok());
    EXPECT_TRUE(HandledValues::open(path_, kNow).contains("after"));
    fs::remove(path_);
    fs::remove(kept);
  }
}

TEST_F(HandledValuesTest, EmptyFileReasonSaysEmpty) {
  std::ofstream(path_) << "";
  const auto values = HandledValues::open(path_, kNow);
  ASSERT_TRUE(values.recovery().has_value());
  EXPECT_EQ(values.recovery()->reason, "it is empty");
}

TEST_F(HandledValuesTest, ASecondCorruptFileInTheSameSecondDoesNotReplaceTheFirst) {
  std::ofstream(path_) << "first";
  ASSERT_TRUE(HandledValues::open(path_, kNow).recovery().has_value());
  std::ofstream(path_) << "second";
  const auto values = HandledValues::open(path_, kNow);
  ASSERT_TRUE(values.recovery().has_value());
  EXPECT_EQ(values.recovery()->kept_as, path_ + ".corrupt-20261123T100000Z-2");
  EXPECT_EQ(read_all(path_ + ".corrupt-20261123T100000Z"), "first");
  EXPECT_EQ(read_all(path_ + ".corrupt-20261123T100000Z-2"), "second");
}

TEST_F(HandledValuesTest, UnreadableStateIsUnusableAndRefusesToRecord) {
  fs::create_directory(path_);  // a directory where the file should be
  auto values = HandledValues::open(path_, kNow);
  EXPECT_FALSE(values.usable());
  ASSERT_TRUE(values.problem().has_value());
  EXPECT_EQ(values.problem()->kind, ErrorKind::environment);
  EXPECT_NE(values.problem()->message.find(path_ + " is a directory"), std::string::npos)
      << values.problem()->message;
  EXPECT_NE(values.problem()->hint.find("requests no backup"), std::string::npos);
  EXPECT_FALSE(values.remember("v1").ok());
  EXPECT_FALSE(values.save().ok());
  EXPECT_TRUE(fs::is_directory(path_)) << "left alone";

  // Fixed: retry() makes it usable without a restart.
  EXPECT_FALSE(values.retry(kNow));
  fs::remove(path_);
  EXPECT_TRUE(values.retry(kNow));
  EXPECT_TRUE(values.usable());
  EXPECT_FALSE(values.persisted());
  EXPECT_TRUE(values.remember("v1").ok());
}

TEST_F(HandledValuesTest, AFifoInPlaceOfTheStateDoesNotBlock) {
  ASSERT_EQ(mkfifo(path_.c_str(), 0600), 0);
  const auto started = std::chrono::steady_clock::now();
  auto opened = std::async(std::launch::async, [&] { return HandledValues::open(path_, kNow); });
  if (opened.wait_for(std::chrono::seconds(5)) == std::future_status::timeout) {
    const int writer = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (writer >= 0) close(writer);
    ADD_FAILURE() << "opening the state blocked on a FIFO";
  }
  const auto values = opened.get();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
  EXPECT_FALSE(values.usable());
  EXPECT_NE(values.problem()->message.find("FIFO"), std::string::npos);
}

TEST_F(HandledValuesTest, MissingStateDirectoryIsUnusableUntilItExists) {
  const std::string nested = (dir_ / "state" / "handled-annotations.json").string();
  auto values = HandledValues::open(nested, kNow);
  EXPECT_FALSE(values.usable());
  EXPECT_EQ(values.problem()->message,
            "the state directory " + (dir_ / "state").string() + " does not exist");
  EXPECT_FALSE(values.save().ok());
  fs::create_directory(dir_ / "state");
  EXPECT_TRUE(values.retry(kNow));
  EXPECT_TRUE(values.save().ok());
  EXPECT_TRUE(fs::exists(nested));
}

TEST_F(HandledValuesTest, UnusableFromTheStartAsTheDaemonSaysAndRetriedLater) {
  auto values = HandledValues::unusable(
      path_, make_error(ErrorKind::environment, "cannot create /x", "check its parent"));
  EXPECT_FALSE(values.usable());
  EXPECT_EQ(values.problem()->message, "cannot create /x");
  EXPECT_FALSE(values.remember("v").ok());
  EXPECT_TRUE(values.retry(kNow));  // the directory is there now
  EXPECT_TRUE(values.usable());
}

TEST_F(HandledValuesTest, CorruptFileThatCannotBeMovedAsideIsUnusableAndLeftAlone) {
  if (geteuid() == 0) GTEST_SKIP() << "root can rename in a read-only directory";
  std::ofstream(path_) << "{not json";
  ASSERT_EQ(chmod(dir_.c_str(), 0500), 0);
  auto values = HandledValues::open(path_, kNow);
  EXPECT_FALSE(values.usable());
  EXPECT_NE(
      values.problem()->message.find("is corrupt (it is not a JSON object) and cannot be moved aside to " +
                                     path_ + ".corrupt-20261123T100000Z"),
      std::string::npos)
      << values.problem()->message;
  EXPECT_NE(values.problem()->hint.find("move or remove " + path_), std::string::npos);
  EXPECT_FALSE(values.remember("v").ok());
  EXPECT_EQ(read_all(path_), "{not json");
  ASSERT_EQ(chmod(dir_.c_str(), 0700), 0);
  EXPECT_TRUE(values.retry(kNow));
  ASSERT_TRUE(values.recovery().has_value());
  EXPECT_FALSE(values.persisted());
}

TEST_F(HandledValuesTest, ReadOnlyStateDirectoryIsUnusable) {
  if (geteuid() == 0) GTEST_SKIP() << "root writes into a read-only directory";
  ASSERT_EQ(chmod(dir_.c_str(), 0500), 0);
  const auto values = HandledValues::open(path_, kNow);
  ASSERT_EQ(chmod(dir_.c_str(), 0700), 0);
  EXPECT_FALSE(values.usable());
  EXPECT_NE(values.problem()->message.find("is not writable"), std::string::npos);
}

TEST_F(HandledValuesTest, AValueThatIsNotUtf8MatchesItselfAfterARestart) {
  const std::string value = "caf\xe9 \xff\xfe";  // Latin-1 and stray bytes
  {
    auto values = HandledValues::open(path_, kNow);
    ASSERT_TRUE(values.remember(value).ok());
    EXPECT_TRUE(values.contains(value));
  }
  const auto values = HandledValues::open(path_, kNow);
  EXPECT_TRUE(values.usable());
  EXPECT_FALSE(values.recovery().has_value());
  EXPECT_TRUE(values.contains(value)) << "a restart must not make an old value new again";
  EXPECT_FALSE(values.contains("caf"));
}

TEST_F(HandledValuesTest, LoadStaysStrict) {
  std::ofstream(path_) << "{not json";
  EXPECT_FALSE(HandledValues::load(path_).ok());
  EXPECT_TRUE(fs::exists(path_)) << "load() never moves a file";
}

}  // namespace
}  // namespace agent
