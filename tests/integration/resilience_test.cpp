// `agent run` treated the way a production pod treats it, against a real PostgreSQL 15 and
// pgBackRest repository: bad requests, restarts and kills in the middle of work, a server that
// stops answering, broken state, outside files that are not files, descriptor exhaustion.
// Each test ends with the daemon still serving and no request lost or run twice.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness.hpp"

namespace agent::testing {
namespace {

class ResilienceIntegration : public ClusterSuite<ResilienceIntegration> {
 public:
  static constexpr int kBulkMb = 96;  // a full backup long enough to be interrupted

 protected:
  struct Agent {
    std::string config;
    std::string dir;
    int http_port = 0;
  };

  // An `agent run` config for the test cluster; `extra` adds YAML sections.
  static Agent agent_config(const std::string& name, const std::string& extra, bool with_socket = true) {
    Agent agent;
    agent.dir = cluster_->dir() + "/" + name;
    mkdir(agent.dir.c_str(), 0700);
    agent.config = agent.dir + "/agent.yaml";
    agent.http_port = free_port();
    write_file(agent.config,
               "stanza: db\n"
               "state_dir: " +
                   agent.dir + "/state\n" + "pgbackrest:\n  config: " + cluster_->get("PGBACKREST_CONFIG") +
                   "\npostgres:\n  bindir: " + cluster_->get("BINDIR") +
                   "\n  data: " + cluster_->get("DATA") + "\n  host: " + cluster_->get("SOCKET_DIR") +
                   "\n  port: " + cluster_->get("PORT") + "\n  user: postgres\n" +
                   (with_socket ? "control:\n  socket: " + agent.dir + "/agent.sock\n" : "") +
                   "http:\n  listen: 127.0.0.1:" + std::to_string(agent.http_port) + "\n" + extra);
    return agent;
  }

  static nlohmann::json status_of(const Agent& agent) {
    const auto run = run_agent({"status", "--json", "--config", agent.config});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    auto parsed = nlohmann::json::parse(run.stdout_text, nullptr, false);
    return parsed.is_object() ? parsed : nlohmann::json::object();
  }

  static std::size_t fulls() {
    std::size_t n = 0;
    for (const auto& backup : cluster_->backups()) n += backup.type == "full" ? 1 : 0;
    return n;
  }

  // A pgBackRest backup process of the test cluster is running.
  static bool backup_running() {
    for (auto pid : processes_matching(cluster_->get("PGBACKREST_CONFIG"))) {
      const std::string cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
      if (cmdline.find("backup") != std::string::npos && cmdline.find("archive-push") == std::string::npos)
        return true;
    }
    return false;
  }

  static int connect_unix(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 && errno != EAGAIN &&
        errno != EINPROGRESS) {
      close(fd);
      return -1;
    }
    return fd;
  }

  // A blocking connect that gives up after `timeout` (a full backlog); -1 when it does.
  static int connect_unix_waiting(const std::string& path, std::chrono::seconds timeout) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval limit{static_cast<time_t>(timeout.count()), 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }

  // Sends raw bytes and returns the first reply line ("" when the agent closed without one).
  static std::string raw_request(const std::string& path, const std::string& bytes) {
    const int fd = connect_unix(path);
    if (fd < 0) return "<no connection>";
    const int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    timeval limit{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    (void)!send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    std::string reply;
    char c = 0;
    while (read(fd, &c, 1) == 1 && c != '\n') reply.push_back(c);
    close(fd);
    return reply;
  }

  // Waits until the journal in the agent's state_dir holds no request.
  static bool journal_empty(const Agent& agent) {
    const auto json = nlohmann::json::parse(read_file(agent.dir + "/state/requests.json"), nullptr, false);
    return !json.is_discarded() && json.contains("requests") && json["requests"].empty();
  }

  static std::size_t occurrences(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
  }
};

TEST_F(ResilienceIntegration, MalformedControlRequestsLeaveTheDaemonServing) {
  const auto agent = agent_config("malformed", "manual:\n  annotations_file: \"\"\n");
  RunningAgent running(agent.config);
  const std::string socket = agent.dir + "/agent.sock";
  std::vector<std::string> requests = {R"({"command":"backup","wait":"yes"})",
                                       R"({"command":"backup","type":["full"]})",
                                       R"({"command":"backup","type":null})",
                                       R"({"command":"dump","target":7})",
                                       R"({"command":"dump","target":"t","port":4294972296})",
                                       R"({"command":"dump","target":"t","overwrite":"1"})",
                                       R"([{"command":"status"}])",
                                       R"(null)",
                                       R"({"command":"status","extra":{}})",
                                       "\xff\xfe\x00garbage",
                                       std::string(70000, '{'),
                                       ""};
  for (const auto& request : requests) {
    const std::string reply = raw_request(socket, request + "\n");
    const auto json = nlohmann::json::parse(reply, nullptr, false);
    ASSERT_FALSE(json.is_discarded()) << request.substr(0, 60) << " -> " << reply;
    EXPECT_FALSE(json.value("ok", true)) << request.substr(0, 60) << " -> " << reply;
  }
  // 500 connections at once, silent, then gone.
  std::vector<int> burst;
  for (int i = 0, failed = 0; i < 500 && failed < 5; ++i) {
    const int fd = connect_unix_waiting(socket, std::chrono::seconds(1));
    if (fd < 0)
      ++failed;
    else
      burst.push_back(fd);
  }
  EXPECT_GT(burst.size(), 400u) << "the agent stopped taking connections";
  // A client that asks for a backup's progress and never reads.
  const int deaf = connect_unix(socket);
  const std::string wait_request = R"({"command":"status"})"
                                   "\n";
  (void)!send(deaf, wait_request.data(), wait_request.size(), MSG_NOSIGNAL);
  EXPECT_EQ(http_get(agent.http_port, "/healthz").status, 200);
  for (int fd : burst)
    if (fd >= 0) close(fd);
  EXPECT_EQ(http_get(agent.http_port, "/healthz").status, 200) << running.log();
  const auto backup = run_agent({"backup", "--type", "incr", "--wait", "--config", agent.config});
  EXPECT_EQ(backup.exit_code, 0) << backup.stderr_text << running.log();
  EXPECT_NE(backup.stderr_text.find("succeeded"), std::string::npos) << backup.stderr_text;
  close(deaf);
  EXPECT_FALSE(running.process().poll().has_value()) << "the agent ended";
}

// SIGTERM while an annotation-triggered backup runs and a client's request waits: after the
// restart both requests are answered by backups, none is lost and none runs twice.
TEST_F(ResilienceIntegration, SigtermWithWorkRunningAndWaitingLosesNothing) {
  const std::string podinfo = cluster_->dir() + "/podinfo-term";
  const std::string key = "postgres-operator.crunchydata.com/pgbackrest-backup";
  write_annotations_like_kubelet(podinfo, key + "=\"first\"\n");
  const auto agent = agent_config("sigterm-journal", "manual:\n  annotations_file: " + podinfo +
                                                         "/annotations\nrun:\n  grace_seconds: 1\n");
  const auto fulls_before = fulls();
  {
    RunningAgent running(agent.config);
    write_annotations_like_kubelet(podinfo, key + "=\"second\"\n");
    ASSERT_TRUE(eventually([&] { return backup_running(); }, std::chrono::seconds(90))) << running.log();
    const auto queued = run_agent({"backup", "--type", "diff", "--config", agent.config});
    ASSERT_EQ(queued.exit_code, 0) << queued.stderr_text;
    ASSERT_EQ(kill(running.process().pid(), SIGTERM), 0);
    auto ended = running.process().wait(CancelToken::never(), std::chrono::seconds(30));
    ASSERT_TRUE(ended.has_value()) << "the agent did not stop";
    EXPECT_TRUE(running.log_contains("runs again after the restart")) << running.log();
  }
  EXPECT_EQ(fulls(), fulls_before)
      << "the interrupted backup finished after all; the test needs a longer one";
  RunningAgent again(agent.config);
  ASSERT_TRUE(eventually([&] { return journal_empty(agent); }, std::chrono::seconds(180))) << again.log();
  EXPECT_EQ(occurrences(again.log(), "queued again"), 2u) << again.log();
  // The diff waits behind the full and is answered by it or runs after it; the full runs once.
  ASSERT_TRUE(eventually([&] { return status_of(agent)["running"].is_null(); }, std::chrono::seconds(60)));
  EXPECT_EQ(fulls(), fulls_before + 1) << again.log();
  // The annotation value is not taken for a new one after the restart.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(fulls(), fulls_before + 1) << again.log();
}

// SIGKILL (an OOM kill) twice in the middle of the same request: the first restart runs it
// again, the second reports it abandoned, in the log, `agent status` and the metrics.
TEST_F(ResilienceIntegration, SigkillRunsTheRequestAgainOnceThenReportsItAbandoned) {
  const std::string podinfo = cluster_->dir() + "/podinfo-kill";
  const std::string key = "postgres-operator.crunchydata.com/pgbackrest-backup";
  write_annotations_like_kubelet(podinfo, key + "=\"first\"\n");
  const auto agent =
      agent_config("sigkill-journal", "manual:\n  annotations_file: " + podinfo + "/annotations\n");
  const auto fulls_before = fulls();
  const auto kill_during_backup = [&](RunningAgent& running) {
    ASSERT_TRUE(eventually([&] { return backup_running(); }, std::chrono::seconds(90))) << running.log();
    ASSERT_EQ(kill(running.process().pid(), SIGKILL), 0);
    running.process().wait(CancelToken::never(), std::chrono::seconds(10));
    // Its pgBackRest gets the agent's death signal and stops.
    EXPECT_TRUE(eventually([&] { return !backup_running(); }, std::chrono::seconds(30)));
  };
  {
    RunningAgent running(agent.config);
    write_annotations_like_kubelet(podinfo, key + "=\"second\"\n");
    kill_during_backup(running);
    if (HasFatalFailure()) return;
  }
  {
    RunningAgent running(agent.config);  // runs it again...
    EXPECT_TRUE(eventually([&] { return running.log_contains("queued again"); }, std::chrono::seconds(10)));
    kill_during_backup(running);  // ...and is killed again
    if (HasFatalFailure()) return;
  }
  RunningAgent last(agent.config);
  ASSERT_TRUE(eventually([&] { return last.log_contains("abandoned"); }, std::chrono::seconds(10)))
      << last.log();
  const auto status = status_of(agent);
  ASSERT_EQ(status["state"]["abandoned"].size(), 1u) << status.dump();
  EXPECT_EQ(status["state"]["abandoned"][0]["trigger"], "annotation");
  EXPECT_EQ(status["state"]["abandoned"][0]["attempts"], 2);
  EXPECT_NE(http_get(agent.http_port, "/metrics").body.find("agent_jobs_skipped_total{reason=\"abandoned\""),
            std::string::npos);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_FALSE(backup_running()) << "an abandoned request ran a third time";
  EXPECT_EQ(fulls(), fulls_before);
}

// The live postmaster stops answering (hung storage; SIGSTOP here) just as a backup starts:
// /healthz names the stuck job, SIGTERM still ends the agent within its grace, and after
// SIGCONT a restarted agent runs the request again.
TEST_F(ResilienceIntegration, AStoppedPostmasterDoesNotWedgeTheAgent) {
  const auto agent = agent_config(
      "sigstop", "manual:\n  annotations_file: \"\"\nrun:\n  grace_seconds: 2\n  stuck_seconds: 10\n");
  const pid_t postmaster = std::stoi(read_file(cluster_->get("DATA") + "/postmaster.pid"));
  std::atomic<bool> stopped{false};
  auto process = start_agent({"run", "--config", agent.config}, [&](std::string_view line) {
    // At once, between the agent's primary check and pgBackRest's own connection.
    if (!stopped && line.find("backup (agent backup --type incr) started") != std::string_view::npos) {
      kill(postmaster, SIGSTOP);
      stopped = true;
    }
  });
  ASSERT_TRUE(process.ok());
  struct Resume {
    pid_t pid;
    ~Resume() { kill(pid, SIGCONT); }
  } resume{postmaster};
  ASSERT_TRUE(eventually([&] { return http_get(agent.http_port, "/healthz").status == 200; },
                         std::chrono::seconds(20)));
  const auto queued = run_agent({"backup", "--type", "incr", "--config", agent.config});
  ASSERT_EQ(queued.exit_code, 0) << queued.stderr_text;
  ASSERT_TRUE(eventually([&] { return stopped.load(); }, std::chrono::seconds(30)));
  HttpReply health;
  ASSERT_TRUE(eventually(
      [&] {
        health = http_get(agent.http_port, "/healthz");
        return health.status == 503;
      },
      std::chrono::seconds(40)))
      << "/healthz never reported the stuck job: " << health.body;
  EXPECT_NE(health.body.find("backup job 1 (incr) stuck"), std::string::npos) << health.body;
  const auto begin = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(process.value()->pid(), SIGTERM), 0);
  auto ended = process.value()->wait(CancelToken::never(), std::chrono::seconds(30));
  ASSERT_TRUE(ended.has_value()) << "SIGTERM did not end the agent";
  // Grace (2 s), then the job has kHardStopAfter (8 s) to stop before the agent exits anyway.
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(14));
  kill(postmaster, SIGCONT);
  ASSERT_TRUE(eventually([&] { return !backup_running(); }, std::chrono::seconds(30)))
      << "a pgBackRest backup outlived the agent";
  RunningAgent again(agent.config);
  ASSERT_TRUE(eventually([&] { return journal_empty(agent); }, std::chrono::seconds(120))) << again.log();
  const auto status = status_of(agent);
  ASSERT_TRUE(status.contains("recent") && status["recent"].is_array() && !status["recent"].empty())
      << status.dump();
  EXPECT_EQ(status["recent"][0]["outcome"], "succeeded") << status.dump() << again.log();
  EXPECT_EQ(http_get(agent.http_port, "/healthz").status, 200);
}

// Broken state degrades what depends on it and nothing else.
TEST_F(ResilienceIntegration, AnUnusableStateDirLeavesSchedulesMetricsAndProbesRunning) {
  const std::string blocker = cluster_->dir() + "/not-a-directory";
  write_file(blocker, "a file where state_dir's parent should be\n");
  auto agent = agent_config("no-state",
                            "schedules:\n  timezone: UTC\n  full: \"0 2 * * *\"\n"
                            "manual:\n  annotations_file: " +
                                cluster_->dir() + "/podinfo-none/annotations\n");
  // state_dir under a regular file cannot be created by anyone.
  std::string text = read_file(agent.config);
  text.replace(text.find("state_dir: "), text.find('\n', text.find("state_dir: ")) - text.find("state_dir: "),
               "state_dir: " + blocker + "/state");
  write_file(agent.config, text);
  RunningAgent running(agent.config);
  EXPECT_EQ(http_get(agent.http_port, "/healthz").status, 200) << running.log();
  EXPECT_EQ(http_get(agent.http_port, "/readyz").status, 200) << running.log();
  const auto metrics = http_get(agent.http_port, "/metrics").body;
  EXPECT_NE(metrics.find("agent_component_ok{component=\"state_dir\"} 0"), std::string::npos) << metrics;
  const auto status = status_of(agent);
  EXPECT_FALSE(status["state"]["problem"].is_null()) << status.dump();
  ASSERT_EQ(status["schedules"].size(), 1u) << status.dump();
  EXPECT_FALSE(status["schedules"][0]["next"].is_null());
  EXPECT_EQ(status["annotation"].value("state", ""), "disabled") << status.dump();
  EXPECT_NE(metrics.find("agent_component_ok{component=\"annotation_trigger\"} 0"), std::string::npos)
      << metrics;
  EXPECT_NE(http_get(agent.http_port, "/healthz").body.find("degraded: annotation_trigger: disabled"),
            std::string::npos);
  const auto backup = run_agent({"backup", "--type", "incr", "--wait", "--config", agent.config});
  EXPECT_EQ(backup.exit_code, 0) << backup.stderr_text << running.log();
}

// A corrupt handled-values file: kept aside, the trigger starts afresh as on a first start (the
// value present is recorded, not run), and only a new value backs up, once.
TEST_F(ResilienceIntegration, ACorruptHandledValuesFileIsKeptAsideAndNothingRunsTwice) {
  const std::string podinfo = cluster_->dir() + "/podinfo-corrupt";
  const std::string key = "postgres-operator.crunchydata.com/pgbackrest-backup";
  write_annotations_like_kubelet(podinfo, key + "=\"already-handled\"\n");
  const auto agent =
      agent_config("corrupt-state", "manual:\n  annotations_file: " + podinfo + "/annotations\n");
  mkdir((agent.dir + "/state").c_str(), 0700);
  write_file(agent.dir + "/state/handled-annotations.json",
             std::string("{\"version\": 1, \"values\": [\x00\xff", 22));
  const auto fulls_before = fulls();
  RunningAgent running(agent.config);
  EXPECT_EQ(http_get(agent.http_port, "/healthz").status, 200);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(fulls(), fulls_before) << "the value present at the fresh start ran\n" << running.log();
  const auto status = status_of(agent);
  EXPECT_EQ(status["annotation"].value("state", ""), "watching") << status.dump();
  EXPECT_TRUE(status["annotation"]["notice"].is_string()) << status.dump();
  bool kept_aside = false;
  for (const auto& entry : std::filesystem::directory_iterator(agent.dir + "/state"))
    kept_aside |= entry.path().filename().string().starts_with("handled-annotations.json.corrupt-");
  EXPECT_TRUE(kept_aside);
  write_annotations_like_kubelet(podinfo, key + "=\"new\"\n");
  EXPECT_TRUE(eventually([&] { return fulls() == fulls_before + 1; }, std::chrono::seconds(90)))
      << running.log();
  ASSERT_TRUE(eventually([&] { return journal_empty(agent); }, std::chrono::seconds(60)));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(fulls(), fulls_before + 1) << running.log();
}

// The annotations path replaced by things that are not a small regular file: the event loop
// never blocks on them, and each change is warned about once.
TEST_F(ResilienceIntegration, AnnotationsPathThatIsNotAFileNeverBlocksTheAgent) {
  const std::string podinfo = cluster_->dir() + "/podinfo-odd";
  const std::string key = "postgres-operator.crunchydata.com/pgbackrest-backup";
  write_annotations_like_kubelet(podinfo, key + "=\"v1\"\n");
  const std::string path = podinfo + "/annotations";
  const auto agent = agent_config("odd-annotations", "manual:\n  annotations_file: " + path + "\n");
  RunningAgent running(agent.config);
  const auto fulls_before = fulls();
  // The kubelet's file is a symlink through ..data; each shape arrives the way an update does:
  // in a new directory that ..data is swapped to.
  int generation = 0;
  const auto replace = [&](const std::function<void(const std::string&)>& make) {
    const std::string name = "..shape_" + std::to_string(++generation);
    ASSERT_EQ(mkdir((podinfo + "/" + name).c_str(), 0755), 0);
    make(podinfo + "/" + name + "/annotations");
    const std::string link = podinfo + "/..data_tmp";
    unlink(link.c_str());
    ASSERT_EQ(symlink(name.c_str(), link.c_str()), 0);
    ASSERT_EQ(rename(link.c_str(), (podinfo + "/..data").c_str()), 0);
  };
  const auto answers = [&](const char* shape) {
    for (int i = 0; i < 3; ++i) {
      const auto begin = std::chrono::steady_clock::now();
      EXPECT_EQ(http_get(agent.http_port, "/healthz").status, 200) << shape;
      EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(1)) << shape;
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
    }
    const auto status = run_agent({"status", "--config", agent.config});
    EXPECT_EQ(status.exit_code, 0) << shape << ": " << status.stderr_text;
  };
  replace([](const std::string& target) { ASSERT_EQ(mkfifo(target.c_str(), 0600), 0); });
  answers("fifo");
  replace([](const std::string& target) { ASSERT_EQ(mkdir(target.c_str(), 0700), 0); });
  answers("directory");
  replace([](const std::string& target) {
    const int fd = open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 100 * 1024 * 1024), 0);  // 100 MB, sparse
    close(fd);
  });
  answers("100 MB file");
  replace([](const std::string& target) {
    std::string garbage(4096, '\0');
    for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 131 + 7) % 256);
    write_file(target, garbage);
  });
  answers("binary garbage");
  const std::string log = running.log();
  // One warning per change: the FIFO and the directory, the oversized file, the garbage.
  EXPECT_EQ(occurrences(log, "not a regular file"), 2u) << log;
  EXPECT_EQ(occurrences(log, "is larger than"), 1u) << log;
  EXPECT_EQ(occurrences(log, "lines that are not key=\"value\""), 1u) << log;
  EXPECT_EQ(fulls(), fulls_before) << "an odd annotations file triggered a backup";
  // Back to a real file with a new value: the trigger works again.
  write_annotations_like_kubelet(podinfo, key + "=\"v2\"\n");
  EXPECT_TRUE(eventually([&] { return fulls() == fulls_before + 1; }, std::chrono::seconds(120)))
      << running.log();
}

// A few hundred control connections held open against a limit of 256 descriptors (and once
// against 48, so that accept really fails with EMFILE): the clients answer or time out with a
// clear message, never hang, and everything works again once the connections close.
TEST_F(ResilienceIntegration, DescriptorExhaustionDoesNotKillTheControlSocket) {
  for (const int limit : {256, 48}) {
    SCOPED_TRACE("RLIMIT_NOFILE " + std::to_string(limit));
    const auto agent = agent_config("fd-" + std::to_string(limit), "manual:\n  annotations_file: \"\"\n");
    const std::string nofile = "--nofile=" + std::to_string(limit) + ":" + std::to_string(limit);
    RunningAgent running(agent.config, {"prlimit", nofile, "--"});
    const std::string socket = agent.dir + "/agent.sock";
    // Connections the agent has accepted or that wait in its backlog; once it stops taking
    // them, a few more attempts time out and the test holds what it has.
    std::vector<int> held;
    for (int i = 0, failed = 0; i < 300 && failed < 5; ++i) {
      const int fd = connect_unix_waiting(socket, std::chrono::seconds(1));
      if (fd < 0)
        ++failed;
      else
        held.push_back(fd);
    }
    const auto begin = std::chrono::steady_clock::now();
    const auto status = run_agent({"status", "--config", agent.config});
    EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(40));
    if (status.exit_code != 0) {
      EXPECT_NE(status.stderr_text.find("did not"), std::string::npos) << status.stderr_text;
    }
    EXPECT_EQ(http_get(agent.http_port, "/healthz").status, 200) << running.log();
    for (int fd : held)
      if (fd >= 0) close(fd);
    EXPECT_TRUE(eventually(
        [&] {
          return run_agent({"status", "--config", agent.config}).exit_code == 0;
        },
        std::chrono::seconds(30)))
        << running.log();
    const auto backup = run_agent({"backup", "--type", "incr", "--wait", "--config", agent.config});
    EXPECT_EQ(backup.exit_code, 0) << backup.stderr_text << running.log();
    if (limit == 48) {
      EXPECT_TRUE(running.log_contains("cannot accept connections")) << "EMFILE was never hit\n"
                                                                     << running.log();
    }
  }
}

}  // namespace
}  // namespace agent::testing
