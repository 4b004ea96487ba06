#pragma once
// What runs, and when: the one queue of backups and drills (every trigger enqueues here), the
// request journal's bookkeeping, dumps beside backups (one at a time; a restore takes no
// pgBackRest lock), drills in the same scratch slot as dumps (never beside one; see
// job_queue.hpp for when beside a backup), waiting clients, results into the metrics, and the shutdown's
// drain, grace period and hard stop. A drill's result goes onto its backup set (drill.annotate)
// in the backup slot, before the next queued backup: `pgbackrest annotate` takes the stanza's
// backup lock. Jobs run in JobSlots; everything here runs on the loop thread.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "daemon/control_api.hpp"
#include "daemon/control_replies.hpp"
#include "daemon/job_slot.hpp"
#include "daemon/loop_timers.hpp"
#include "exec/process.hpp"
#include "jobs/job_queue.hpp"
#include "jobs/job_result.hpp"
#include "jobs/request_journal.hpp"
#include "metrics/agent_metrics.hpp"
#include "pg/copy_session.hpp"
#include "pg/session.hpp"
#include "pipelines/drill_annotation.hpp"
#include "pipelines/drill_pipeline.hpp"
#include "pipelines/dump_pipeline.hpp"
#include "probes/probes.hpp"

namespace agent {

// The seams jobs run with: real ones in `agent run`, fakes in the orchestration tests.
struct JobServices {
  ProcessRunner& runner;
  PgConnector& connector;
  std::function<std::unique_ptr<CopyConnector>()> make_copier;
  Clock& clock;
  LoopTimers& timers;
  // The hard stop: ends the process when a job does not stop in time (std::_Exit in `agent run`).
  std::function<void(int exit_code)> exit_now;
  // Sees every finished backup job, on the loop thread (the daemon keeps state_dir's history).
  std::function<void(const BackupResult&)> on_finished = {};
};

class JobRunner {
 public:
  // After being told to stop (grace over, second signal), how long a job may take before the
  // process exits anyway. Its children get their death signal when it does.
  static constexpr std::chrono::seconds kHardStopAfter{8};

  // `journal`: where triggered requests are written down; null when state_dir is unusable.
  JobRunner(boost::asio::io_context& io, std::shared_ptr<const AgentConfig> config, JobServices services,
            AgentMetrics& metrics, RequestJournal* journal);
  // A reloaded configuration: jobs started from now on use it; a running job keeps its own.
  void set_config(std::shared_ptr<const AgentConfig> config) { config_ = std::move(config); }

  // A trigger's or a client's request. `waiter` hears backup-accepted (and backup-finished when
  // `wait_for_result`); `journal_id`: already in the journal (a leftover of a previous run).
  void enqueue(const BackupRequest& request, std::optional<ControlReply> waiter = std::nullopt,
               bool wait_for_result = false, std::optional<std::uint64_t> journal_id = std::nullopt);
  // What the previous run left in the journal: run again once, or reported as abandoned.
  void rerun_leftovers();
  void dump(const DumpCommand& command, ControlReply reply);
  // `agent dump --stop`: stops the copy a --keep-running dump keeps up; `reply` hears the dump's
  // dump-finished once the copy is stopped and the scratch directory cleaned, or a refusal.
  void stop_kept_dump(ControlReply reply);
  // schedules.drill's request: the drill waits in the queue (job_queue.hpp's rules) and runs
  // in the scratch slot.
  void enqueue_drill(const DrillRequest& request);
  // `agent drill` through the control socket: checked now, then queued like a scheduled drill
  // with the caller's arguments; `reply` hears drill-accepted, its steps and drill-finished.
  // Refused while another drill waits or runs, or a dump has the scratch directory.
  void drill(const DrillCommand& command, ControlReply reply);

  // Shutdown: nothing new starts; a running dump is stopped at once, a running backup gets
  // `grace`, then stop_now. `on_idle` runs once nothing is running any more.
  void drain(std::chrono::seconds grace, std::function<void()> on_idle);
  // Tells the running jobs to stop; exits the process if they have not within kHardStopAfter.
  void stop_now(const char* why);
  bool stopping() const { return stopping_; }

  // For the status view and the probes.
  struct DumpRecord {
    std::uint64_t id = 0;
    std::string target;
    std::string output;
    std::chrono::system_clock::time_point started{};
    nlohmann::json outcome;     // its dump-finished reply, when it ends
    bool keep_running = false;  // --keep-running was asked for
    std::optional<DumpKeptReply> kept{};
    // When the copy was kept: the dump was written then (its metrics' completion time).
    std::optional<std::chrono::system_clock::time_point>
        kept_at{};                                // the copy is up for inspection (dump-kept)
    std::shared_ptr<CancelToken> stop_keeping{};  // fired by `agent dump --stop`
    std::vector<ControlReply> stop_waiters{};     // `agent dump --stop` clients
  };
  const JobQueue& queue() const { return queue_; }
  std::optional<std::chrono::system_clock::time_point> running_since() const { return running_since_; }
  const std::deque<BackupResult>& recent() const { return recent_; }  // newest first
  const std::map<std::string, std::uint64_t>& skipped() const { return skipped_; }
  const std::deque<nlohmann::json>& abandoned() const { return abandoned_; }
  const std::optional<DumpRecord>& dump_running() const { return dump_running_; }
  const std::optional<DumpRecord>& dump_last() const { return dump_last_; }
  struct DrillRecord {
    std::uint64_t id = 0;
    std::string reason;
    std::chrono::system_clock::time_point started{};
    std::string step;  // the step running now
  };
  const std::optional<DrillRecord>& drill_running() const { return drill_running_; }
  // A drill's result being annotated on its set (in the backup slot), and how many wait.
  const std::optional<DrillAnnotation>& annotation_running() const { return annotating_; }
  std::size_t annotations_waiting() const { return annotations_.size(); }
  std::vector<probes::RunningJob> running_jobs() const;

 private:
  void start_next_job();
  bool start_next_annotation();
  void on_annotation_finished(const DrillAnnotation& annotation, const Status& status);
  bool backup_slot_in_use() const { return queue_.running().has_value() || annotating_.has_value(); }
  void on_backup_finished(BackupResult result);
  void on_dump_finished(Result<DumpSummary> summary, ControlReply reply);
  void on_dump_kept(std::uint64_t id, const KeptCopy& kept, const ControlReply& reply);
  Error scratch_busy_with_dump() const;
  void start_next_drill();
  void on_drill_step(const std::string& step, const std::string& state, double seconds);
  void on_drill_finished(const DrillReport& report);
  void journal_finished(std::uint64_t job_id);
  void count_skip(const std::string& reason, std::uint64_t count = 1);
  void update_queue_metrics();
  void exit_if_still_busy();
  void finish_if_idle();
  void answer_waiters(std::uint64_t job_id, const ControlReplyMessage& message);

  boost::asio::io_context& io_;
  std::shared_ptr<const AgentConfig> config_;
  JobServices services_;
  AgentMetrics& metrics_;
  RequestJournal* journal_;
  JobQueue queue_;
  JobSlot backup_slot_;
  JobSlot scratch_slot_;  // dumps and drills: one job on the scratch directory at a time
  std::unique_ptr<LoopTimer> grace_timer_;
  std::unique_ptr<LoopTimer> hard_stop_timer_;

  std::map<std::uint64_t, std::vector<std::uint64_t>> journal_ids_by_job_;
  std::map<std::uint64_t, std::vector<ControlReply>> waiters_;
  std::deque<BackupResult> recent_;
  std::map<std::string, std::uint64_t> skipped_;  // by reason code
  std::deque<nlohmann::json> abandoned_;          // requests a previous run left and that were given up
  std::optional<std::chrono::system_clock::time_point> running_since_;
  std::uint64_t next_dump_id_ = 1;
  std::optional<DumpRecord> dump_running_;
  std::optional<DumpRecord> dump_last_;
  std::optional<DrillRecord> drill_running_;
  // An `agent drill` client: what it asked for, and where its replies go until the drill ends.
  struct DrillClient {
    DrillArguments arguments;
    ControlReply reply;
  };
  std::map<std::uint64_t, DrillClient> drill_clients_;  // by job; a scheduled drill has none
  std::deque<DrillAnnotation> annotations_;             // drill results waiting for the backup slot
  std::optional<DrillAnnotation> annotating_;           // the one running in the backup slot
  bool stopping_ = false;
  bool job_stopped_by_shutdown_ = false;  // its requests stay in the journal
  bool hard_stop_armed_ = false;          // armed once, never pushed back
  std::function<void()> on_idle_;
};

}  // namespace agent
