// /metrics, /healthz and /readyz of a real `agent run` against a real repository, linted by
// promtool and scraped by a real Prometheus server.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "harness.hpp"
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

TEST_F(MetricsIntegration, PrometheusScrapesTheAgentAndAnswersAFreshnessQuery) {
  RunningAgent agent(config_);
  const int prometheus_port = free_port();
  const std::string dir = cluster_->dir() + "/prometheus";
  mkdir(dir.c_str(), 0700);
  write_file(dir + "/prometheus.yml",
             "global:\n  scrape_interval: 1s\n"
             "scrape_configs:\n  - job_name: agent\n    static_configs:\n"
             "      - targets: ['127.0.0.1:" +
                 std::to_string(http_port_) + "']\n");
  auto runner = make_posix_process_runner();
  ProcessSpec spec;
  spec.argv = {"prometheus", "--config.file=" + dir + "/prometheus.yml",
               "--storage.tsdb.path=" + dir + "/data",
               "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port)};
  spec.tag = "prometheus";
  spec.log_level = spdlog::level::debug;
  auto prometheus = runner->start(spec);
  ASSERT_TRUE(prometheus.ok()) << prometheus.error().describe();
  nlohmann::json answer;
  const bool answered = eventually(
      [&] {
        const auto reply =
            http_get(prometheus_port, "/api/v1/query?query=agent_backup_age_seconds%7Btype%3D%22full%22%7D");
        if (reply.status != 200) return false;
        answer = nlohmann::json::parse(reply.body, nullptr, false);
        return answer.is_object() && answer.value("status", "") == "success" &&
               !answer["data"]["result"].empty();
      },
      std::chrono::seconds(60));
  prometheus.value()->stop(SIGTERM, std::chrono::seconds(10));
  ASSERT_TRUE(answered) << answer.dump();
  const auto& sample = answer["data"]["result"][0];
  EXPECT_EQ(sample["metric"]["job"], "agent");
  EXPECT_EQ(sample["metric"]["stanza"], "db");
  EXPECT_GT(std::stod(sample["value"][1].get<std::string>()), 0.0);
}

}  // namespace
}  // namespace agent::testing
