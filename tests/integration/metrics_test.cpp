// /metrics, /healthz and /readyz of a real `agent run` against a real repository, linted by
// promtool and scraped by a real Prometheus server, which evaluates every panel of the Grafana
// dashboard.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cctype>
#include <csignal>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "core/version.hpp"
#include "harness.hpp"
#include "pipelines/disk_watch.hpp"
#include "time/target_time.hpp"

namespace agent::testing {
namespace {

// The value of one series in a scrape, or nothing.
std::optional<double> series(const std::string& scrape, const std::string& name_and_labels) {
  std::istringstream lines(scrape);
  std::string line;
  while (std::getline(lines, line))
    if (line.rfind(name_and_labels + " ", 0) == 0) return std::stod(line.substr(name_and_labels.size() + 1));
  return std::nullopt;
}

class MetricsIntegration : public ClusterSuite<MetricsIntegration> {
 public:
  static constexpr int kBulkMb = 0;

 protected:
  static void SetUpTestSuite() {
    ClusterSuite::SetUpTestSuite();
    if (cluster_->dir().empty()) return;
    http_port_ = free_port();
    config_ = cluster_->dir() + "/metrics-agent.yaml";
    write_file(config_,
               "stanza: db\n"
               "state_dir: " +
                   cluster_->dir() +
                   "/metrics-state\n"
                   "pgbackrest:\n  config: " +
                   cluster_->get("PGBACKREST_CONFIG") +
                   "\n"
                   "postgres:\n  data: " +
                   cluster_->get("DATA") + "\n  host: " + cluster_->get("SOCKET_DIR") +
                   "\n  port: " + cluster_->get("PORT") +
                   "\n"
                   "control:\n  socket: " +
                   cluster_->dir() +
                   "/metrics-agent.sock\n"
                   "manual:\n  annotations_file: \"\"\n"
                   "http:\n  listen: 127.0.0.1:" +
                   std::to_string(http_port_) +
                   "\n"
                   "metrics:\n  refresh_seconds: 10\n  crunchy_compat: \"true\"\n");
  }

  static std::string scrape() {
    const auto reply = http_get(http_port_, "/metrics");
    EXPECT_EQ(reply.status, 200);
    return reply.body;
  }

  static std::string stop_of_newest(const std::string& type) {
    std::int64_t newest = 0;
    for (const auto& b : cluster_->backups())
      if (b.type == type) newest = std::max(newest, b.stop_epoch);
    return std::to_string(newest);
  }

  static std::string config_;
  static int http_port_;
};

std::string MetricsIntegration::config_;
int MetricsIntegration::http_port_ = 0;

TEST_F(MetricsIntegration, ScrapeIsLintCleanAndEqualsTheRepositoryAcrossARestart) {
  std::string first;
  {
    RunningAgent agent(config_);
    ASSERT_TRUE(eventually(
        [&] { return series(scrape(), R"(agent_repository_info_success{repo="1",stanza="db"})") == 1.0; },
        std::chrono::seconds(20)))
        << agent.log();
    first = scrape();
    // promtool lints the live scrape.
    expect_promtool_accepts(first, cluster_->dir() + "/scrape.txt");
  }
  for (const char* type : {"full", "incr"}) {
    const std::string name =
        std::string(R"(agent_backup_last_completion_timestamp_seconds{repo="1",stanza="db",type=")") + type +
        "\"}";
    ASSERT_TRUE(series(first, name).has_value()) << first;
    EXPECT_EQ(std::to_string(static_cast<std::int64_t>(*series(first, name))), stop_of_newest(type)) << type;
  }
  EXPECT_TRUE(series(first, R"(agent_backup_age_seconds{repo="1",stanza="db",type="incr"})").has_value());
  EXPECT_TRUE(
      series(first, R"(ccp_backrest_last_full_backup_time_since_completion_seconds{repo="1",stanza="db"})")
          .has_value());

  // After a restart, before any new backup, the values equal what the repository says.
  RunningAgent restarted(config_);
  ASSERT_TRUE(eventually(
      [&] { return series(scrape(), R"(agent_repository_info_success{repo="1",stanza="db"})") == 1.0; },
      std::chrono::seconds(20)));
  const auto again = scrape();
  for (const char* type : {"full", "incr"}) {
    const std::string name =
        std::string(R"(agent_backup_last_completion_timestamp_seconds{repo="1",stanza="db",type=")") + type +
        "\"}";
    EXPECT_EQ(series(again, name), series(first, name)) << type;
  }
}

// "What can I restore to?": `agent window` answers per repository from the running agent's
// last read, and, with no agent running, by reading `pgbackrest info` itself; both start the
// window at the oldest backup's stop and end it no earlier than the newest backup's.
TEST_F(MetricsIntegration, WindowAnswersWithAndWithoutARunningAgent) {
  std::int64_t oldest = 0;
  std::int64_t newest = 0;
  for (const auto& b : cluster_->backups()) {
    oldest = oldest == 0 ? b.stop_epoch : std::min(oldest, b.stop_epoch);
    newest = std::max(newest, b.stop_epoch);
  }
  ASSERT_GT(oldest, 0);
  const std::string start = format_iso_utc(SysMicros{std::chrono::seconds{oldest}});
  const std::string newest_stop = format_iso_utc(SysMicros{std::chrono::seconds{newest}});
  const auto check = [&](const std::string& source) {
    const auto run = run_agent({"window", "--json", "--config", config_});
    ASSERT_EQ(run.exit_code, 0) << run.stderr_text;
    const auto answer = nlohmann::json::parse(run.stdout_text);
    EXPECT_EQ(answer["source"], source) << answer;
    ASSERT_EQ(answer["repositories"].size(), 1u) << answer;
    const auto& repo = answer["repositories"][0];
    EXPECT_EQ(repo["repo"], 1);
    ASSERT_TRUE(repo["window"].is_object()) << answer;
    EXPECT_EQ(repo["window"]["start"], start) << answer;
    EXPECT_GE(repo["window"]["end"].get<std::string>(), newest_stop) << answer;
    const auto human = run_agent({"window", "--config", config_});
    EXPECT_EQ(human.exit_code, 0) << human.stderr_text;
    EXPECT_NE(human.stdout_text.find("repo1: restore to any time from " + start), std::string::npos)
        << human.stdout_text;
  };
  check("pgbackrest info");
  RunningAgent agent(config_);
  ASSERT_TRUE(eventually(
      [&] { return series(scrape(), R"(agent_repository_info_success{repo="1",stanza="db"})") == 1.0; },
      std::chrono::seconds(20)))
      << agent.log();
  check("agent");
  const auto scraped = scrape();
  EXPECT_EQ(series(scraped, R"(agent_recovery_window_start_timestamp_seconds{repo="1",stanza="db"})"),
            static_cast<double>(oldest));
}

// The repository's health lives in metrics and alerts; readiness never follows it, because a
// NotReady sidecar takes the database pod out of the operator's Services.
TEST_F(MetricsIntegration, UnreadableRepositoryIsReportedAndFreshnessStays) {
  RunningAgent agent(config_);
  ASSERT_TRUE(eventually(
      [&] { return series(scrape(), R"(agent_repository_info_success{repo="1",stanza="db"})") == 1.0; },
      std::chrono::seconds(20)))
      << agent.log();
  EXPECT_EQ(http_get(http_port_, "/healthz").status, 200);
  const std::string repo = cluster_->dir() + "/repo";
  ASSERT_EQ(chmod(repo.c_str(), 0), 0);
  const bool reported = eventually(
      [&] { return series(scrape(), R"(agent_repository_info_success{repo="1",stanza="db"})") == 0.0; },
      std::chrono::seconds(30));
  const auto broken = scrape();
  const auto ready = http_get(http_port_, "/readyz");
  const auto live = http_get(http_port_, "/healthz");
  chmod(repo.c_str(), 0750);
  ASSERT_TRUE(reported) << agent.log();
  EXPECT_TRUE(series(broken, R"(agent_backup_age_seconds{repo="1",stanza="db",type="full"})").has_value())
      << broken;
  EXPECT_TRUE(
      series(broken, R"(agent_backup_last_completion_timestamp_seconds{repo="1",stanza="db",type="full"})"));
  EXPECT_GE(series(broken, R"(agent_repository_info_errors_total{repo="1",stanza="db"})").value_or(0), 1.0);
  EXPECT_EQ(ready.status, 200) << "a broken repository must not take the database pod out of service";
  EXPECT_NE(ready.body.find("repository: unreadable"), std::string::npos) << ready.body;
  EXPECT_EQ(live.status, 200) << "a broken repository is no reason to restart the agent";
}

TEST_F(MetricsIntegration, SurvivesSlowAndOversizedClients) {
  RunningAgent agent(config_);
  // A client that sends half a request and then nothing.
  const int slow = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(http_port_));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(slow, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const std::string partial = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(write(slow, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
  // Others are served meanwhile.
  EXPECT_EQ(http_get(http_port_, "/healthz").status, 200);
  // An oversized request is refused, and the server goes on.
  const int big = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(big, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const std::string oversized =
      "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: " + std::string(64 * 1024, 'a') + "\r\n\r\n";
  [[maybe_unused]] auto written = write(big, oversized.data(), oversized.size());
  char reply[256] = {};
  const auto got = read(big, reply, sizeof reply - 1);
  close(big);
  EXPECT_GT(got, 0);
  EXPECT_NE(std::string(reply).find(" 431 "), std::string::npos) << reply;
  EXPECT_EQ(http_get(http_port_, "/healthz").status, 200);
  // The slow client is cut off after the read deadline.
  char buffer[16];
  const auto begin = std::chrono::steady_clock::now();
  const auto closed = read(slow, buffer, sizeof buffer);
  close(slow);
  EXPECT_EQ(closed, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(15));
}

// A Prometheus server on loopback, stopped when it goes out of scope (also when an assertion
// ends the test early).
// One reading of a running job's progress: `agent status` at `at`, and /metrics right after.
struct ProgressSeen {
  double at = 0;  // Unix seconds
  std::uint64_t done = 0;
  std::uint64_t total = 0;
  std::optional<double> scraped_done;
  std::optional<double> scraped_total;
};

class LocalPrometheus {
 public:
  // `config`: the prometheus.yml text; `dir`: where it and the TSDB go.
  LocalPrometheus(const std::string& dir, const std::string& config) : port_(free_port()) {
    mkdir(dir.c_str(), 0700);
    write_file(dir + "/prometheus.yml", config);
    ProcessSpec spec;
    spec.argv = {"prometheus", "--config.file=" + dir + "/prometheus.yml",
                 "--storage.tsdb.path=" + dir + "/data",
                 "--web.listen-address=127.0.0.1:" + std::to_string(port_)};
    spec.tag = "prometheus";
    spec.log_level = spdlog::level::debug;
    auto started = runner_->start(spec);
    if (started)
      process_ = std::move(started.value());
    else
      error_ = started.error().describe();
  }
  ~LocalPrometheus() {
    if (process_) process_->stop(SIGTERM, std::chrono::seconds(10));
  }
  LocalPrometheus(const LocalPrometheus&) = delete;
  LocalPrometheus& operator=(const LocalPrometheus&) = delete;
  bool running() const { return process_ != nullptr; }
  const std::string& error() const { return error_; }
  // /api/v1/query of `expr` now, or at `at` (Unix seconds): the parsed answer (a JSON object),
  // or null when there was none.
  nlohmann::json query(const std::string& expr, std::optional<double> at = std::nullopt) const {
    const auto reply = http_get(port_, "/api/v1/query?query=" + url_encode(expr) +
                                           (at ? fmt::format("&time={:.3f}", *at) : std::string()));
    if (reply.status == 0) return nullptr;
    auto answer = nlohmann::json::parse(reply.body, nullptr, false);
    return answer.is_discarded() ? nlohmann::json(nullptr) : answer;
  }

 private:
  static std::string url_encode(const std::string& text) {
    std::string out;
    for (const unsigned char c : text) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
        out += static_cast<char>(c);
      else
        out += fmt::format("%{:02X}", c);
    }
    return out;
  }

  int port_;
  std::unique_ptr<ProcessRunner> runner_ = make_posix_process_runner();
  std::unique_ptr<RunningProcess> process_;
  std::string error_;
};

// Restores a directory's mode when it goes out of scope.
struct ModeRestorer {
  std::string path;
  mode_t mode;
  ~ModeRestorer() { chmod(path.c_str(), mode); }
};

// Every expr of every panel of config/grafana/agent-dashboard.json, with the panel's title.
std::vector<std::pair<std::string, std::string>> dashboard_exprs(const nlohmann::json& panels) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& panel : panels) {
    for (const auto& target : panel.value("targets", nlohmann::json::array()))
      if (target.contains("expr"))
        out.emplace_back(panel.value("title", ""), target["expr"].get<std::string>());
    const auto nested = dashboard_exprs(panel.value("panels", nlohmann::json::array()));
    out.insert(out.end(), nested.begin(), nested.end());
  }
  return out;
}

// Grafana's variables as Grafana substitutes them for one selected value: the cluster, pod
// and role the scrape config's static labels give (as the PodMonitor's relabelling does), and
// $__rate_interval for a 1 s scrape interval with room for several samples.
std::string substitute_variables(std::string expr) {
  const std::vector<std::pair<std::string, std::string>> values = {
      {"$__rate_interval", "30s"}, {"$__interval", "5s"}, {"$__range", "5m"},
      {"$cluster", "ns:hippo"},    {"$pod", "hippo-0"},   {"$role", "master"}};
  for (const auto& [name, value] : values)
    for (auto at = expr.find(name); at != std::string::npos; at = expr.find(name, at + value.size()))
      expr.replace(at, name.size(), value);
  return expr;
}

TEST_F(MetricsIntegration, PrometheusScrapesTheAgentAndAnswersAFreshnessQuery) {
  RunningAgent agent(config_);
  LocalPrometheus prometheus(cluster_->dir() + "/prometheus",
                             "global:\n  scrape_interval: 1s\n"
                             "scrape_configs:\n  - job_name: agent\n    static_configs:\n"
                             "      - targets: ['127.0.0.1:" +
                                 std::to_string(http_port_) + "']\n");
  ASSERT_TRUE(prometheus.running()) << prometheus.error();
  nlohmann::json answer;
  ASSERT_TRUE(eventually(
      [&] {
        answer = prometheus.query("agent_backup_age_seconds{type=\"full\"}");
        return answer.is_object() && answer.value("status", "") == "success" &&
               !answer["data"]["result"].empty();
      },
      std::chrono::seconds(60)))
      << answer.dump();
  const auto& sample = answer["data"]["result"][0];
  EXPECT_EQ(sample["metric"]["job"], "agent");
  EXPECT_EQ(sample["metric"]["stanza"], "db");
  EXPECT_GT(std::stod(sample["value"][1].get<std::string>()), 0.0);
}

// The dashboard against a real Prometheus scraping a running agent: the agent has run a backup
// that succeeded and one that failed, a dump that succeeded and one that failed, a drill that
// failed and one that passed, has schedules
// (so expected intervals) and a window minimum, and Prometheus scrapes it with the labels the
// PodMonitor gives. Then every panel's expr, its variables substituted, must evaluate and
// return series, and each variable's query must find its label.
TEST_F(MetricsIntegration, EveryDashboardPanelEvaluatesAndReturnsSeriesInPrometheus) {
  const std::string dir = cluster_->dir() + "/dashboard";
  mkdir(dir.c_str(), 0700);
  const int agent_port = free_port();
  const std::string config = dir + "/agent.yaml";
  // pgBackRest itself, except that a restore's per-file lines are paced (5 ms each): the
  // fixture's 22 MB restore then lasts seconds instead of a tenth of one, so `agent status`
  // and Prometheus see its progress move. The lines are pgBackRest's own.
  const std::string paced = dir + "/pgbackrest-paced";
  write_file(paced,
             "#!/bin/bash\n"
             "[[ \"${*: -1}\" == restore ]] || exec pgbackrest \"$@\"\n"
             "pgbackrest \"$@\" | while IFS= read -r line; do\n"
             "  printf '%s\\n' \"$line\"\n"
             "  [[ \"$line\" == *'DETAIL: restore '* ]] && sleep 0.005\n"
             "done\n"
             "exit \"${PIPESTATUS[0]}\"\n");
  ASSERT_EQ(chmod(paced.c_str(), 0755), 0);
  // Weekly schedules at a time the test does not reach (their intervals are what matters).
  write_file(config, "stanza: db\nstate_dir: " + dir +
                         "/state\npgbackrest:\n  config: " + cluster_->get("PGBACKREST_CONFIG") +
                         "\n  bin: " + paced + "\npostgres:\n  bindir: " + cluster_->get("BINDIR") +
                         "\n  data: " + cluster_->get("DATA") + "\n  host: " + cluster_->get("SOCKET_DIR") +
                         "\n  port: " + cluster_->get("PORT") + "\n  user: postgres\ncontrol:\n  socket: " +
                         dir + "/agent.sock\nmanual:\n  annotations_file: \"\"\nhttp:\n  listen: 127.0.0.1:" +
                         std::to_string(agent_port) +
                         "\nmetrics:\n  refresh_seconds: 10\n  crunchy_compat: \"true\"\n"
                         "schedules:\n  full: \"7 3 * * 0\"\n  incr: \"37 3 * * 0\"\n"
                         "alerts:\n  min_window_hours: 1\n");
  auto agent = std::make_unique<RunningAgent>(config);
  LocalPrometheus prometheus(dir + "/prometheus",
                             "global:\n  scrape_interval: 1s\n"
                             "scrape_configs:\n  - job_name: agent\n    static_configs:\n"
                             "      - targets: ['127.0.0.1:" +
                                 std::to_string(agent_port) +
                                 "']\n        labels:\n          pg_cluster: 'ns:hippo'\n"
                                 "          pod: hippo-0\n          role: master\n");
  ASSERT_TRUE(prometheus.running()) << prometheus.error();

  // A backup that succeeds, and one that fails (the repository unreadable for a moment).
  const auto succeeded = run_agent({"backup", "--type", "incr", "--wait", "--config", config});
  ASSERT_EQ(succeeded.exit_code, 0) << succeeded.stderr_text << agent->log();
  // It carries its audit trail: `pgbackrest info` shows who asked for it.
  {
    auto runner = make_posix_process_runner();
    ProcessSpec spec;
    spec.argv = {"pgbackrest", "--config=" + cluster_->get("PGBACKREST_CONFIG"), "--stanza=db",
                 "--output=json", "info"};
    spec.stdout_mode = StdoutMode::capture;
    const auto info = runner->run(spec, CancelToken::never());
    ASSERT_TRUE(info && info->succeeded());
    const auto stanzas = nlohmann::json::parse(info->stdout_text);
    const auto& newest = stanzas.at(0).at("backup").back();
    EXPECT_EQ(newest.value("type", ""), "incr") << newest.dump();
    EXPECT_EQ(newest.value("annotation", nlohmann::json::object()),
              (nlohmann::json{{"agent-trigger", "manual"},
                              {"agent-request", "agent backup --type incr"},
                              {"agent-version", kAgentVersion}}))
        << newest.dump();
  }
  {
    const std::string repo = cluster_->dir() + "/repo";
    ModeRestorer restore{repo, 0750};
    ASSERT_EQ(chmod(repo.c_str(), 0), 0);
    const auto failed = run_agent({"backup", "--type", "incr", "--wait", "--config", config});
    EXPECT_NE(failed.exit_code, 0) << failed.stderr_text;
  }
  // A dump that succeeds, and one that fails after it started (no such database in the copy).
  const auto dump = [&](const std::string& database, const std::string& output) {
    return run_agent({"dump", "--config", config, "--target", cluster_->target(), "--database", database,
                      "--output", cluster_->get("OUTPUT_DIR") + "/" + output, "--scratch",
                      cluster_->get("SCRATCH"), "--port", cluster_->get("SCRATCH_PORT")});
  };
  // The one that succeeds runs while `agent status` and /metrics are read: its restore's
  // progress (from pgBackRest's per-file lines) shows in both while the restore runs, and is
  // gone when it ended.
  std::vector<ProgressSeen> seen;
  std::mutex dump_mutex;
  std::string dump_stderr;
  auto running_dump =
      start_agent({"dump", "--config", config, "--target", cluster_->target(), "--database", "api",
                   "--output", cluster_->get("OUTPUT_DIR") + "/dashboard.sql", "--scratch",
                   cluster_->get("SCRATCH"), "--port", cluster_->get("SCRATCH_PORT")},
                  [&](std::string_view line) {
                    std::lock_guard lock(dump_mutex);
                    dump_stderr.append(line).push_back('\n');
                  });
  ASSERT_TRUE(running_dump.ok()) << running_dump.error().describe();
  std::optional<ProcessResult> dump_ended;
  while (!(dump_ended = running_dump.value()->wait(CancelToken::never(), std::chrono::milliseconds(50)))) {
    const auto status = nlohmann::json::parse(run_agent({"status", "--json", "--config", config}).stdout_text,
                                              nullptr, false);
    if (status.is_discarded() || !status["dump"]["running"].is_object()) continue;
    const auto& progress = status["dump"]["running"]["restore_progress"];
    if (!progress.is_object()) continue;
    const auto now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const auto text = http_get(agent_port, "/metrics").body;
    seen.push_back({now, progress.value("bytes_done", std::uint64_t{0}),
                    progress.value("bytes_total", std::uint64_t{0}),
                    series(text, R"(agent_restore_progress_bytes{kind="dump",stanza="db"})"),
                    series(text, R"(agent_restore_progress_total_bytes{kind="dump",stanza="db"})")});
  }
  ASSERT_EQ(dump_ended->exit_code, 0) << dump_stderr << agent->log();
  std::smatch chosen;
  ASSERT_TRUE(std::regex_search(dump_stderr, chosen, std::regex(R"(from backup set ([0-9FDI_-]+) in repo)")))
      << dump_stderr;
  std::uint64_t set_bytes = 0;
  for (const auto& b : cluster_->backups())
    if (b.label == chosen[1].str()) set_bytes = b.database_bytes;
  ASSERT_GT(set_bytes, 0u) << chosen[1];
  ASSERT_FALSE(seen.empty()) << "the restore's progress never showed in agent status\n" << agent->log();
  std::size_t scraped = 0;
  for (const auto& s : seen) {
    // Of the whole set, as `pgbackrest info` sizes it; the scrape a moment later at least as far
    // (unless the restore ended in between, and its series with it).
    EXPECT_EQ(s.total, set_bytes);
    EXPECT_LE(s.done, s.total);
    if (!s.scraped_total) continue;
    ++scraped;
    EXPECT_EQ(*s.scraped_total, static_cast<double>(set_bytes));
    EXPECT_GE(s.scraped_done.value_or(-1), static_cast<double>(s.done));
  }
  EXPECT_GT(scraped, 0u) << "the restore's progress never showed in /metrics";
  // It moved while it was watched, and reached the whole set: the agent's log line at the end.
  ASSERT_GE(seen.size(), 2u) << agent->log();
  EXPECT_GT(seen.back().done, seen.front().done);
  EXPECT_LT(seen.front().done, set_bytes);
  EXPECT_TRUE(agent->log_contains("restored " + human_bytes(set_bytes) + " of " + human_bytes(set_bytes) +
                                  " (100.00%)"))
      << agent->log();
  // The dump's client printed the restore's progress too.
  EXPECT_NE(dump_stderr.find("of " + human_bytes(set_bytes) + " ("), std::string::npos) << dump_stderr;
  const auto after = http_get(agent_port, "/metrics").body;
  EXPECT_EQ(after.find("agent_restore_progress_bytes{"), std::string::npos) << after;
  EXPECT_EQ(after.find("agent_restore_progress_total_bytes{"), std::string::npos) << after;
  EXPECT_TRUE(nlohmann::json::parse(
                  run_agent({"status", "--json", "--config", config}).stdout_text)["dump"]["running"]
                  .is_null());
  const auto not_dumped = dump("no_such_database", "dashboard-failed.sql");
  EXPECT_NE(not_dumped.exit_code, 0) << not_dumped.stderr_text;
  // A drill that fails (an assertion that is false on the copy), then one that passes: the
  // newest drill's series (phases, replay gap, checks) are the passed one's.
  const auto drill = [&](std::vector<std::string> more) {
    std::vector<std::string> args = {"drill",      "--config",
                                     config,       "--latest",
                                     "--database", "api",
                                     "--scratch",  cluster_->get("SCRATCH"),
                                     "--port",     cluster_->get("SCRATCH_PORT")};
    args.insert(args.end(), more.begin(), more.end());
    return run_agent(args);
  };
  const auto red = drill({"--assert", "api: SELECT false"});
  EXPECT_EQ(red.exit_code, 4) << red.stderr_text << agent->log();
  const auto green = drill({});
  EXPECT_EQ(green.exit_code, 0) << green.stderr_text << agent->log();

  // Scraped with the failures, the dumps and the drills in (the passed drill is the newer), with
  // enough samples for increase().
  for (const std::string newest :
       {"agent_dump_last_failure_timestamp_seconds", "agent_drill_last_success_timestamp_seconds"})
    ASSERT_TRUE(eventually(
        [&] {
          const auto answer =
              prometheus.query("count_over_time(" + newest + "{pg_cluster=\"ns:hippo\"}[1m]) >= 5");
          return answer.is_object() && !answer["data"]["result"].empty();
        },
        std::chrono::seconds(60)))
        << newest << "\n"
        << agent->log();

  const auto dashboard = nlohmann::json::parse(
      read_file(std::string(AGENT_SOURCE_DIR) + "/config/grafana/agent-dashboard.json"));
  const auto exprs = dashboard_exprs(dashboard["panels"]);
  ASSERT_GE(exprs.size(), 20u);
  for (const auto& [title, raw] : exprs) {
    const std::string expr = substitute_variables(raw);
    EXPECT_EQ(expr.find('$'), std::string::npos) << title << ": a variable left: " << expr;
    const auto answer = prometheus.query(expr);
    ASSERT_TRUE(answer.is_object()) << title << ": no answer for " << expr;
    EXPECT_EQ(answer.value("status", ""), "success") << title << ": " << expr << " -> " << answer.dump();
    // Progress exists only while a job runs: none now, after the jobs. The restore's had series
    // while the dump's restore ran (evaluated at the instants `agent status` showed it, and up to
    // a scrape interval after). The backup's needs pgBackRest 2.48+ (the suite's Debian 2.45
    // reports no sizes): here it must evaluate, as every expr, and it returns series in
    // WithPgBackRest256TheBackupsProgressShowsWhileItRuns, during a backup by 2.56.0.
    if (expr.find("_progress_") != std::string::npos) {
      EXPECT_TRUE(answer["data"]["result"].empty()) << title << ": series with no job running: " << expr;
      if (expr.find("agent_restore_progress_") == std::string::npos) continue;
      bool shown = false;
      for (const auto& s : seen)
        for (const double later : {0.0, 0.5, 1.0, 1.5}) {
          const auto then = prometheus.query(expr, s.at + later);
          EXPECT_EQ(then.value("status", ""), "success") << title << ": " << expr << " -> " << then.dump();
          shown = shown || (then.is_object() && !then["data"]["result"].empty());
        }
      EXPECT_TRUE(shown) << title << ": no series while the restore ran: " << expr;
      continue;
    }
    EXPECT_FALSE(answer["data"]["result"].empty()) << title << ": no series for " << expr;
  }
  // The variables: label_values(SELECTOR, LABEL) finds LABEL on the selected series.
  const std::regex label_values(R"(^label_values\((.*), *([a-z_]+)\)$)");
  for (const auto& variable : dashboard["templating"]["list"]) {
    if (variable.value("type", "") != "query") continue;
    const std::string definition = substitute_variables(variable.value("definition", ""));
    std::smatch match;
    ASSERT_TRUE(std::regex_match(definition, match, label_values)) << definition;
    const auto answer = prometheus.query(match[1]);
    ASSERT_TRUE(answer.is_object() && !answer["data"]["result"].empty()) << definition;
    EXPECT_TRUE(answer["data"]["result"][0]["metric"].contains(match[2].str()))
        << definition << answer.dump();
  }

  // The job history survives a restart (state_dir/history.json): `agent status` of the new
  // agent still lists both backups, newest first, with who asked and what the good one made.
  agent.reset();
  agent = std::make_unique<RunningAgent>(config);
  const auto status = run_agent({"status", "--json", "--config", config});
  ASSERT_EQ(status.exit_code, 0) << status.stderr_text;
  const auto recent = nlohmann::json::parse(status.stdout_text)["recent"];
  ASSERT_EQ(recent.size(), 2u) << recent.dump();
  EXPECT_EQ(recent[0]["outcome"], "failed") << recent.dump();
  EXPECT_EQ(recent[1]["outcome"], "succeeded") << recent.dump();
  EXPECT_EQ(recent[1]["trigger"], "manual");
  EXPECT_EQ(recent[1]["reason"], "agent backup --type incr");
  // Label, size, start and end as `pgbackrest info` has them; each repository's window starts at
  // its oldest backup's end.
  const auto made = cluster_->backups().back();
  EXPECT_EQ(recent[1]["backup"]["label"], made.label) << recent.dump();
  EXPECT_EQ(recent[1]["backup"]["size_bytes"], made.database_bytes) << recent.dump();
  EXPECT_EQ(recent[1]["backup"]["start"], format_iso_utc(SysMicros{std::chrono::seconds{made.start_epoch}}));
  EXPECT_EQ(recent[1]["backup"]["stop"], format_iso_utc(SysMicros{std::chrono::seconds{made.stop_epoch}}));
  std::int64_t oldest_stop = made.stop_epoch;
  for (const auto& b : cluster_->backups()) oldest_stop = std::min(oldest_stop, b.stop_epoch);
  ASSERT_TRUE(eventually(
      [&] {
        const auto repos = nlohmann::json::parse(
            run_agent({"status", "--json", "--config", config}).stdout_text)["repositories"];
        return repos.size() == 1 && repos[0]["window"].is_object();
      },
      std::chrono::seconds(20)));
  const auto repos =
      nlohmann::json::parse(run_agent({"status", "--json", "--config", config}).stdout_text)["repositories"];
  EXPECT_EQ(repos[0]["window"]["start"], format_iso_utc(SysMicros{std::chrono::seconds{oldest_stop}}))
      << repos.dump();
  const auto human = run_agent({"status", "--config", config}).stdout_text;
  EXPECT_NE(human.find("backup " + made.label), std::string::npos) << human;
  EXPECT_NE(human.find("recoverable: " + format_iso_utc(SysMicros{std::chrono::seconds{oldest_stop}})),
            std::string::npos)
      << human;
  EXPECT_TRUE(recent[1].contains("requested_at") && recent[1].contains("started_at") &&
              recent[1].contains("finished_at"))
      << recent.dump();
}

// The backup's progress, which pgBackRest 2.48+ keeps in its backup lock (the suite's Debian
// 2.45 has none), shown while a real backup by 2.56.0 runs: in `agent status`, in /metrics,
// and in Prometheus through the dashboard's backup-progress expr. The cluster is the test's
// own, so no other test's repository holds a 2.56 set. It holds 24 tables of ~13 MB each
// (the lock's bytes done move as files are completed), and the
// agent's pgBackRest config differs from make-cluster.sh's only by one process and zstd at
// level 9, so that the full backup lasts seconds of real work.
TEST_F(MetricsIntegration, WithPgBackRest256TheBackupsProgressShowsWhileItRuns) {
  const std::string pgbackrest = built_pgbackrest_256();
  ASSERT_FALSE(pgbackrest.empty()) << "build-pgbackrest.sh failed";
  auto own = TestCluster::create();
  struct Remover {
    TestCluster& cluster;
    ~Remover() { cluster.destroy(); }
  } remover{own};
  ASSERT_FALSE(own.dir().empty()) << "the test's cluster could not be built";
  constexpr int kTables = 24;
  for (int table = 1; table <= kTables; ++table)
    own.sql("api", fmt::format("CREATE TABLE progress_{} AS SELECT g AS id, md5(g::text) || "
                               "md5((g * 3)::text) || md5((g * 7)::text) || md5((g * 11)::text) AS payload "
                               "FROM generate_series({}, {}) g",
                               table, table * 100000, table * 100000 + 69999));
  own.sql("api", "CHECKPOINT");

  const std::string dir = own.dir() + "/backup-progress";
  mkdir(dir.c_str(), 0700);
  std::string slow = read_file(own.get("PGBACKREST_CONFIG"));
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"compress-type=lz4\n", "compress-type=zst\ncompress-level=9\n"},
           {"process-max=2\n", "process-max=1\n"}}) {
    const auto at = slow.find(from);
    ASSERT_NE(at, std::string::npos) << from << " not in " << slow;
    slow.replace(at, from.size(), to);
  }
  const std::string pgbackrest_config = dir + "/pgbackrest.conf";
  write_file(pgbackrest_config, slow);
  const int agent_port = free_port();
  const std::string config = dir + "/agent.yaml";
  write_file(config, "stanza: db\nstate_dir: " + dir + "/state\npgbackrest:\n  config: " + pgbackrest_config +
                         "\n  bin: " + pgbackrest + "\npostgres:\n  bindir: " + own.get("BINDIR") +
                         "\n  data: " + own.get("DATA") + "\n  host: " + own.get("SOCKET_DIR") +
                         "\n  port: " + own.get("PORT") + "\n  user: postgres\ncontrol:\n  socket: " + dir +
                         "/agent.sock\nmanual:\n  annotations_file: \"\"\nhttp:\n  listen: 127.0.0.1:" +
                         std::to_string(agent_port) +
                         "\nmetrics:\n  refresh_seconds: 10\n  progress_seconds: 1\n");
  RunningAgent agent(config);
  LocalPrometheus prometheus(dir + "/prometheus",
                             "global:\n  scrape_interval: 1s\n"
                             "scrape_configs:\n  - job_name: agent\n    static_configs:\n"
                             "      - targets: ['127.0.0.1:" +
                                 std::to_string(agent_port) +
                                 "']\n        labels:\n          pg_cluster: 'ns:hippo'\n"
                                 "          pod: hippo-0\n          role: master\n");
  ASSERT_TRUE(prometheus.running()) << prometheus.error();
  // Prometheus has scraped the agent before the backup starts.
  ASSERT_TRUE(eventually(
      [&] {
        const auto answer = prometheus.query("agent_build_info{pg_cluster=\"ns:hippo\"}");
        return answer.is_object() && !answer["data"]["result"].empty();
      },
      std::chrono::seconds(60)))
      << agent.log();

  std::vector<ProgressSeen> seen;
  std::string human;  // `agent status` while the progress showed
  std::mutex backup_mutex;
  std::string backup_stderr;
  auto running_backup =
      start_agent({"backup", "--type", "full", "--wait", "--config", config}, [&](std::string_view line) {
        std::lock_guard lock(backup_mutex);
        backup_stderr.append(line).push_back('\n');
      });
  ASSERT_TRUE(running_backup.ok()) << running_backup.error().describe();
  const auto started = std::chrono::steady_clock::now();
  std::optional<ProcessResult> backup_ended;
  while (
      !(backup_ended = running_backup.value()->wait(CancelToken::never(), std::chrono::milliseconds(200)))) {
    const auto status = nlohmann::json::parse(run_agent({"status", "--json", "--config", config}).stdout_text,
                                              nullptr, false);
    if (status.is_discarded() || !status["running"].is_object()) continue;
    const auto& progress = status["running"]["progress"];
    if (!progress.is_object()) continue;
    const auto now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const auto text = http_get(agent_port, "/metrics").body;
    seen.push_back({now, progress.value("bytes_done", std::uint64_t{0}),
                    progress.value("bytes_total", std::uint64_t{0}),
                    series(text, R"(agent_backup_progress_bytes{repo="1",stanza="db"})"),
                    series(text, R"(agent_backup_progress_total_bytes{repo="1",stanza="db"})")});
    if (human.empty()) human = run_agent({"status", "--config", config}).stdout_text;
  }
  const auto lasted = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(backup_ended->exit_code, 0) << backup_stderr << agent.log();
  // Debian's 2.45 (the harness's `pgbackrest info`) reads the repository 2.56 backed up into.
  const auto sets = own.backups();
  ASSERT_FALSE(sets.empty());
  const auto made = sets.back();
  EXPECT_EQ(made.type, "full");
  ASSERT_FALSE(seen.empty()) << "the backup's progress never showed in agent status (it lasted " << lasted
                             << " s)\n"
                             << agent.log();
  // The lock's total is the set's size in `pgbackrest info` but for the files pgBackRest adds
  // when the backup stops, after it sized the copy: backup_label and tablespace_map (the
  // cluster has a tablespace), as the set's manifest lists them.
  std::uint64_t added_at_stop = 0;
  {
    std::istringstream manifest(read_file(own.dir() + "/repo/backup/db/" + made.label + "/backup.manifest"));
    const std::regex stop_file(R"re(^pg_data/(backup_label|tablespace_map)=\{.*"size":([0-9]+))re");
    std::size_t found = 0;
    for (std::string line; std::getline(manifest, line);) {
      std::smatch match;
      if (!std::regex_search(line, match, stop_file)) continue;
      ++found;
      added_at_stop += std::stoull(match[2].str());
    }
    EXPECT_EQ(found, 2u) << "backup_label and tablespace_map in " << made.label << "'s manifest";
  }
  std::size_t scraped = 0;
  for (const auto& s : seen) {
    // Of the whole set; the scrape a moment later at least as far (unless the backup ended in
    // between, and its series with it).
    EXPECT_EQ(s.total + added_at_stop, made.database_bytes);
    EXPECT_LE(s.done, s.total);
    if (!s.scraped_total) continue;
    ++scraped;
    EXPECT_EQ(*s.scraped_total, static_cast<double>(s.total));
    EXPECT_GE(s.scraped_done.value_or(-1), static_cast<double>(s.done));
  }
  EXPECT_GT(scraped, 0u) << "the backup's progress never showed in /metrics";
  // It rose while it was watched.
  ASSERT_GE(seen.size(), 2u) << "lasted " << lasted << " s\n" << agent.log();
  EXPECT_GT(seen.back().done, seen.front().done) << "lasted " << lasted << " s";
  EXPECT_LT(seen.front().done, seen.front().total);
  EXPECT_NE(human.find("  progress: "), std::string::npos) << human;
  EXPECT_NE(human.find(" of " + human_bytes(made.database_bytes) + " ("), std::string::npos) << human;
  // Gone when the backup ended.
  const auto after = http_get(agent_port, "/metrics").body;
  EXPECT_EQ(after.find("agent_backup_progress_bytes{"), std::string::npos) << after;
  EXPECT_EQ(after.find("agent_backup_progress_total_bytes{"), std::string::npos) << after;

  // The dashboard's backup-progress expr returns series at the instants `agent status` showed
  // the progress (or up to a scrape interval after), each a percentage.
  const auto dashboard = nlohmann::json::parse(
      read_file(std::string(AGENT_SOURCE_DIR) + "/config/grafana/agent-dashboard.json"));
  std::size_t backup_exprs = 0;
  for (const auto& [title, raw] : dashboard_exprs(dashboard["panels"])) {
    if (raw.find("agent_backup_progress_") == std::string::npos) continue;
    ++backup_exprs;
    const std::string expr = substitute_variables(raw);
    bool shown = false;
    for (const auto& s : seen)
      for (const double later : {0.0, 0.5, 1.0, 1.5}) {
        const auto then = prometheus.query(expr, s.at + later);
        ASSERT_EQ(then.value("status", ""), "success") << title << ": " << expr << " -> " << then.dump();
        for (const auto& result : then["data"]["result"]) {
          shown = true;
          EXPECT_EQ(result["metric"].value("repo", ""), "1") << then.dump();
          const double percent = std::stod(result["value"][1].get<std::string>());
          EXPECT_GE(percent, 0.0) << then.dump();
          EXPECT_LE(percent, 100.0) << then.dump();
        }
      }
    EXPECT_TRUE(shown) << title << ": no series while the backup ran: " << expr;
  }
  EXPECT_EQ(backup_exprs, 1u);
}

}  // namespace
}  // namespace agent::testing
