#include "http/router.hpp"

#include <gtest/gtest.h>

namespace agent {
namespace {

using std::chrono::seconds;

RouteState healthy_state() {
  RouteState state;
  state.now = std::chrono::steady_clock::now();
  state.health.config_loaded = true;
  state.health.last_loop_heartbeat = state.now - seconds(2);
  state.health.repository_readable = true;
  state.scrape = [] { return std::string("agent_build_info 1\n"); };
  return state;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Router, ServesMetricsAndProbes) {
  const auto state = healthy_state();
  EXPECT_EQ(route("GET", "/metrics", state).body, "agent_build_info 1\n");
  EXPECT_EQ(route("GET", "/metrics", state).content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(route("GET", "/healthz", state).status, 200u);
  EXPECT_EQ(route("GET", "/readyz?verbose=1", state).status, 200u);
  EXPECT_EQ(route("HEAD", "/healthz", state).status, 200u);
  EXPECT_EQ(route("GET", "/healthz", state).body.rfind("ok\n", 0), 0u);
}

TEST(Router, RejectsOtherMethodsAndPathsWithoutWork) {
  auto state = healthy_state();
  bool scraped = false;
  state.scrape = [&scraped] {
    scraped = true;
    return std::string();
  };
  EXPECT_EQ(route("POST", "/metrics", state).status, 405u);
  EXPECT_EQ(route("GET", "/backup", state).status, 404u);
  EXPECT_FALSE(scraped);
}

// The sidecar's readiness decides whether the database pod is Ready: a repository problem
// must not take the database out of its Services. The body still says what is wrong.
TEST(Probes, UnreadableRepositoryKeepsTheAgentReadyAndAlive) {
  auto state = healthy_state();
  state.health.repository_readable = false;
  state.health.repository_error = "permission denied";
  const auto ready = route("GET", "/readyz", state);
  EXPECT_EQ(ready.status, 200u) << ready.body;
  EXPECT_TRUE(contains(ready.body, "repository: unreadable: permission denied")) << ready.body;
  EXPECT_TRUE(contains(ready.body, "agent_repository_info_success")) << ready.body;
  const auto live = route("GET", "/healthz", state);
  EXPECT_EQ(live.status, 200u) << "a broken repository is no reason to restart the agent";
  EXPECT_TRUE(contains(live.body, "repository: unreadable")) << live.body;
}

TEST(Probes, RepositoryNotReadYetKeepsTheAgentReady) {
  auto state = healthy_state();
  state.health.repository_readable.reset();
  const auto ready = route("GET", "/readyz", state);
  EXPECT_EQ(ready.status, 200u);
  EXPECT_TRUE(contains(ready.body, "repository: not read yet")) << ready.body;
  EXPECT_EQ(route("GET", "/healthz", state).status, 200u);
}

TEST(Probes, NotReadyUntilTheConfigIsLoaded) {
  auto state = healthy_state();
  state.health.config_loaded = false;
  const auto ready = route("GET", "/readyz", state);
  EXPECT_EQ(ready.status, 503u);
  EXPECT_TRUE(contains(ready.body, "configuration not loaded")) << ready.body;
}

TEST(Probes, StuckLoopFailsLivenessAndReadiness) {
  auto state = healthy_state();
  state.health.last_loop_heartbeat = state.now - seconds(45);
  const auto live = route("GET", "/healthz", state);
  EXPECT_EQ(live.status, 503u);
  EXPECT_TRUE(contains(live.body, "silent for 45 s")) << live.body;
  EXPECT_EQ(route("GET", "/readyz", state).status, 503u);
  // Up to the limit is a loop that turns.
  state.health.last_loop_heartbeat = state.now - probes::kMaxLoopSilence;
  EXPECT_EQ(route("GET", "/healthz", state).status, 200u);
  EXPECT_EQ(route("GET", "/readyz", state).status, 200u);
}

TEST(Probes, JobStuckPastItsDeadlineFailsLiveness) {
  auto state = healthy_state();
  state.health.jobs.push_back({"backup job 12 (full)", state.now - seconds(100), seconds(60)});
  state.health.jobs.push_back({"dump job 3", state.now - seconds(5), seconds(600)});
  const auto live = route("GET", "/healthz", state);
  EXPECT_EQ(live.status, 503u);
  EXPECT_TRUE(contains(live.body, "backup job 12 (full) stuck: no progress for 100 s (deadline 60 s)"))
      << live.body;
  EXPECT_FALSE(contains(live.body, "dump job 3")) << "only the stuck job is named: " << live.body;
  // A restart is liveness' business: the agent is still up, so it stays Ready meanwhile.
  EXPECT_EQ(route("GET", "/readyz", state).status, 200u);
}

TEST(Probes, JobWithinItsDeadlineIsAlive) {
  auto state = healthy_state();
  state.health.jobs.push_back({"backup job 12 (full)", state.now - seconds(60), seconds(60)});
  const auto live = route("GET", "/healthz", state);
  EXPECT_EQ(live.status, 200u) << live.body;
  EXPECT_TRUE(contains(live.body, "running: backup job 12 (full), last progress 60 s ago")) << live.body;
  // Progress moves the deadline: a long job that keeps going is never stuck.
  state.now += seconds(3600);
  state.health.last_loop_heartbeat = state.now;
  state.health.jobs[0].last_progress = state.now - seconds(10);
  EXPECT_EQ(route("GET", "/healthz", state).status, 200u);
}

TEST(Probes, JobWithoutDeadlineIsNeverStuck) {
  auto state = healthy_state();
  state.health.jobs.push_back({"dump job 3", state.now - seconds(86400 * 3), seconds(0)});
  EXPECT_EQ(route("GET", "/healthz", state).status, 200u);
}

}  // namespace
}  // namespace agent
