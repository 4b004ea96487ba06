#pragma once
// `agent run`: the long-running sidecar. One Boost.Asio event loop owns the state: triggers
// (schedules, the annotation watcher, the control socket) only enqueue; the queue decides
// what runs; one worker thread runs the blocking pgBackRest job; its result comes back to the
// loop, which records it and starts the next. SIGTERM/SIGINT drain: no new work, the running
// job gets run.grace_seconds, then it is stopped.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "daemon/control_server.hpp"
#include "daemon/repository_collector.hpp"
#include "daemon/schedule_timer.hpp"
#include "exec/process.hpp"
#include "http/http_server.hpp"
#include "jobs/annotation_trigger.hpp"
#include "jobs/job_queue.hpp"
#include "jobs/request_journal.hpp"
#include "metrics/agent_metrics.hpp"
#include "pg/session.hpp"
#include "pipelines/backup_pipeline.hpp"
#include "pipelines/dump_pipeline.hpp"

namespace agent {

class AgentDaemon final : public ControlHandler {
 public:
  explicit AgentDaemon(AgentConfig config);
  ~AgentDaemon() override;
  // Runs until SIGTERM or SIGINT; returns the exit code.
  int run();

  // ControlHandler
  nlohmann::json status() override;
  void backup(const BackupCommand& command, ControlReply reply) override;
  void dump(const DumpCommand& command, ControlReply reply) override;

 private:
  Status start();
  void open_state();
  void rerun_leftover_requests();
  // `journal_id`: the request is already in the journal (a leftover of a previous run).
  void enqueue(const BackupRequest& request, std::optional<ControlReply> waiter = std::nullopt,
               bool wait_for_result = false, std::optional<std::uint64_t> journal_id = std::nullopt);
  void journal_finished(std::uint64_t job_id);
  void stop_job_now(const char* why);
  void exit_if_still_busy();
  void start_next_job();
  void on_job_finished(BackupResult result);
  void worker_loop();
  void on_signal(int signal_number);
  void finish_shutdown_if_idle();
  void on_dump_finished(Result<DumpSummary> summary, ControlReply reply);
  void count_skip(const std::string& reason, std::uint64_t count = 1);
  void update_queue_metrics();
  void beat();
  void refresh_component_metrics();
  HttpAnswer answer_http(std::string_view method, std::string_view target);

  AgentConfig config_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer grace_timer_;
  SystemClock clock_;
  std::unique_ptr<ProcessRunner> runner_;
  std::unique_ptr<PgConnector> connector_;
  JobQueue queue_;
  std::vector<std::unique_ptr<ScheduleTimer>> schedules_;
  std::optional<HandledValues> handled_;
  // Requests that must survive a restart; none when state_dir is unusable (state_problem_).
  std::optional<RequestJournal> journal_;
  std::map<std::uint64_t, std::vector<std::uint64_t>> journal_ids_by_job_;
  std::string state_problem_;
  std::deque<nlohmann::json> abandoned_;  // requests a previous run left and that were given up
  std::unique_ptr<AnnotationTrigger> annotation_;
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<AgentMetrics> metrics_;
  std::unique_ptr<RepositoryCollector> collector_;  // after metrics_: stops before it goes
  std::unique_ptr<HttpServer> http_;
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer hard_stop_timer_;               // ends the process when a job does not stop
  std::chrono::steady_clock::time_point last_heartbeat_{};  // loop thread only
  std::chrono::system_clock::time_point started_at_;
  bool stopping_ = false;

  // Loop-thread state for status and waiters.
  std::map<std::uint64_t, std::vector<ControlReply>> waiters_;
  std::deque<BackupResult> recent_;               // newest first
  std::map<std::string, std::uint64_t> skipped_;  // by reason code
  std::optional<std::chrono::system_clock::time_point> running_since_;

  // Hand-over to the worker thread.
  std::mutex mutex_;
  std::condition_variable wake_worker_;
  std::optional<QueuedBackup> job_for_worker_;
  std::unique_ptr<CancelToken> job_cancel_;  // the running job's, to stop it on shutdown
  bool job_stopped_by_shutdown_ = false;     // loop thread: its requests stay in the journal
  bool hard_stop_armed_ = false;             // loop thread: armed once, never pushed back
  std::atomic<bool> job_done_{false};        // the worker finished the running job (result posted)
  std::atomic<bool> dump_done_{false};       // the dump thread finished (result posted)
  // steady_clock nanoseconds of the running backup's last sign of life (a step, an output line).
  std::atomic<std::int64_t> job_progress_ns_{0};
  bool worker_exit_ = false;
  std::thread worker_;

  // Dumps run beside backups (a restore takes no pgBackRest lock), one at a time.
  struct DumpRecord {
    std::uint64_t id = 0;
    std::string target;
    std::string output;
    std::chrono::system_clock::time_point started{};
    nlohmann::json outcome;  // set when it ends
  };
  std::uint64_t next_dump_id_ = 1;
  std::optional<DumpRecord> dump_running_;
  std::optional<DumpRecord> dump_last_;
  std::unique_ptr<CancelToken> dump_cancel_;
  std::thread dump_thread_;
};

nlohmann::json backup_result_json(const BackupResult& result);

}  // namespace agent
