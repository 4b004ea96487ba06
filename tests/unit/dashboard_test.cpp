// The Grafana dashboard (config/grafana/agent-dashboard.json) and the alert rules
// (config/alerts/agent-rules.yaml) name only metrics the agent exports: every agent_* and ccp_*
// name in an expr or a variable query must be a family of the agent's registry (as scraped from
// AgentMetrics, crunchy_compat on, which declares every family up front). A panel left behind
// by a renamed metric fails here instead of showing "No data".
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "metrics/agent_metrics.hpp"

namespace agent {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every family the agent exports: "# TYPE name kind" lines of a scrape. prometheus-cpp leaves out
// a family without a series, so every recording method is fed once first: a family added later
// and not fed here shows up as missing, which errs on the safe side.
std::set<std::string> exported_names() {
  using std::chrono::seconds;
  using std::chrono::system_clock;
  const auto at = [](std::int64_t epoch) { return system_clock::time_point{seconds{epoch}}; };
  AgentMetrics metrics("db", true);
  StanzaInfo stanza;
  stanza.name = "db";
  stanza.archive_max = "000000010000000000000009";
  stanza.repos = {RepoStatus{1, 0, "ok", "000000010000000000000001", "000000010000000000000009"}};
  stanza.backups = {{"F1", "full", 900, 1000, 50, 20, false, 1},
                    {"D1", "diff", 1900, 2000, 60, 5, false, 1},
                    {"I1", "incr", 2900, 3000, 60, 5, false, 1}};
  metrics.record_repository_read(stanza, at(3600), 0.02);
  ArchiverStats archiver;
  archiver.last_archived_epoch = 3500;
  archiver.last_failed_epoch = 3400;
  metrics.record_archiver(archiver);
  BackupResult succeeded;
  succeeded.outcome = BackupOutcome::succeeded;
  succeeded.repo = 1;
  metrics.record_backup(succeeded, at(3000));
  BackupResult failed = succeeded;
  failed.outcome = BackupOutcome::failed;
  failed.lock_waits = 1;
  metrics.record_backup(failed, at(3100));
  metrics.record_skip("standby");
  metrics.set_component_ok("state_dir", true);
  metrics.record_config_reload(true, at(3200));
  metrics.set_queue(1, BackupType::full);
  metrics.record_dump(DumpResult{at(3300), 2, 100, 0.5});
  metrics.record_dump_failed(at(3400));
  metrics.set_expected_intervals({{{1, "full"}, std::chrono::hours(24)}});
  metrics.set_min_window(std::chrono::hours(24));
  DrillOutcome drill;
  drill.id = "drill-1";
  drill.result = "passed";
  drill.finished_epoch = 3500;
  drill.phase_seconds = {{"restore", 10}};
  drill.replay_gap_seconds = 5;
  metrics.record_drills(drill, 3500, 3000, {{"passed", 1}});
  metrics.set_drill_max_age(86400);
  // A backup running, with its progress (its series exist only then).
  metrics.begin_backup_progress(1);
  metrics.record_backup_progress(LockProgress{true, 10, 100});
  metrics.record_restore_progress("dump", 10, 100);
  std::set<std::string> names;
  std::istringstream lines(metrics.scrape(at(4000)));
  const std::regex type_line(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) )");
  std::smatch match;
  for (std::string line; std::getline(lines, line);)
    if (std::regex_search(line, match, type_line)) names.insert(match[1]);
  return names;
}

// The agent_* and ccp_* names in a PromQL text.
std::set<std::string> referenced_names(const std::string& text) {
  std::set<std::string> names;
  const std::regex name(R"(\b((agent|ccp)_[a-zA-Z0-9_]+))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator(); ++it)
    names.insert((*it)[1]);
  return names;
}

// Every "expr" and variable "query"/"definition" string anywhere in the dashboard.
void collect_queries(const nlohmann::json& node, std::vector<std::string>& out) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if ((key == "expr" || key == "definition" || key == "query") && value.is_string())
        out.push_back(value.get<std::string>());
      else
        collect_queries(value, out);
    }
  } else if (node.is_array()) {
    for (const auto& item : node) collect_queries(item, out);
  }
}

TEST(Dashboard, TheRegistryDeclaresTheFamiliesTheTestReliesOn) {
  const auto names = exported_names();
  // Sanity: families without a series yet are still declared (else this test would be blind).
  EXPECT_TRUE(names.count("agent_backup_age_seconds"));
  EXPECT_TRUE(names.count("agent_recovery_window_seconds"));
  EXPECT_TRUE(names.count("agent_dump_last_failure_timestamp_seconds"));
  EXPECT_TRUE(names.count("agent_backup_progress_bytes"));
  EXPECT_TRUE(names.count("agent_backup_progress_total_bytes"));
  EXPECT_TRUE(names.count("agent_restore_progress_bytes"));
  EXPECT_TRUE(names.count("agent_restore_progress_total_bytes"));
  EXPECT_FALSE(names.count("agent_no_such_metric"));
}

TEST(Dashboard, EveryExprReferencesOnlyExportedMetrics) {
  const auto exported = exported_names();
  const auto dashboard =
      nlohmann::json::parse(read_file(AGENT_SOURCE_DIR "/config/grafana/agent-dashboard.json"));
  std::vector<std::string> queries;
  collect_queries(dashboard, queries);
  ASSERT_GT(queries.size(), 20u);
  std::set<std::string> used;
  for (const auto& query : queries) {
    const auto names = referenced_names(query);
    for (const auto& name : names) {
      EXPECT_TRUE(exported.count(name))
          << "the dashboard uses " << name << ", which the agent does not export: " << query;
      used.insert(name);
    }
  }
  // The panels the issue asks for: freshness, window, durations, sizes, failures, dumps, queue, WAL;
  // and the restore drills' results, times, RTO, RPO, checks and age.
  for (const char* name :
       {"agent_backup_age_seconds", "agent_recovery_window_seconds", "agent_backup_last_duration_seconds",
        "agent_backup_last_size_bytes", "agent_backups_total", "agent_dumps_total", "agent_queue_length",
        "agent_pg_archiver_last_archived_timestamp_seconds", "agent_drills_total",
        "agent_drill_last_success_timestamp_seconds", "agent_drill_last_failure_timestamp_seconds",
        "agent_drill_last_phase_duration_seconds", "agent_drill_last_replay_gap_seconds",
        "agent_drill_last_objects_checked", "agent_drill_last_objects_failed", "agent_drill_max_age_seconds"})
    EXPECT_TRUE(used.count(name)) << name;
  // Variables like pgMonitor's: cluster, pod, role.
  std::set<std::string> variables;
  for (const auto& variable : dashboard["templating"]["list"])
    variables.insert(variable["name"].get<std::string>());
  for (const char* name : {"cluster", "pod", "role"}) EXPECT_TRUE(variables.count(name)) << name;
}

TEST(Dashboard, TheAlertRulesReferenceOnlyExportedMetrics) {
  const auto exported = exported_names();
  // Without comment lines, which speak of families by pattern ("ccp_backrest_*").
  std::istringstream lines(read_file(AGENT_SOURCE_DIR "/config/alerts/agent-rules.yaml"));
  std::string rules;
  for (std::string line; std::getline(lines, line);)
    if (line.find_first_not_of(' ') == std::string::npos || line[line.find_first_not_of(' ')] != '#')
      rules += line + "\n";
  ASSERT_FALSE(rules.empty());
  for (const auto& name : referenced_names(rules))
    EXPECT_TRUE(exported.count(name))
        << "the alert rules use " << name << ", which the agent does not export";
}

TEST(Dashboard, AMisspelledMetricIsCaught) {
  const auto exported = exported_names();
  const auto names = referenced_names(R"(max(agent_backup_agee_seconds{repo="1"}))");
  ASSERT_EQ(names.size(), 1u);
  EXPECT_FALSE(exported.count(*names.begin()));
}

}  // namespace
}  // namespace agent
