#include "exec/no_sync.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace agent {
namespace {

TEST(NoSync, FindsTheLibraryInTheFirstDirectoryThatHasIt) {
  char root[] = "/tmp/agent-nosync-XXXXXX";
  ASSERT_NE(mkdtemp(root), nullptr);
  const std::string empty = std::string(root) + "/empty", lib = std::string(root) + "/lib";
  std::filesystem::create_directories(empty);
  std::filesystem::create_directories(lib);
  EXPECT_FALSE(find_no_sync_library({empty, lib}).has_value());
  std::ofstream(lib + "/libeatmydata.so.1") << "x";
  EXPECT_EQ(find_no_sync_library({empty, lib}).value_or(""), lib + "/libeatmydata.so.1");
  std::filesystem::remove_all(root);
}

TEST(NoSync, KeepsWhatTheAgentItselfPreloads) {
  ProcessSpec spec;
  unsetenv("LD_PRELOAD");
  preload_no_sync(spec, "/lib/libeatmydata.so.1");
  ASSERT_EQ(spec.env.size(), 1u);
  EXPECT_EQ(spec.env[0], std::make_pair(std::string("LD_PRELOAD"), std::string("/lib/libeatmydata.so.1")));

  ProcessSpec chained;
  setenv("LD_PRELOAD", "/lib/libother.so", 1);
  preload_no_sync(chained, "/lib/libeatmydata.so.1");
  unsetenv("LD_PRELOAD");
  ASSERT_EQ(chained.env.size(), 1u);
  EXPECT_EQ(chained.env[0].second, "/lib/libother.so:/lib/libeatmydata.so.1");
}

}  // namespace
}  // namespace agent
