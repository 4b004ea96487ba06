#pragma once
// `agent status`: what the daemon is doing, read from its parts on the loop thread.
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "daemon/job_runner.hpp"
#include "daemon/triggers.hpp"
#include "jobs/job_history.hpp"
#include "jobs/request_journal.hpp"
#include "metrics/agent_metrics.hpp"

namespace agent {

struct StatusSources {
  const AgentConfig& config;
  const JobRunner& jobs;
  const Triggers& triggers;
  const RequestJournal* journal;  // null when requests are not durable
  const std::string& state_problem;
  std::chrono::system_clock::time_point started_at;
  AgentMetrics* metrics = nullptr;  // the repositories as the last reads left them
  // The finished jobs kept in state_dir, this run's and earlier runs'; null: only this run's.
  const JobHistory* history = nullptr;
};

nlohmann::json status_json(const StatusSources& sources);

// A finished backup job as `agent status` lists it under "recent" (and state_dir's history
// keeps it): its request, outcome, start, end and the backup it made (label, size).
nlohmann::json recent_result_json(const BackupResult& result);

// One repository as `agent status` and `agent window` show it: readable or why not, its newest
// backup of each type, and its recoverable window ({start, end, end_source}, null when no
// backup is known; end_source "wal": the last archived WAL, "backup": the newest backup's stop).
nlohmann::json repository_summary_json(const RepositorySummary& repo);

// "1.4 MiB of 3.0 MiB (45.4%)": `agent status`'s line for a running backup's progress (the
// reply's running.progress: bytes_done, bytes_total, percent) and for the restore of a running
// dump or drill (dump.running.restore_progress, drill.running.restore_progress: the same keys).
std::string backup_progress_text(nlohmann::json progress);

}  // namespace agent
