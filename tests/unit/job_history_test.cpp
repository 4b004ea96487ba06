#include "jobs/job_history.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "fakes/temp_directory.hpp"

namespace agent::testing {
namespace {

TEST(JobHistory, SurvivesReopeningNewestFirstAndBounded) {
  TempDirectory dir{"job-history"};
  const std::string path = dir.path + "/history.json";
  {
    auto history = JobHistory::open(path);
    ASSERT_TRUE(history.ok()) << history.error().describe();
    EXPECT_TRUE(history->entries().empty());
    for (std::size_t i = 0; i < JobHistory::kMaxEntries + 5; ++i)
      ASSERT_TRUE(history->add({{"job_id", i}, {"outcome", "succeeded"}}).ok());
    EXPECT_EQ(history->entries().size(), JobHistory::kMaxEntries);
  }
  auto reopened = JobHistory::open(path);
  ASSERT_TRUE(reopened.ok());
  ASSERT_EQ(reopened->entries().size(), JobHistory::kMaxEntries);
  EXPECT_EQ(reopened->entries().front()["job_id"], JobHistory::kMaxEntries + 4);
  EXPECT_EQ(reopened->entries().back()["job_id"], 5u);
  EXPECT_TRUE(reopened->recovered_from().empty());
}

TEST(JobHistory, ACorruptFileIsKeptAsideAndTheHistoryStartsEmpty) {
  TempDirectory dir{"job-history"};
  const std::string path = dir.path + "/history.json";
  std::ofstream(path) << "{\"version\": 1, \"jobs\": [1, 2]}";
  auto history = JobHistory::open(path);
  ASSERT_TRUE(history.ok()) << history.error().describe();
  EXPECT_TRUE(history->entries().empty());
  EXPECT_NE(history->recovered_from().find("a job is not an object"), std::string::npos)
      << history->recovered_from();
  EXPECT_FALSE(std::filesystem::exists(path));
  ASSERT_TRUE(history->add({{"job_id", 1}}).ok());
  EXPECT_TRUE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace agent::testing
