// Reloading the config: which changes need a restart, and when the watched file counts as
// changed (a kubelet-style swap, a file that goes away for a moment, garbage in it is not the
// watch's business: the reload refuses it).
#include "daemon/config_reload.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "fakes/fake_loop_timers.hpp"
#include "fakes/temp_directory.hpp"

namespace agent {
namespace {

using namespace std::chrono_literals;

AgentConfig defaults() {
  const auto load = load_config_text("", "defaults", {});
  EXPECT_TRUE(load.issues.empty());
  return load.config;
}

TEST(ConfigReload, LiveSettingsChangeWithoutARestart) {
  const AgentConfig running = defaults();
  AgentConfig next = running;
  next.schedules.incr = "*/5 * * * *";
  next.run.grace_seconds = 10;
  next.dump.connections = 4;
  next.metrics.refresh_seconds = 60;
  // The metrics label every repository by its own key, so the default repository is live.
  next.pgbackrest.repo = 2;
  EXPECT_EQ(restart_only_changes(running, next), "");
}

TEST(ConfigReload, EachRestartOnlySettingIsNamed) {
  const AgentConfig running = defaults();
  AgentConfig next = running;
  next.stanza = "other";
  next.http.listen = "127.0.0.1:1";
  next.run.queue_capacity = running.run.queue_capacity + 1;
  EXPECT_EQ(restart_only_changes(running, next), "stanza, http.listen, run.queue_capacity");
  next = running;
  next.state_dir = "/elsewhere";
  next.control.socket = "/elsewhere/s";
  next.log.format = running.log.format == "json" ? "text" : "json";
  EXPECT_EQ(restart_only_changes(running, next), "state_dir, control.socket, log.format");
}

TEST(ConfigFileWatch, AReplacedFileIsSeenOnceAndAMissingOneIsNotAChange) {
  testing::TempDirectory dir("agent-config-watch");
  const std::string path = dir.path + "/agent.yaml";
  std::ofstream(path) << "stanza: db\n";
  testing::FakeLoopTime time;
  int changes = 0;
  ConfigFileWatch watch(
      time, path, [&] { ++changes; }, 10s);
  watch.start();
  time.advance(30s);
  EXPECT_EQ(changes, 0) << "an unchanged file";

  // As the kubelet does: a new file renamed over the old one.
  std::ofstream(path + ".new") << "stanza: other\n";
  std::filesystem::rename(path + ".new", path);
  time.advance(10s);
  EXPECT_EQ(changes, 1);
  time.advance(30s);
  EXPECT_EQ(changes, 1) << "the same change seen twice";

  std::filesystem::remove(path);
  time.advance(20s);
  EXPECT_EQ(changes, 1) << "a file gone for a moment is nothing to read";

  watch.stop();
  std::ofstream(path) << "garbage: [\n";
  time.advance(60s);
  EXPECT_EQ(changes, 1) << "a stopped watch fired";
}

}  // namespace
}  // namespace agent
