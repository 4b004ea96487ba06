// The real runner against small programs from coreutils: argv only, output into lines,
// timeouts, cancellation of a whole process group.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "exec/process.hpp"
#include "exec/process_group.hpp"

namespace agent {
namespace {

// A killed process may linger as a zombie until init reaps it; that is not "running".
bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_text, name, state;
  if (!(stat >> pid_text >> name >> state)) return false;
  return state != "Z";
}

TEST(ProcessRunner, PassesArgumentsVerbatimWithoutAShell) {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"printf", "%s|", "a b", "$(touch /tmp/agent-should-not-exist)", "*"};
  spec.stdout_mode = StdoutMode::capture;
  auto result = runner->run(spec, CancelToken::never());
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->succeeded());
  EXPECT_EQ(result->stdout_text, "a b|$(touch /tmp/agent-should-not-exist)|*|");
  EXPECT_NE(access("/tmp/agent-should-not-exist", F_OK), 0);
}

TEST(ProcessRunner, StreamsLinesAndKeepsTheTail) {
  auto runner = make_posix_process_runner();
  std::vector<std::string> seen;
  ProcessSpec spec;
  spec.argv = {"seq", "1", "30"};
  spec.on_line = [&seen](std::string_view line) { seen.emplace_back(line); };
  auto result = runner->run(spec, CancelToken::never());
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(seen.size(), 30u);
  EXPECT_EQ(seen.front(), "1");
  EXPECT_EQ(result->last_lines.size(), 20u);
  EXPECT_EQ(result->last_lines.back(), "30");
}

TEST(ProcessRunner, FileModeLetsTheChildWriteTheDescriptorItself) {
  char path[] = "/tmp/agent-stdout-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"seq", "1", "3"};
  spec.stdout_mode = StdoutMode::file;
  spec.stdout_file = fd;
  std::vector<std::string> logged;
  spec.on_line = [&logged](std::string_view line) { logged.emplace_back(line); };
  auto result = runner->run(spec, CancelToken::never());
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->succeeded());
  EXPECT_TRUE(logged.empty());  // nothing of stdout went through the agent
  char buffer[16] = {};
  EXPECT_EQ(pread(fd, buffer, sizeof buffer - 1, 0), 6);
  EXPECT_STREQ(buffer, "1\n2\n3\n");
  close(fd);
  unlink(path);
}

TEST(ProcessRunner, FileModeWithoutADescriptorIsRefused) {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"true"};
  spec.stdout_mode = StdoutMode::file;
  EXPECT_FALSE(runner->run(spec, CancelToken::never()).ok());
}

TEST(ProcessRunner, NiceLowersThePriorityOfTheChildOnly) {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"nice"};  // without arguments it prints its own niceness
  spec.stdout_mode = StdoutMode::capture;
  spec.nice = 7;
  auto niced = runner->run(spec, CancelToken::never());
  spec.nice = 0;
  auto plain = runner->run(spec, CancelToken::never());
  ASSERT_TRUE(niced.ok() && plain.ok());
  EXPECT_EQ(std::stoi(niced->stdout_text) - std::stoi(plain->stdout_text), 7);
}

TEST(ProcessRunner, ReportsExitCodes) {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"false"};
  auto result = runner->run(spec, CancelToken::never());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_EQ(result->describe(), "exited with code 1");
}

TEST(ProcessRunner, MissingProgramIsAnError) {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"agent-no-such-program"};
  auto result = runner->run(spec, CancelToken::never());
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("cannot find program 'agent-no-such-program'"), std::string::npos);
}

TEST(ProcessRunner, TimeoutEndsTheProcess) {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"sleep", "30"};
  spec.timeout = std::chrono::milliseconds(200);
  const auto begin = std::chrono::steady_clock::now();
  auto result = runner->run(spec, CancelToken::never());
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->timed_out);
  EXPECT_FALSE(result->succeeded());
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(5));
}

TEST(ProcessRunner, CancelEndsTheWholeProcessGroup) {
  // The child ignores SIGTERM and starts a grandchild in its group: after the grace period
  // both must be gone.
  auto runner = make_posix_process_runner();
  CancelToken cancel;
  ProcessSpec spec;
  spec.argv = {"bash", "-c", "trap '' TERM; sleep 60 & echo $!; wait"};  // a test program, not the agent
  spec.kill_grace = std::chrono::milliseconds(300);
  pid_t grandchild = 0;
  spec.on_line = [&grandchild, &cancel](std::string_view line) {
    grandchild = std::stoi(std::string(line));
    cancel.cancel(SIGTERM);
  };
  auto result = runner->run(spec, cancel);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->cancelled);
  ASSERT_GT(grandchild, 0);
  EXPECT_FALSE(alive(grandchild)) << "run() returned while the grandchild still ran";
}

TEST(ProcessRunner, ReturnsOnlyOnceTheChildsGroupHasStopped) {
  // Like pg_dump's parallel workers when pg_dump itself ends: the leader exits, its children
  // in the group are killed, and run() returns only when they no longer run, so the caller
  // can remove what they were writing. Each worker ignores SIGTERM and would run for a minute.
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"bash", "-c", "for i in 1 2 3 4; do (trap '' TERM; exec sleep 60) & echo $!; done"};
  std::vector<pid_t> workers;
  spec.on_line = [&workers](std::string_view line) { workers.push_back(std::stoi(std::string(line))); };
  const auto begin = std::chrono::steady_clock::now();
  auto result = runner->run(spec, CancelToken::never());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(5));
  ASSERT_EQ(workers.size(), 4u);
  for (const pid_t worker : workers) EXPECT_FALSE(alive(worker)) << "worker " << worker << " still runs";
}

TEST(ProcessGroup, ListsTheRunningMembersButTheLeaderAndNoZombies) {
  // A child in a group of its own with a grandchild whose name holds ") (", as /proc's comm may.
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"bash", "-c", "(exec -a 'odd) (name' sleep 60) & echo $!; exec sleep 60"};
  pid_t member = 0;
  std::mutex mutex;
  spec.on_line = [&](std::string_view line) {
    std::lock_guard lock(mutex);
    member = std::stoi(std::string(line));
  };
  auto started = runner->start(spec);
  ASSERT_TRUE(started.ok());
  const pid_t leader = started.value()->pid();
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard lock(mutex);
      if (member != 0) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_t grandchild = 0;
  {
    std::lock_guard lock(mutex);
    grandchild = member;
  }
  ASSERT_GT(grandchild, 0);
  EXPECT_EQ(running_group_members(leader, leader), std::vector<pid_t>{grandchild});
  EXPECT_TRUE(running_group_members(leader, grandchild).size() == 1u);  // the leader itself
  EXPECT_TRUE(running_group_members(99999999, 0).empty());              // above any pid_max: no such group
  started.value()->stop(SIGTERM, std::chrono::milliseconds(200));
  EXPECT_TRUE(running_group_members(leader, leader).empty());
}

TEST(ProcessRunner, DoesNotHangOnADaemonHoldingThePipe) {
  // Like `pg_ctl start` without -l: the child exits, a background process keeps stdout.
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"bash", "-c", "sleep 30 & echo started"};
  const auto begin = std::chrono::steady_clock::now();
  auto result = runner->run(spec, CancelToken::never());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(5));
}

TEST(ProcessRunner, StartedProcessIsStoppedWhenItsHandleGoes) {
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"sleep", "60"};
  pid_t pid = 0;
  {
    auto started = runner->start(spec);
    ASSERT_TRUE(started.ok());
    pid = started.value()->pid();
    EXPECT_TRUE(alive(pid));
  }
  EXPECT_FALSE(alive(pid));
}

}  // namespace
}  // namespace agent
