#include "http/router.hpp"

#include <gtest/gtest.h>

namespace agent {
namespace {

RouteState healthy_state() {
  RouteState state;
  state.now = std::chrono::steady_clock::now();
  state.health.config_loaded = true;
  state.health.last_loop_heartbeat = state.now - std::chrono::seconds(2);
  state.health.repository_readable = true;
  state.scrape = [] { return std::string("agent_build_info 1\n"); };
  return state;
}

TEST(Router, ServesMetricsAndProbes) {
  const auto state = healthy_state();
  EXPECT_EQ(route("GET", "/metrics", state).body, "agent_build_info 1\n");
  EXPECT_EQ(route("GET", "/metrics", state).content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(route("GET", "/healthz", state).status, 200u);
  EXPECT_EQ(route("GET", "/readyz?verbose=1", state).status, 200u);
  EXPECT_EQ(route("HEAD", "/healthz", state).status, 200u);
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

TEST(Probes, BrokenRepositoryMeansNotReadyButAlive) {
  auto state = healthy_state();
  state.health.repository_readable = false;
  state.health.repository_error = "permission denied";
  EXPECT_EQ(route("GET", "/healthz", state).status, 200u);
  const auto ready = route("GET", "/readyz", state);
  EXPECT_EQ(ready.status, 503u);
  EXPECT_NE(ready.body.find("permission denied"), std::string::npos);
  state.health.repository_readable.reset();
  EXPECT_NE(route("GET", "/readyz", state).body.find("not read yet"), std::string::npos);
}

TEST(Probes, StuckLoopFailsLiveness) {
  auto state = healthy_state();
  state.health.last_loop_heartbeat = state.now - std::chrono::seconds(45);
  const auto live = route("GET", "/healthz", state);
  EXPECT_EQ(live.status, 503u);
  EXPECT_NE(live.body.find("silent for 45 s"), std::string::npos);
}

}  // namespace
}  // namespace agent
