#include "pipelines/pipeline.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <stdexcept>

namespace agent {
namespace {

struct Trace {
  std::vector<std::string> events;
  std::vector<StepTiming> timings;
};

Step<Trace> step(const std::string& name, bool fails = false, bool has_teardown = true) {
  Step<Trace> s;
  s.name = name;
  s.execute = [name, fails](Trace& t) -> Status {
    t.events.push_back("run " + name);
    if (fails) return make_error(ErrorKind::external_tool, name + " broke");
    return {};
  };
  if (has_teardown) s.teardown = [name](Trace& t) { t.events.push_back("teardown " + name); };
  return s;
}

TEST(Pipeline, TeardownsRunInReverseAfterSuccess) {
  const std::vector<Step<Trace>> steps = {step("a"), step("b", false, false), step("c")};
  Trace trace;
  CancelToken cancel;
  ASSERT_TRUE(run_steps<Trace>(steps, trace, cancel, *log::get("test")).ok());
  EXPECT_EQ(trace.events, (std::vector<std::string>{"run a", "run b", "run c", "teardown c", "teardown a"}));
  EXPECT_EQ(trace.timings.size(), 3u);
}

TEST(Pipeline, FailureStopsAndTearsDownWhatStarted) {
  const std::vector<Step<Trace>> steps = {step("restore"), step("start"), step("wait", true), step("dump")};
  Trace trace;
  CancelToken cancel;
  auto status = run_steps<Trace>(steps, trace, cancel, *log::get("test"));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message, "wait: wait broke");
  EXPECT_EQ(status.error().kind, ErrorKind::external_tool);
  EXPECT_EQ(trace.events, (std::vector<std::string>{"run restore", "run start", "run wait", "teardown wait",
                                                    "teardown start", "teardown restore"}));
}

TEST(Pipeline, CancelBetweenStepsStillTearsDown) {
  CancelToken cancel;
  std::vector<Step<Trace>> steps = {step("start"), step("dump")};
  steps[0].execute = [&cancel](Trace& t) -> Status {
    t.events.push_back("run start");
    cancel.cancel(SIGTERM);
    return {};
  };
  Trace trace;
  auto status = run_steps<Trace>(steps, trace, cancel, *log::get("test"));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::interrupted);
  EXPECT_EQ(trace.events, (std::vector<std::string>{"run start", "teardown start"}));
}

TEST(Pipeline, FailureCausedByCancelIsReportedAsInterrupted) {
  CancelToken cancel;
  std::vector<Step<Trace>> steps = {step("dump")};
  steps[0].execute = [&cancel](Trace&) -> Status {
    cancel.cancel(SIGINT);
    return make_error(ErrorKind::external_tool, "pg_dump was killed by signal 15");
  };
  Trace trace;
  auto status = run_steps<Trace>(steps, trace, cancel, *log::get("test"));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::interrupted);
}

// The shape of the dump: a step opens OUTPUT.partial and locks it, a later step throws. The
// teardowns still remove the file, close the descriptor and release the lock.
TEST(Pipeline, AStepThatThrowsStillRunsEveryStartedTeardown) {
  char dir_template[] = "/tmp/agent-pipeline-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string partial = std::string(dir_template) + "/OUTPUT.partial";
  struct Files {
    std::string partial;
    std::string lock;
    int fd = -1;
    int lock_fd = -1;
    std::vector<StepTiming> timings;
    std::vector<std::string> events;
  } files{partial, std::string(dir_template) + "/lock", -1, -1, {}, {}};
  std::vector<Step<Files>> steps(3);
  steps[0].name = "open";
  steps[0].execute = [](Files& f) -> Status {
    f.lock_fd = open(f.lock.c_str(), O_CREAT | O_RDONLY | O_CLOEXEC, 0600);
    if (f.lock_fd < 0 || flock(f.lock_fd, LOCK_EX | LOCK_NB) != 0)
      return make_error(ErrorKind::environment, "lock");
    f.fd = open(f.partial.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (f.fd < 0) return make_error(ErrorKind::environment, "open");
    return {};
  };
  steps[0].teardown = [](Files& f) {
    f.events.push_back("teardown open");
    unlink(f.partial.c_str());
    close(f.fd);
    close(f.lock_fd);
  };
  steps[1].name = "dump";
  steps[1].execute = [](Files&) -> Status { throw std::runtime_error("boom"); };
  steps[1].teardown = [](Files& f) {
    f.events.push_back("teardown dump");
    throw std::logic_error("a teardown that throws does not stop the others");
  };
  steps[2].name = "never";
  steps[2].execute = [](Files& f) -> Status {
    f.events.push_back("run never");
    return {};
  };
  CancelToken cancel;
  Status status;
  ASSERT_NO_THROW(status = run_steps<Files>(steps, files, cancel, *log::get("test")));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::internal);
  EXPECT_NE(status.error().message.find("dump: unexpected exception: boom"), std::string::npos)
      << status.error().message;
  EXPECT_EQ(files.events, (std::vector<std::string>{"teardown dump", "teardown open"}));
  EXPECT_NE(access(partial.c_str(), F_OK), 0) << "the partial file is left behind";
  EXPECT_EQ(fcntl(files.fd, F_GETFD), -1) << "the descriptor is still open";
  // The lock went with the descriptor: another open file description can take it.
  const int lock = open(files.lock.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(lock, 0);
  EXPECT_EQ(flock(lock, LOCK_EX | LOCK_NB), 0) << "the lock is still held";
  close(lock);
  unlink(files.lock.c_str());
  rmdir(dir_template);
}

}  // namespace
}  // namespace agent
