// `agent drill` against a real PostgreSQL 15 and pgBackRest repository: a healthy backup drills
// green (every table read, with the row counts the live tables had at the target; amcheck on
// every B-tree index of the database that has it; checksums verified), a drill that finds a
// problem fails naming it, and nothing live is touched; schedules.drill inside `agent run` runs
// through the queue, behind a running backup, never beside a dump.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "exec/process.hpp"
#include "harness.hpp"
#include "pipelines/disk_watch.hpp"
#include "time/target_time.hpp"

namespace agent::testing {
namespace {

constexpr int kExitVerification = 4;

class DrillIntegration : public ClusterSuite<DrillIntegration> {
 public:
  static constexpr int kBulkMb = 0;
  static void SetUpTestSuite() {
    cluster_ = new TestCluster(TestCluster::create_with(0, {"--data-checksums", "--amcheck"}));
  }

 protected:
  // The cluster's agent config with a state directory of its own (where the manifests go).
  static std::string config_path() {
    const std::string path = cluster_->dir() + "/drill-agent.yaml";
    if (!file_exists(path))
      write_file(path,
                 read_file(cluster_->get("AGENT_CONFIG")) + "state_dir: " + cluster_->dir() + "/state\n");
    return path;
  }

  // The drill's log line when its restore's progress reached the set's whole size.
  static std::string restored_in_full(const std::string& label) {
    std::uint64_t bytes = 0;
    for (const auto& set : cluster_->backups())
      if (set.label == label) bytes = set.database_bytes;
    EXPECT_GT(bytes, 0u) << label;
    return "restored " + human_bytes(bytes) + " of " + human_bytes(bytes) + " (100.00%)";
  }

  static nlohmann::json last_manifest() {
    return nlohmann::json::parse(read_file(cluster_->dir() + "/state/drills/last.json"));
  }

  // The annotations `pgbackrest info` shows for backup set `label` (an empty object when none).
  static nlohmann::json set_annotations(const std::string& label) {
    auto runner = make_posix_process_runner();
    ProcessSpec spec;
    spec.argv = {"pgbackrest", "--config=" + cluster_->get("PGBACKREST_CONFIG"),
                 "--stanza=" + cluster_->get("STANZA"), "--output=json", "info"};
    spec.stdout_mode = StdoutMode::capture;
    const auto info = runner->run(spec, CancelToken::never());
    EXPECT_TRUE(info && info->succeeded());
    if (!info) return nlohmann::json::object();
    const auto stanzas = nlohmann::json::parse(info->stdout_text, nullptr, false);
    if (stanzas.is_discarded() || !stanzas.is_array() || stanzas.empty()) return nlohmann::json::object();
    for (const auto& set : stanzas.at(0).value("backup", nlohmann::json::array()))
      if (set.value("label", "") == label) return set.value("annotation", nlohmann::json::object());
    ADD_FAILURE() << "no backup set " << label << " in pgbackrest info";
    return nlohmann::json::object();
  }

  static const nlohmann::json* find_check(const nlohmann::json& manifest, const std::string& name,
                                          const std::string& database) {
    for (const auto& check : manifest["checks"])
      if (check["check"] == name &&
          (database.empty() ? check["database"].is_null() : check["database"] == database))
        return &check;
    return nullptr;
  }
};

TEST_F(DrillIntegration, HealthyBackupDrillsGreenAtTheTarget) {
  // The set the target restores from carries an annotation of someone else's: the drill's
  // result must join it, not replace it.
  std::string drilled_set;
  const auto target = parse_target_time(cluster_->target());
  ASSERT_TRUE(target.ok());
  for (const auto& set : cluster_->backups())
    if (set.stop_epoch < std::chrono::floor<std::chrono::seconds>(target->instant).time_since_epoch().count())
      drilled_set = set.label;
  ASSERT_FALSE(drilled_set.empty());
  ASSERT_EQ(run_or_fail({"pgbackrest", "--config=" + cluster_->get("PGBACKREST_CONFIG"),
                         "--stanza=" + cluster_->get("STANZA"), "--set=" + drilled_set,
                         "--annotation=owner=someone-else", "annotate"})
                .exit_code,
            0);
  const auto archive_before = cluster_->archive_files();
  const auto run = run_agent({"drill", "--config", config_path(), "--target", cluster_->target()});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const auto manifest = last_manifest();
  EXPECT_EQ(manifest["result"], "passed");
  EXPECT_EQ(manifest["mode"], "target");
  EXPECT_EQ(manifest["recovery_stop"], "target");
  EXPECT_FALSE(manifest["backup_set"]["label"].get<std::string>().empty());
  ASSERT_FALSE(manifest["replay_timestamp"].is_null());
  EXPECT_GE(manifest["replay_gap_seconds"].get<double>(), 0.0);
  for (const char* phase : {"check", "restore", "start", "wait", "verify", "checks", "stop", "checksums"})
    EXPECT_TRUE(manifest["durations_seconds"].contains(phase)) << phase;
  EXPECT_GT(manifest["total_seconds"].get<double>(), 0.0);

  // Every table of api read, with the live row counts at the target: events had the rows
  // written before the target; the other tables did not change after it.
  std::map<std::string, std::uint64_t> read;
  for (const auto& table : manifest["tables"])
    if (table["database"] == "api") read[table["table"]] = table["rows"];
  std::istringstream live_tables(cluster_->query(
      "api",
      "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = "
      "c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
      "ORDER BY 1"));
  std::string table;
  int compared = 0;
  while (std::getline(live_tables, table)) {
    ASSERT_EQ(read.count(table), 1u) << table << " was not read";
    const auto live = std::stoull(cluster_->query("api", "SELECT count(*) FROM ONLY " + table));
    const std::uint64_t expected =
        table == "public.events" ? std::stoull(cluster_->get("ROWS_BEFORE")) : live;
    EXPECT_EQ(read[table], expected) << table;
    ++compared;
  }
  EXPECT_EQ(compared, 7);  // events and the awkward tables (a partitioned table has no rows of its own)

  const auto* tables = find_check(manifest, "tables", "api");
  ASSERT_NE(tables, nullptr);
  EXPECT_EQ((*tables)["result"], "passed");
  // amcheck ran on every B-tree index of api (installed there), and is skipped with the reason
  // in postgres (not installed).
  const auto* indexes = find_check(manifest, "amcheck-indexes", "api");
  ASSERT_NE(indexes, nullptr);
  EXPECT_EQ((*indexes)["result"], "passed");
  EXPECT_EQ(
      (*indexes)["checked"].get<std::uint64_t>(),
      std::stoull(cluster_->query("api",
                                  "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                  "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree'")));
  const auto* heap = find_check(manifest, "amcheck-heap", "api");
  ASSERT_NE(heap, nullptr);
  EXPECT_EQ((*heap)["result"], "passed");
  EXPECT_GT((*heap)["checked"].get<std::uint64_t>(), 0u);
  const auto* skipped = find_check(manifest, "amcheck-indexes", "postgres");
  ASSERT_NE(skipped, nullptr);
  EXPECT_EQ((*skipped)["result"], "skipped");
  EXPECT_NE((*skipped)["reason"].get<std::string>().find("CREATE EXTENSION amcheck on the primary"),
            std::string::npos);
  // Checksums verified on the stopped copy.
  EXPECT_EQ(manifest["data_checksums"], true);
  const auto* checksums = find_check(manifest, "checksums", "");
  ASSERT_NE(checksums, nullptr);
  EXPECT_EQ((*checksums)["result"], "passed");
  EXPECT_GT((*checksums)["checked"].get<std::uint64_t>(), 0u);

  // Nothing live touched: no file (no .history, no new timeline) added to the live archive,
  // and the live server is still the primary on timeline 1.
  EXPECT_EQ(cluster_->archive_files(), archive_before) << "the live archive changed";
  EXPECT_EQ(cluster_->query("postgres", "SELECT pg_is_in_recovery()"), "f");
  EXPECT_EQ(cluster_->query("postgres", "SELECT timeline_id FROM pg_control_checkpoint()"), "1");
  EXPECT_TRUE(processes_matching(cluster_->dir() + "/scratch/data").empty())
      << "the copy's server still runs";

  // Its result is on the drilled set (drill.annotate defaults to on), for `pgbackrest info`.
  const std::string label = manifest["backup_set"]["label"];
  EXPECT_EQ(label, drilled_set);
  const auto annotations = set_annotations(label);
  EXPECT_EQ(annotations.value("agent-drill-result", ""), "passed") << annotations.dump();
  EXPECT_EQ(annotations.value("owner", ""), "someone-else") << annotations.dump();
  EXPECT_EQ(annotations.value("agent-drill-id", ""), manifest["drill"]) << annotations.dump();
  EXPECT_EQ(annotations.value("agent-drill-finished", ""), manifest["finished_at"]) << annotations.dump();
  EXPECT_NE(run.stderr_text.find("is recorded on backup set " + label), std::string::npos) << run.stderr_text;
}

TEST_F(DrillIntegration, LatestDrillWithAFalseAssertionFailsNamingIt) {
  const auto archive_before = cluster_->archive_files();
  const auto run = run_agent({"drill", "--config", config_path(), "--latest", "--database", "api", "--assert",
                              "api: SELECT count(*) = 200 FROM events", "--assert",
                              "api: SELECT count(*) = 100 FROM events"});
  EXPECT_EQ(run.exit_code, kExitVerification) << run.stderr_text;
  const auto manifest = last_manifest();
  EXPECT_EQ(manifest["result"], "failed");
  EXPECT_EQ(manifest["mode"], "latest");
  const std::string first = manifest["first_failure"];
  EXPECT_NE(first.find("SELECT count(*) = 100 FROM events"), std::string::npos) << first;
  EXPECT_NE(first.find("is false"), std::string::npos) << first;
  EXPECT_NE(run.stderr_text.find("SELECT count(*) = 100 FROM events"), std::string::npos);
  EXPECT_EQ(manifest["objects_failed"], 1);
  // At the end of the archived WAL every row is there; only api was checked.
  for (const auto& table : manifest["tables"]) {
    EXPECT_EQ(table["database"], "api");
    if (table["table"] == "public.events") {
      EXPECT_EQ(table["rows"], 200);
    }
  }
  EXPECT_EQ(find_check(manifest, "tables", "postgres"), nullptr);
  EXPECT_EQ(cluster_->archive_files(), archive_before) << "the live archive changed";
}

// A pgbackrest that waits 20 s before each backup: a backup is still running when the drill
// falls due.
std::string slow_backup_pgbackrest(const std::string& dir) {
  const std::string path = dir + "/slow-backup-pgbackrest";
  write_file(path,
             "#!/bin/sh\nfor last; do :; done\nif [ \"$last\" = backup ]; then sleep 20; fi\nexec pgbackrest "
             "\"$@\"\n");
  chmod(path.c_str(), 0755);
  return path;
}

// Files of the archive that a drill must never add: a timeline history, or WAL of a timeline
// other than the live one (1).
std::vector<std::string> foreign_archive_files(const std::set<std::string>& files) {
  std::vector<std::string> foreign;
  for (const auto& file : files) {
    const auto slash = file.find_last_of('/');
    const std::string name = slash == std::string::npos ? file : file.substr(slash + 1);
    if (name.find(".history") != std::string::npos ||
        (name.size() >= 24 && name.find_first_not_of("0123456789ABCDEF") >= 24 &&
         name.substr(0, 8) != "00000001"))
      foreign.push_back(file);
  }
  return foreign;
}

TEST_F(DrillIntegration, ScheduledDrillRunsBehindARunningBackupAndNeverBesideADump) {
  const std::string dir = cluster_->dir() + "/scheduled";
  mkdir(dir.c_str(), 0700);
  const std::string config = dir + "/agent.yaml";
  write_file(config, "stanza: db\nstate_dir: " + cluster_->dir() + "/state\npgbackrest:\n  config: " +
                         cluster_->get("PGBACKREST_CONFIG") + "\n  bin: " + slow_backup_pgbackrest(dir) +
                         "\npostgres:\n  bindir: " + cluster_->get("BINDIR") +
                         "\n  data: " + cluster_->get("DATA") + "\n  host: " + cluster_->get("SOCKET_DIR") +
                         "\n  port: " + cluster_->get("PORT") + "\n  user: postgres\nrestore:\n  scratch: " +
                         cluster_->get("SCRATCH") + "\n  port: " + cluster_->get("SCRATCH_PORT") +
                         "\n  keep_scratch: always\ncontrol:\n  socket: " + dir +
                         "/agent.sock\nhttp:\n  listen: 127.0.0.1:" + std::to_string(free_port()) +
                         "\nmanual:\n  annotations_file: \"\"\nschedules:\n  timezone: America/Vancouver\n"
                         "  drill: \"* * * * *\"\n");
  const auto status_of = [&config] {
    const auto run = run_agent({"status", "--json", "--config", config});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    auto parsed = nlohmann::json::parse(run.stdout_text, nullptr, false);
    return parsed.is_discarded() ? nlohmann::json::object() : parsed;
  };
  // A backup that starts 15 s before the minute runs past it (20 s of sleep, then the backup).
  for (;;) {
    const auto second =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count() %
        60;
    if (second >= 40 && second <= 45) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  const auto archive_before = cluster_->archive_files();
  RunningAgent agent(config);
  const auto backup = run_agent({"backup", "--config", config, "--type", "incr"});
  ASSERT_EQ(backup.exit_code, 0) << backup.stderr_text << agent.log();

  // The drill falls due while the backup runs: it is queued, not started.
  ASSERT_TRUE(
      eventually([&] { return agent.log_contains("restore drill queued"); }, std::chrono::seconds(40)))
      << agent.log();
  const auto waiting = status_of();
  EXPECT_TRUE(waiting["running"].is_object()) << waiting.dump(2);
  EXPECT_TRUE(waiting["drill"]["queued"].is_object()) << waiting.dump(2);
  EXPECT_TRUE(waiting["drill"]["running"].is_null()) << waiting.dump(2);
  EXPECT_EQ(waiting["drill"]["schedule"]["cron"], "* * * * *");
  EXPECT_TRUE(agent.log_contains("it waits behind the backups")) << agent.log();

  // It starts once the backup has ended, and drills the set that backup made.
  ASSERT_TRUE(eventually(
      [&] { return agent.log_contains("drill job") && agent.log_contains("started (schedule drill"); },
      std::chrono::seconds(90)))
      << agent.log();
  const auto archive_at_drill_start = cluster_->archive_files();
  const std::string log_at_start = agent.log();
  const auto backup_ended = log_at_start.find("incr backup succeeded");
  const auto drill_started = log_at_start.find("started (schedule drill");
  ASSERT_NE(backup_ended, std::string::npos) << log_at_start;
  EXPECT_LT(backup_ended, drill_started) << log_at_start;
  EXPECT_TRUE(status_of()["running"].is_null()) << "a backup still runs beside the drill";

  // Never beside a dump: the scratch directory is the drill's.
  const auto dump = run_agent({"dump", "--config", config, "--target", cluster_->target(), "--database",
                               "api", "--output", cluster_->get("OUTPUT_DIR") + "/beside-drill.sql"});
  EXPECT_EQ(dump.exit_code, 5) << dump.stderr_text;
  EXPECT_NE(dump.stderr_text.find("restore drill is using the scratch directory"), std::string::npos)
      << dump.stderr_text;
  EXPECT_FALSE(file_exists(cluster_->get("OUTPUT_DIR") + "/beside-drill.sql"));

  ASSERT_TRUE(eventually(
      [&] {
        return agent.log_contains("ended: passed") || agent.log_contains("ended: failed") ||
               agent.log_contains("ended: error");
      },
      std::chrono::seconds(180)))
      << agent.log();
  const auto status = status_of();
  const auto& last = status["drill"]["last"];
  ASSERT_TRUE(last.is_object()) << status.dump(2);
  EXPECT_EQ(last["result"], "passed") << last.dump(2);
  EXPECT_EQ(last["trigger"], "schedule");
  EXPECT_EQ(last["mode"], "latest");
  EXPECT_FALSE(last.contains("tables")) << "status carries the checks, not every table";
  // The newest set as pgBackRest chooses for the drill's target (its start): the newest that
  // stopped before the target's second, the backup that just ended unless it ended in that same
  // second.
  const auto target = parse_target_time(last["target"].get<std::string>());
  ASSERT_TRUE(target.ok());
  const auto target_second =
      std::chrono::floor<std::chrono::seconds>(target->instant).time_since_epoch().count();
  std::string expected_set;
  for (const auto& set : cluster_->backups())
    if (set.stop_epoch < target_second) expected_set = set.label;
  EXPECT_EQ(last["backup_set"]["label"], expected_set);
  EXPECT_GE(target_second, cluster_->backups().back().stop_epoch)
      << "the drill started before the backup ended";
  EXPECT_EQ(last["backup_set"]["repo"], 1);
  // The restore's progress, read from 2.45's per-file lines, reached the whole set.
  EXPECT_TRUE(agent.log_contains(restored_in_full(expected_set))) << agent.log();
  EXPECT_GE(last["replay_gap_seconds"].get<double>(), 0.0);
  for (const char* phase : {"restore", "pgbackrest-verify", "checks", "checksums"})
    EXPECT_TRUE(last["durations_seconds"].contains(phase)) << phase;
  // Debian's pgBackRest 2.45 cannot verify one set: skipped with the reason.
  const auto* verify = find_check(last, "pgbackrest-verify", "");
  ASSERT_NE(verify, nullptr) << last.dump(2);
  EXPECT_TRUE((*verify)["result"] == "skipped" || (*verify)["result"] == "passed") << verify->dump();

  // The agent recorded the result on the set, in the backup slot.
  ASSERT_TRUE(eventually([&] { return agent.log_contains("is recorded on backup set " + expected_set); },
                         std::chrono::seconds(30)))
      << agent.log();
  const auto annotations = set_annotations(expected_set);
  EXPECT_EQ(annotations.value("agent-drill-result", ""), "passed") << annotations.dump();
  // This drill's id, or a later one's (schedules.drill fires every minute here).
  EXPECT_GE(annotations.value("agent-drill-id", ""), last["drill"].get<std::string>()) << annotations.dump();

  // agent status in text shows it too.
  const auto text = run_agent({"status", "--config", config});
  EXPECT_NE(text.stdout_text.find("last drill"), std::string::npos) << text.stdout_text;
  EXPECT_NE(text.stdout_text.find("amcheck-indexes in api: passed"), std::string::npos) << text.stdout_text;
  EXPECT_NE(text.stdout_text.find("schedule: drill '* * * * *'"), std::string::npos) << text.stdout_text;

  // The live repository gained no history file and no WAL of another timeline from the drill.
  const auto archive_after = cluster_->archive_files();
  EXPECT_TRUE(foreign_archive_files(archive_after).empty())
      << "the drill added to the live archive: " << foreign_archive_files(archive_after).front();
  EXPECT_EQ(archive_after, archive_at_drill_start) << "the live archive changed during the drill";
  EXPECT_GE(archive_after.size(), archive_before.size());
  EXPECT_EQ(cluster_->query("postgres", "SELECT timeline_id FROM pg_control_checkpoint()"), "1");
}

// `agent drill` while `agent run` runs goes through the control socket: the running agent
// queues and runs it (its status shows it, trigger manual), the client prints its steps and
// exits with the drill's code, 0 or 4, and the agent records the result on the set.
TEST_F(DrillIntegration, AgentDrillGoesThroughTheRunningAgent) {
  const std::string dir = cluster_->dir() + "/through-agent";
  mkdir(dir.c_str(), 0700);
  const std::string config = dir + "/agent.yaml";
  // pgbackrest, with 3 s before each annotate: the agent's status shows the annotation running.
  const std::string slow_annotate = dir + "/slow-annotate-pgbackrest";
  write_file(
      slow_annotate,
      "#!/bin/sh\nfor last; do :; done\nif [ \"$last\" = annotate ]; then sleep 3; fi\nexec pgbackrest "
      "\"$@\"\n");
  chmod(slow_annotate.c_str(), 0755);
  write_file(config, "stanza: db\nstate_dir: " + cluster_->dir() +
                         "/state\npgbackrest:\n  config: " + cluster_->get("PGBACKREST_CONFIG") +
                         "\n  bin: " + slow_annotate + "\npostgres:\n  bindir: " + cluster_->get("BINDIR") +
                         "\n  data: " + cluster_->get("DATA") + "\n  host: " + cluster_->get("SOCKET_DIR") +
                         "\n  port: " + cluster_->get("PORT") +
                         "\n  user: postgres\nrestore:\n  scratch: " + cluster_->get("SCRATCH") +
                         "\n  port: " + cluster_->get("SCRATCH_PORT") + "\ncontrol:\n  socket: " + dir +
                         "/agent.sock\nhttp:\n  listen: 127.0.0.1:" + std::to_string(free_port()) +
                         "\nmanual:\n  annotations_file: \"\"\n");
  const auto archive_before = cluster_->archive_files();
  RunningAgent agent(config);
  ASSERT_TRUE(eventually([&] { return agent.log_contains("running for stanza"); }, std::chrono::seconds(20)))
      << agent.log();

  const auto passed = run_agent({"drill", "--config", config, "--target", cluster_->target()});
  EXPECT_EQ(passed.exit_code, 0) << passed.stderr_text << agent.log();
  EXPECT_NE(passed.stderr_text.find("the running agent queued the drill (job"), std::string::npos)
      << passed.stderr_text;
  EXPECT_NE(passed.stderr_text.find("checks: done after"), std::string::npos) << passed.stderr_text;
  EXPECT_NE(passed.stderr_text.find(" passed: "), std::string::npos) << passed.stderr_text;
  EXPECT_EQ(passed.stderr_text.find("running the drill here"), std::string::npos) << passed.stderr_text;
  EXPECT_TRUE(agent.log_contains("restore drill queued (agent drill)")) << agent.log();
  const auto manifest = last_manifest();
  EXPECT_EQ(manifest["result"], "passed");
  EXPECT_EQ(manifest["trigger"], "manual");
  EXPECT_EQ(manifest["mode"], "target");
  const std::string label = manifest["backup_set"]["label"];
  // While annotate runs (in the backup slot), `agent status` says so.
  nlohmann::json annotating;
  ASSERT_TRUE(eventually(
      [&] {
        const auto now = run_agent({"status", "--json", "--config", config});
        const auto parsed = nlohmann::json::parse(now.stdout_text, nullptr, false);
        if (!parsed.is_discarded() && parsed["drill"]["annotating"].is_object())
          annotating = parsed["drill"]["annotating"];
        return annotating.is_object() || agent.log_contains("is recorded on backup set " + label);
      },
      std::chrono::seconds(30)));
  ASSERT_TRUE(annotating.is_object()) << "agent status never showed the annotation running\n" << agent.log();
  EXPECT_EQ(annotating["backup_set"], label) << annotating.dump();
  EXPECT_EQ(annotating["drill"], manifest["drill"]) << annotating.dump();
  ASSERT_TRUE(eventually([&] { return agent.log_contains("is recorded on backup set " + label); },
                         std::chrono::seconds(30)))
      << agent.log();
  EXPECT_EQ(set_annotations(label).value("agent-drill-id", ""), manifest["drill"]);

  const auto status = run_agent({"status", "--json", "--config", config});
  ASSERT_EQ(status.exit_code, 0) << status.stderr_text;
  const auto last = nlohmann::json::parse(status.stdout_text)["drill"]["last"];
  EXPECT_EQ(last["drill"], manifest["drill"]) << last.dump(2);

  // A finding is exit 4 through the agent too, naming it.
  const auto failed = run_agent({"drill", "--config", config, "--latest", "--database", "api", "--assert",
                                 "api: SELECT count(*) < 0 FROM events"});
  EXPECT_EQ(failed.exit_code, kExitVerification) << failed.stderr_text << agent.log();
  EXPECT_NE(failed.stderr_text.find("SELECT count(*) < 0 FROM events"), std::string::npos)
      << failed.stderr_text;
  const auto failed_manifest = last_manifest();
  EXPECT_EQ(failed_manifest["result"], "failed");
  // An ad-hoc question (--assert, --database) is not the set's drill: its answer is not
  // annotated on the set, and the agent says so.
  const std::string failed_set = failed_manifest["backup_set"]["label"];
  ASSERT_TRUE(eventually([&] { return agent.log_contains("is not recorded on backup set " + failed_set); },
                         std::chrono::seconds(30)))
      << agent.log();
  EXPECT_NE(set_annotations(failed_set).value("agent-drill-result", ""), "failed");
  EXPECT_NE(set_annotations(failed_set).value("agent-drill-id", ""), failed_manifest["drill"]);

  EXPECT_EQ(cluster_->archive_files(), archive_before) << "the live archive changed";
  EXPECT_TRUE(processes_matching(cluster_->get("SCRATCH") + "/data").empty())
      << "the copy's server still runs";
}

// With pgBackRest 2.56.0 (PGO's, built by tests/support/build-pgbackrest.sh) the drill asks
// `pgbackrest verify --set` about the set it restored: every file of the set and the archived
// WAL checked, none invalid. (Debian's 2.45, above, skips it with the reason.)
TEST_F(DrillIntegration, WithPgBackRest256TheDrilledSetIsVerifiedInTheRepository) {
  const std::string pgbackrest = built_pgbackrest_256();
  ASSERT_FALSE(pgbackrest.empty()) << "build-pgbackrest.sh failed";
  const std::string dir = cluster_->dir() + "/pgbackrest-256";
  mkdir(dir.c_str(), 0700);
  std::string text = read_file(config_path());
  const auto section = text.find("pgbackrest:\n");
  ASSERT_NE(section, std::string::npos) << text;
  text.insert(section + 12, "  bin: " + pgbackrest + "\n");
  const std::string config = dir + "/agent.yaml";
  write_file(config, text);

  const auto archive_before = cluster_->archive_files();
  const auto run = run_agent({"drill", "--config", config, "--latest", "--database", "api"});
  ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
  const auto manifest = last_manifest();
  EXPECT_EQ(manifest["result"], "passed");
  const auto* verify = find_check(manifest, "pgbackrest-verify", "");
  ASSERT_NE(verify, nullptr) << manifest.dump(2);
  EXPECT_EQ((*verify)["result"], "passed") << verify->dump();
  EXPECT_GT((*verify)["checked"].get<std::uint64_t>(), 100u) << verify->dump();
  EXPECT_EQ((*verify)["failed"], 0);
  EXPECT_TRUE(manifest["durations_seconds"].contains("pgbackrest-verify"));
  EXPECT_NE(run.stderr_text.find("--set=" + manifest["backup_set"]["label"].get<std::string>()),
            std::string::npos)
      << run.stderr_text;
  // The restore's progress, read from 2.56's per-file lines, reached the whole set.
  EXPECT_NE(run.stderr_text.find(restored_in_full(manifest["backup_set"]["label"].get<std::string>())),
            std::string::npos)
      << run.stderr_text;
  EXPECT_EQ(cluster_->archive_files(), archive_before) << "the live archive changed";
}

// An index only amcheck sees as wrong: drill_twin_a's file holds drill_twin_b's pages (a
// valid B-tree of the same table, same shape, keys a + 1000000), so the index is well formed
// and its page checksums are right (they cover the block number, not the relation), but no
// heap tuple finds its key there. The live server is stopped for the copy; the backup after it
// carries the damage to the drill. Last in the suite: it leaves the live index damaged until
// the table is dropped at the end.
TEST_F(DrillIntegration, AnIndexOnlyAmcheckSeesAsWrongDrillsRedNamingIt) {
  cluster_->sql("api",
                "CREATE TABLE drill_twin (a int NOT NULL, b int NOT NULL); "
                "INSERT INTO drill_twin SELECT g, g + 1000000 FROM generate_series(1, 5000) g; "
                "CREATE INDEX drill_twin_a ON drill_twin (a); CREATE INDEX drill_twin_b ON drill_twin (b); "
                "CHECKPOINT");
  const std::string data = cluster_->get("DATA");
  const auto path_of = [](const std::string& index) {
    return cluster_->query("api", "SELECT pg_relation_filepath('" + index + "')");
  };
  const std::string a_file = data + "/" + path_of("drill_twin_a");
  const std::string b_file = data + "/" + path_of("drill_twin_b");
  ASSERT_EQ(read_file(a_file).size(), read_file(b_file).size()) << "the twins are not the same shape";
  const std::string pg_ctl = cluster_->get("BINDIR") + "/pg_ctl";
  ASSERT_EQ(run_or_fail({pg_ctl, "-D", data, "-m", "fast", "-w", "stop"}).exit_code, 0);
  write_file(a_file, read_file(b_file));
  ASSERT_EQ(run_or_fail({pg_ctl, "-D", data, "-l", cluster_->get("POSTGRES_LOG"), "-w", "start"}).exit_code,
            0);
  ASSERT_EQ(run_or_fail({"pgbackrest", "--config=" + cluster_->get("PGBACKREST_CONFIG"),
                         "--stanza=" + cluster_->get("STANZA"), "--type=full", "backup"})
                .exit_code,
            0);

  const auto archive_before = cluster_->archive_files();
  // That set, then the archived WAL to its end (the set before it would rebuild the index from
  // the WAL, correct).
  const auto damaged = cluster_->backups().back();
  const std::string damaged_set = damaged.label;
  // A drill's target is its start, which must lie past the set's stop second (pgBackRest's
  // stop time has whole seconds).
  ASSERT_TRUE(eventually(
      [&] {
        return std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count() > damaged.stop_epoch + 1;
      },
      std::chrono::seconds(10)));
  const auto run = run_agent({"drill", "--config", config_path(), "--set", damaged_set, "--database", "api"});
  EXPECT_EQ(run.exit_code, kExitVerification) << run.stderr_text;
  const auto manifest = last_manifest();
  EXPECT_EQ(manifest["result"], "failed");
  EXPECT_EQ(manifest["backup_set"]["label"], damaged_set);
  const auto* indexes = find_check(manifest, "amcheck-indexes", "api");
  ASSERT_NE(indexes, nullptr) << manifest.dump(2);
  EXPECT_EQ((*indexes)["result"], "failed");
  EXPECT_EQ((*indexes)["failed"], 1);
  EXPECT_EQ((*indexes)["first_failure"], "api.public.drill_twin_a") << indexes->dump();
  EXPECT_NE((*indexes)["reason"].get<std::string>().find("lacks matching index tuple"), std::string::npos)
      << indexes->dump();
  // Only amcheck sees it: the heap, every row, and the page checksums are fine.
  for (const char* fine : {"amcheck-heap", "tables"}) {
    const auto* check = find_check(manifest, fine, "api");
    ASSERT_NE(check, nullptr) << fine;
    EXPECT_EQ((*check)["result"], "passed") << check->dump();
  }
  const auto* checksums = find_check(manifest, "checksums", "");
  ASSERT_NE(checksums, nullptr);
  EXPECT_EQ((*checksums)["result"], "passed") << checksums->dump();
  const std::string first = manifest["first_failure"];
  EXPECT_NE(first.find("amcheck-indexes in api: api.public.drill_twin_a"), std::string::npos) << first;
  EXPECT_NE(run.stderr_text.find("drill_twin_a"), std::string::npos) << run.stderr_text;
  EXPECT_EQ(cluster_->archive_files(), archive_before) << "the live archive changed";
  cluster_->sql("api", "DROP TABLE drill_twin");
}

// Bytes flipped inside a table's data file reach a backup (pgBackRest copies the page and only
// warns about its checksum): the drill reads the table, fails naming it, and pg_checksums on the
// stopped copy names the file.
TEST_F(DrillIntegration, BytesFlippedInATablesDataFileDrillRedNamingTheTable) {
  cluster_->sql("api",
                "CREATE TABLE drill_heap (a int NOT NULL, b text NOT NULL); "
                "INSERT INTO drill_heap SELECT g, repeat('x', 40) FROM generate_series(1, 2000) g; "
                "CHECKPOINT");
  const std::string data = cluster_->get("DATA");
  const std::string relative = cluster_->query("api", "SELECT pg_relation_filepath('drill_heap')");
  const std::string heap_file = data + "/" + relative;
  const std::string pg_ctl = cluster_->get("BINDIR") + "/pg_ctl";
  ASSERT_EQ(run_or_fail({pg_ctl, "-D", data, "-m", "fast", "-w", "stop"}).exit_code, 0);
  std::string bytes = read_file(heap_file);
  ASSERT_GT(bytes.size(), 8192u);
  // Inside the tuples at the end of the first page, not its header: a real torn or rotten page.
  for (std::size_t at = 6000; at < 6016; ++at) bytes[at] = static_cast<char>(~bytes[at]);
  write_file(heap_file, bytes);
  ASSERT_EQ(run_or_fail({pg_ctl, "-D", data, "-l", cluster_->get("POSTGRES_LOG"), "-w", "start"}).exit_code,
            0);
  ASSERT_EQ(run_or_fail({"pgbackrest", "--config=" + cluster_->get("PGBACKREST_CONFIG"),
                         "--stanza=" + cluster_->get("STANZA"), "--type=full", "backup"})
                .exit_code,
            0);
  const auto archive_before = cluster_->archive_files();
  const auto damaged = cluster_->backups().back();
  ASSERT_TRUE(eventually(
      [&] {
        return std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count() > damaged.stop_epoch + 1;
      },
      std::chrono::seconds(10)));
  const auto run = run_agent({"drill", "--config", config_path(), "--set", damaged.label});
  EXPECT_EQ(run.exit_code, kExitVerification) << run.stderr_text;
  const auto manifest = last_manifest();
  EXPECT_EQ(manifest["result"], "failed");
  EXPECT_EQ(manifest["backup_set"]["label"], damaged.label);
  const auto* tables = find_check(manifest, "tables", "api");
  ASSERT_NE(tables, nullptr) << manifest.dump(2);
  EXPECT_EQ((*tables)["result"], "failed") << tables->dump();
  EXPECT_EQ((*tables)["failed"], 1) << tables->dump();
  EXPECT_EQ((*tables)["first_failure"], "api.public.drill_heap") << tables->dump();
  EXPECT_NE((*tables)["reason"].get<std::string>().find("invalid page"), std::string::npos) << tables->dump();
  const auto* checksums = find_check(manifest, "checksums", "");
  ASSERT_NE(checksums, nullptr);
  EXPECT_EQ((*checksums)["result"], "failed") << checksums->dump();
  EXPECT_NE((*checksums)["first_failure"].dump().find(relative.substr(relative.rfind('/') + 1)),
            std::string::npos)
      << checksums->dump();
  const std::string first = manifest["first_failure"];
  EXPECT_NE(first.find("api.public.drill_heap"), std::string::npos) << first;
  EXPECT_EQ(cluster_->archive_files(), archive_before) << "the live archive changed";
  // `pgbackrest info` says the damaged set failed its drill.
  EXPECT_EQ(set_annotations(damaged.label).value("agent-drill-result", ""), "failed");
  // DROP unlinks the file without reading it; a new full backup leaves the damage behind.
  cluster_->sql("api", "DROP TABLE drill_heap");
  ASSERT_EQ(run_or_fail({"pgbackrest", "--config=" + cluster_->get("PGBACKREST_CONFIG"),
                         "--stanza=" + cluster_->get("STANZA"), "--type=full", "backup"})
                .exit_code,
            0);
}

}  // namespace
}  // namespace agent::testing
