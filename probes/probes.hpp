#pragma once
// What Kubernetes' probes mean for the agent, as pure functions over a snapshot of its state.
// Liveness fails only when a restart would help (the event loop stopped turning); readiness
// says whether the agent can do its job (config loaded, repository readable).
#include <chrono>
#include <optional>
#include <string>

namespace agent::probes {

struct AgentHealth {
  bool config_loaded = false;
  std::chrono::steady_clock::time_point last_loop_heartbeat{};
  std::optional<bool> repository_readable;  // the last `pgbackrest info`; nothing before the first
  std::string repository_error;
};

struct ProbeAnswer {
  bool ok = false;
  std::string body;
};

// The loop beats every few seconds; silence longer than this means it is stuck.
constexpr std::chrono::seconds kMaxLoopSilence{30};

ProbeAnswer liveness(const AgentHealth& health, std::chrono::steady_clock::time_point now);
ProbeAnswer readiness(const AgentHealth& health);

}  // namespace agent::probes
