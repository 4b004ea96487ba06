// Restore drills as the metrics see them: the manifests in state_dir/drills read back (newest
// drill, newest pass and failure), the max age the alert compares with, and the exported series.
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "core/files.hpp"
#include "fakes/temp_directory.hpp"
#include "metrics/agent_metrics.hpp"
#include "pipelines/drill_pipeline.hpp"

namespace agent {
namespace {

std::string manifest(const std::string& id, const std::string& result, const std::string& finished) {
  return R"({"drill": ")" + id + R"(", "result": ")" + result + R"(", "finished_at": ")" + finished +
         R"(", "total_seconds": 12.5, "durations_seconds": {"restore": 7.0, "checks": 3.5},
             "replay_gap_seconds": 42.0, "objects_checked": 300, "objects_failed": )" +
         (result == "passed" ? "0" : "2") + "}";
}

TEST(DrillHistory, NewestDrillAndNewestPassAndFailure) {
  testing::TempDirectory dir("drill-history");
  ASSERT_TRUE(write_file_atomically(dir.path + "/20241101T050000Z.json",
                                    manifest("20241101T050000Z", "passed", "2024-11-01T05:01:00Z")));
  ASSERT_TRUE(write_file_atomically(dir.path + "/20241102T050000Z.json",
                                    manifest("20241102T050000Z", "failed", "2024-11-02T05:01:00Z")));
  ASSERT_TRUE(write_file_atomically(dir.path + "/20241103T050000Z.json", "{not json"));
  ASSERT_TRUE(write_file_atomically(dir.path + "/last.json",
                                    manifest("20241102T050000Z", "failed", "2024-11-02T05:01:00Z")));
  const auto history = read_drill_history(dir.path);
  ASSERT_EQ(history.drills.size(), 2u);  // last.json is a copy; an unreadable file is skipped
  EXPECT_EQ(history.drills.back().id, "20241102T050000Z");
  EXPECT_EQ(history.drills.back().objects_failed, 2u);
  EXPECT_EQ(history.drills.back().phase_seconds.at("restore"), 7.0);
  EXPECT_EQ(history.last_success, 1730437260);
  EXPECT_EQ(history.last_failure, 1730523660);
  EXPECT_TRUE(read_drill_history(dir.path + "/absent").drills.empty());
}

TEST(DrillHistory, MaxAgeFromTheSettingTheScheduleOrTheDefault) {
  auto config = load_config_text("", "t.yaml", {}).config;
  const auto now = std::chrono::system_clock::from_time_t(1730437260);
  EXPECT_EQ(drill_max_age_seconds(config, now), 8 * 86400.0);
  config.schedules.drill = "0 5 * * 0";  // weekly
  EXPECT_EQ(drill_max_age_seconds(config, now), 2 * 604800.0 + 3600.0);
  config.schedules.drill = "0 5 * * *";  // daily
  EXPECT_EQ(drill_max_age_seconds(config, now), 2 * 86400.0 + 3600.0);
  config.drill.max_age_hours = 30;
  EXPECT_EQ(drill_max_age_seconds(config, now), 30 * 3600.0);
}

TEST(DrillMetrics, ExportsTheNewestDrillAndCountsEachOnce) {
  AgentMetrics metrics("db", false);
  DrillOutcome last{
      "20241102T050000Z", "failed", 1730523660, 12.5, {{"restore", 7.0}, {"checks", 3.5}}, 42.0, 300, 2};
  metrics.set_drill_max_age(691200);
  metrics.record_drills(last, 1730437260, 1730523660, {{"passed", 1}, {"failed", 1}});
  metrics.record_drills(last, 1730437260, 1730523660, {});
  const auto text = metrics.scrape(std::chrono::system_clock::from_time_t(1730523700));
  for (const char* line : {"agent_drills_total{result=\"failed\",stanza=\"db\"} 1",
                           "agent_drills_total{result=\"passed\",stanza=\"db\"} 1",
                           "agent_drill_last_success_timestamp_seconds{stanza=\"db\"} 1730437260",
                           "agent_drill_last_failure_timestamp_seconds{stanza=\"db\"} 1730523660",
                           "agent_drill_last_phase_duration_seconds{phase=\"restore\",stanza=\"db\"} 7",
                           "agent_drill_last_duration_seconds{stanza=\"db\"} 12.5",
                           "agent_drill_last_replay_gap_seconds{stanza=\"db\"} 42",
                           "agent_drill_last_objects_checked{stanza=\"db\"} 300",
                           "agent_drill_last_objects_failed{stanza=\"db\"} 2",
                           "agent_drill_max_age_seconds{stanza=\"db\"} 691200"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
}

}  // namespace
}  // namespace agent
