// Requests that must survive a restart: recorded, started, finished, and what a killed run
// leaves behind.
#include "jobs/request_journal.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fakes/temp_directory.hpp"

namespace agent {
namespace {

BackupRequest annotation(const std::string& value) {
  return BackupRequest{BackupType::full, Trigger::annotation, "annotation value '" + value + "'",
                       std::chrono::system_clock::time_point(std::chrono::seconds(1795428000))};
}

TEST(RequestJournal, AFinishedRequestIsGoneAfterARestart) {
  testing::TempDirectory dir("agent-journal");
  const std::string path = dir.path + "/requests.json";
  {
    auto journal = RequestJournal::open(path);
    ASSERT_TRUE(journal.ok());
    auto id = journal->record(annotation("a"));
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(journal->started(*id).ok());
    ASSERT_TRUE(journal->finished(*id).ok());
  }
  auto again = RequestJournal::open(path);
  ASSERT_TRUE(again.ok());
  auto leftovers = again->take_leftovers();
  ASSERT_TRUE(leftovers.ok());
  EXPECT_TRUE(leftovers->rerun.empty());
  EXPECT_TRUE(leftovers->abandoned.empty());
}

// A queued request and a running one when the agent is killed: both run again, once; a
// request started twice and never ended is abandoned, not run a third time.
TEST(RequestJournal, WhatAKilledRunLeftRunsOnceMoreThenIsAbandoned) {
  testing::TempDirectory dir("agent-journal");
  const std::string path = dir.path + "/requests.json";
  std::uint64_t running = 0, waiting = 0;
  {
    auto journal = RequestJournal::open(path);
    ASSERT_TRUE(journal.ok());
    running = *journal->record(annotation("running"));
    waiting =
        *journal->record(BackupRequest{BackupType::incr, Trigger::manual, "agent backup --type incr", {}});
    ASSERT_TRUE(journal->started(running).ok());
  }  // killed: nothing more is written
  {
    auto journal = RequestJournal::open(path);
    ASSERT_TRUE(journal.ok());
    auto leftovers = journal->take_leftovers();
    ASSERT_TRUE(leftovers.ok());
    ASSERT_EQ(leftovers->rerun.size(), 2u);
    EXPECT_EQ(leftovers->rerun[0].id, running);
    EXPECT_EQ(leftovers->rerun[0].request.reason, "annotation value 'running'");
    EXPECT_EQ(leftovers->rerun[0].request.trigger, Trigger::annotation);
    EXPECT_EQ(leftovers->rerun[1].id, waiting);
    EXPECT_EQ(leftovers->rerun[1].request.type, BackupType::incr);
    EXPECT_TRUE(leftovers->abandoned.empty());
    ASSERT_TRUE(journal->started(running).ok());  // its second attempt, killed again
    ASSERT_TRUE(journal->started(waiting).ok());
    ASSERT_TRUE(journal->finished(waiting).ok());
    // New ids never reuse old ones.
    auto fresh = journal->record(annotation("new"));
    ASSERT_TRUE(fresh.ok());
    EXPECT_GT(*fresh, waiting);
    ASSERT_TRUE(journal->finished(*fresh).ok());
  }
  auto journal = RequestJournal::open(path);
  ASSERT_TRUE(journal.ok());
  auto leftovers = journal->take_leftovers();
  ASSERT_TRUE(leftovers.ok());
  EXPECT_TRUE(leftovers->rerun.empty());
  ASSERT_EQ(leftovers->abandoned.size(), 1u);
  EXPECT_EQ(leftovers->abandoned[0].id, running);
  EXPECT_EQ(leftovers->abandoned[0].attempts, RequestJournal::kMaxAttempts);
  // Abandoned once, never again.
  auto later = RequestJournal::open(path);
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(later->take_leftovers()->abandoned.empty());
}

TEST(RequestJournal, ACorruptFileIsKeptAsideAndTheJournalStartsEmpty) {
  testing::TempDirectory dir("agent-journal");
  const std::string path = dir.path + "/requests.json";
  for (const std::string& content : std::vector<std::string>{
           "", "{", "[]", "{\"version\":1}", "{\"version\":1,\"next_id\":1,\"requests\":[{}]}",
           std::string("\0\xff\xfe garbage", 12)}) {
    std::ofstream(path, std::ios::binary) << content;
    auto journal = RequestJournal::open(path);
    ASSERT_TRUE(journal.ok()) << content;
    EXPECT_NE(journal->recovered_from().find("corrupt"), std::string::npos) << content;
    EXPECT_TRUE(journal->requests().empty());
    EXPECT_FALSE(std::filesystem::exists(path));
    ASSERT_TRUE(journal->record(annotation("x")).ok());
    EXPECT_TRUE(std::filesystem::exists(path));
    for (const auto& entry : std::filesystem::directory_iterator(dir.path))
      if (entry.path().filename().string().starts_with("requests.json.corrupt-"))
        std::filesystem::remove(entry);
  }
}

TEST(RequestJournal, AnyBytesInAReasonAreWritten) {
  testing::TempDirectory dir("agent-journal");
  const std::string path = dir.path + "/requests.json";
  auto journal = RequestJournal::open(path);
  ASSERT_TRUE(journal.ok());
  ASSERT_TRUE(journal->record(annotation(std::string("\xff\xfe\x01", 3))).ok());
  auto again = RequestJournal::open(path);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->recovered_from().empty());
  EXPECT_EQ(again->requests().size(), 1u);
}

TEST(RequestJournal, TheRepositoryIsKeptAndAnOlderFileWithoutOneIsTheDefault) {
  testing::TempDirectory dir("agent-journal");
  const std::string path = dir.path + "/requests.json";
  {
    auto journal = RequestJournal::open(path);
    ASSERT_TRUE(journal.ok());
    auto request = annotation("a");
    request.repo = 2;
    ASSERT_TRUE(journal->record(request).ok());
  }
  auto again = RequestJournal::open(path);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->requests().size(), 1u);
  EXPECT_EQ(again->requests()[0].request.repo, 2);

  std::ofstream(path) << R"({"version": 1, "next_id": 8, "requests": [{"id": 7, "type": "full", )"
                         R"("trigger": "annotation", "reason": "r", "requested_at_us": 1, "attempts": 0}]})";
  auto older = RequestJournal::open(path);
  ASSERT_TRUE(older.ok());
  EXPECT_TRUE(older->recovered_from().empty());
  ASSERT_EQ(older->requests().size(), 1u);
  EXPECT_EQ(older->requests()[0].request.repo, 0);
}
}  // namespace
}  // namespace agent
