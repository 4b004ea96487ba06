#pragma once
// `agent run`: the long-running sidecar, wired together here and nowhere else. One Boost.Asio
// event loop owns the state. Triggers (schedules, the annotation watcher) and the control
// socket only enqueue; the JobRunner decides what runs and runs it in job slots off the loop;
// the status view, the probes and the metrics read the parts. SIGTERM/SIGINT drain: no new
// work, the running backup gets run.grace_seconds, then it is stopped.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "daemon/config_reload.hpp"
#include "daemon/control_server.hpp"
#include "daemon/job_runner.hpp"
#include "daemon/loop_timers.hpp"
#include "daemon/repository_collector.hpp"
#include "daemon/triggers.hpp"
#include "exec/process.hpp"
#include "http/http_server.hpp"
#include "jobs/job_history.hpp"
#include "jobs/request_journal.hpp"
#include "metrics/agent_metrics.hpp"
#include "pg/copy_session.hpp"
#include "pg/session.hpp"

namespace agent {

// The daemon's seams. Each one left empty is the real thing; the orchestration tests fill
// them with fakes.
struct DaemonSeams {
  ProcessRunner* runner = nullptr;
  PgConnector* connector = nullptr;
  std::function<std::unique_ptr<CopyConnector>()> make_copier;
  Clock* clock = nullptr;
  LoopTimers* timers = nullptr;
  std::function<void(int exit_code)> exit_now;  // default: flush the log, std::_Exit
  bool handle_signals = true;                   // SIGTERM/SIGINT drain the daemon, SIGHUP reloads
  // Reads the config file again (`agent run`: the file it started with, and its overrides);
  // none: the config cannot be reloaded. `config_file`: watched for changes when not empty.
  std::function<ConfigLoad()> reload_config;
  std::string config_file;
};

class AgentDaemon final : public ControlHandler {
 public:
  explicit AgentDaemon(AgentConfig config, DaemonSeams seams = {});
  ~AgentDaemon() override;
  // Runs until SIGTERM or SIGINT; returns the exit code.
  int run();
  // For the tests, which turn the loop themselves: start() and request_stop() are what run()
  // and a signal do.
  Status start();
  void request_stop(int signal_number);
  // Reads the config again and applies it, or keeps the running one and says why.
  void reload(const std::string& why);
  boost::asio::io_context& io() { return io_; }
  AgentMetrics& metrics() { return *metrics_; }

  // ControlHandler
  nlohmann::json status() override;
  void backup(const BackupCommand& command, ControlReply reply) override;
  void dump(const DumpCommand& command, ControlReply reply) override;
  void dump_stop(ControlReply reply) override;
  void drill(const DrillCommand& command, ControlReply reply) override;

 private:
  void open_state();
  void on_signal(int signal_number);
  Result<std::unique_ptr<Triggers>> open_triggers(std::shared_ptr<const AgentConfig> config);
  void finish_shutdown();
  void arm_shutdown_watchdog(std::chrono::seconds deadline);
  void beat();
  void refresh_component_metrics();
  // The schedules' expected intervals and the window minimum, for the alerts (loop thread).
  void refresh_schedule_metrics();
  HttpAnswer answer_http(std::string_view method, std::string_view target);

  std::shared_ptr<const AgentConfig> config_;  // replaced whole by a reload; jobs keep their own
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  // The real seams, when not given.
  std::unique_ptr<ProcessRunner> own_runner_;
  std::unique_ptr<PgConnector> own_connector_;
  std::unique_ptr<Clock> own_clock_;
  std::unique_ptr<LoopTimers> own_timers_;
  DaemonSeams seams_;
  std::unique_ptr<AgentMetrics> metrics_;
  // state_dir: what must survive a restart. Without it, no journal and a disabled annotation trigger.
  std::string state_problem_;
  std::optional<RequestJournal> journal_;
  std::optional<JobHistory> history_;  // state_dir/history.json, when state_dir is usable
  std::unique_ptr<JobRunner> jobs_;
  std::unique_ptr<Triggers> triggers_;
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<RepositoryCollector> collector_;  // after metrics_: stops before it goes
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<ConfigFileWatch> config_watch_;
  std::unique_ptr<LoopTimer> heartbeat_timer_;
  std::chrono::steady_clock::time_point last_heartbeat_{};  // loop thread only
  std::chrono::system_clock::time_point started_at_;
  bool stopping_ = false;
  // What the exported intervals were computed for: recomputed hourly, and when these change.
  const Triggers* intervals_for_ = nullptr;
  int intervals_default_repo_ = 0;
  std::chrono::system_clock::time_point intervals_at_{};

  // Ends the process when a shutdown takes too long, whatever the loop is blocked on.
  std::mutex watchdog_mutex_;
  std::condition_variable watchdog_wake_;
  bool watchdog_cancelled_ = false;
  std::thread watchdog_;
};

}  // namespace agent
