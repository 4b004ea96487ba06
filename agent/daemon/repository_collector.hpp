#pragma once
// Reads what the metrics report about the outside world, off the event loop: the
// repository (`pgbackrest info`, with its timeout) and the live server's pg_stat_archiver.
// At start and every metrics.refresh_seconds (a backup's own result carries the read after it);
// while the agent's backup runs, its progress every metrics.progress_seconds.
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "exec/process.hpp"
#include "metrics/agent_metrics.hpp"
#include "pg/session.hpp"

namespace agent {

class RepositoryCollector {
 public:
  RepositoryCollector(const AgentConfig& config, ProcessRunner& runner, PgConnector& connector,
                      AgentMetrics& metrics);
  ~RepositoryCollector();
  void start();
  void stop();
  // The last read of the repository: nothing before the first, else whether it worked.
  std::optional<bool> repository_readable() const;
  std::string repository_error() const;

 private:
  void loop();
  void collect();
  void collect_progress();
  void collect_drills();

  const AgentConfig& config_;
  ProcessRunner& runner_;
  PgConnector& connector_;
  AgentMetrics& metrics_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::optional<bool> readable_;
  std::string error_;
  CancelToken cancel_;
  std::thread thread_;
  std::set<std::string> counted_drills_;  // manifests already counted in agent_drills_total
};

}  // namespace agent
