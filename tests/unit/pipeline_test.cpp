#include "pipelines/pipeline.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace agent
