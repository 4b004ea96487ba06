#include "probes/probes.hpp"

namespace agent::probes {

ProbeAnswer liveness(const AgentHealth& health, std::chrono::steady_clock::time_point now) {
  const auto silence = std::chrono::duration_cast<std::chrono::seconds>(now - health.last_loop_heartbeat);
  if (silence > kMaxLoopSilence)
    return {false, "event loop silent for " + std::to_string(silence.count()) + " s\n"};
  // A broken repository is not a reason to restart the agent: readiness says so instead.
  return {true, "ok\n"};
}

ProbeAnswer readiness(const AgentHealth& health) {
  if (!health.config_loaded) return {false, "configuration not loaded\n"};
  if (!health.repository_readable) return {false, "repository not read yet\n"};
  if (!*health.repository_readable)
    return {false, "repository unreadable: " + health.repository_error + "\n"};
  return {true, "ok\n"};
}

}  // namespace agent::probes
