#pragma once
// What Kubernetes' probes mean for the agent, as pure functions over a snapshot of its state.
//
// Liveness fails only when a restart would help: the event loop stopped turning, or a running
// job made no progress for longer than its own deadline allows (its timeouts should have ended
// it long before, so something is wedged).
//
// Readiness says only that the agent is up: configuration loaded and the event loop turning.
// It never looks at the repository. The agent runs as a sidecar, and a pod is Ready only when
// every container is, so a readiness that failed on a repository problem would take the
// database pod out of its Services and stall the operator's rolling updates: a backup problem
// would become a database outage. The repository's health lives in the metrics
// (agent_repository_info_success), `agent status` and the alert AgentRepositoryUnreadable; the
// probe bodies mention it for humans without failing on it.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace agent::probes {

// A job the agent is running (a backup, a dump), as liveness sees it.
struct RunningJob {
  std::string description;  // named in /healthz's body, e.g. "backup job 12 (full)"
  // When the job started, or when it last showed progress (whichever the daemon knows).
  std::chrono::steady_clock::time_point last_progress{};
  // No progress for longer than this means the job is stuck; zero or less: no deadline.
  std::chrono::seconds stuck_after{0};
};

struct AgentHealth {
  bool config_loaded = false;
  std::chrono::steady_clock::time_point last_loop_heartbeat{};
  std::vector<RunningJob> jobs;  // the jobs running now
  // For humans only: the probe bodies mention the last `pgbackrest info`, neither probe fails
  // on it. Nothing before the first read.
  std::optional<bool> repository_readable;
  std::string repository_error;
  // Parts that are off because of broken state or config ("annotation_trigger: disabled: ...");
  // named in the bodies for humans, never a reason to fail a probe.
  std::vector<std::string> degraded;
};

struct ProbeAnswer {
  bool ok = false;
  std::string body;
};

// The loop beats every few seconds; silence longer than this means it is stuck.
constexpr std::chrono::seconds kMaxLoopSilence{30};

ProbeAnswer liveness(const AgentHealth& health, std::chrono::steady_clock::time_point now);
ProbeAnswer readiness(const AgentHealth& health, std::chrono::steady_clock::time_point now);

}  // namespace agent::probes
