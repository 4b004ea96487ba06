#pragma once
// `agent status`: what the daemon is doing, read from its parts on the loop thread.
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "daemon/job_runner.hpp"
#include "daemon/triggers.hpp"
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
};

nlohmann::json status_json(const StatusSources& sources);

}  // namespace agent
