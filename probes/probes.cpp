#include "probes/probes.hpp"

namespace agent::probes {
namespace {

long long seconds_between(std::chrono::steady_clock::time_point from,
                          std::chrono::steady_clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::seconds>(to - from).count();
}

std::optional<std::string> silent_loop(const AgentHealth& health, std::chrono::steady_clock::time_point now) {
  const auto silence = now - health.last_loop_heartbeat;
  if (silence <= kMaxLoopSilence) return std::nullopt;
  return "event loop silent for " + std::to_string(seconds_between(health.last_loop_heartbeat, now)) + " s";
}

// One line for humans about the repository; never a reason to fail a probe.
std::string repository_line(const AgentHealth& health) {
  if (!health.repository_readable) return "repository: not read yet\n";
  if (*health.repository_readable) return "repository: readable\n";
  return "repository: unreadable: " + health.repository_error +
         " (reported by agent_repository_info_success and the alert AgentRepositoryUnreadable, not by "
         "the probes)\n";
}

std::string degraded_lines(const AgentHealth& health) {
  std::string lines;
  for (const auto& part : health.degraded) lines += "degraded: " + part + "\n";
  return lines;
}

}  // namespace

ProbeAnswer liveness(const AgentHealth& health, std::chrono::steady_clock::time_point now) {
  if (auto silent = silent_loop(health, now)) return {false, *silent + "\n"};
  std::string stuck;
  std::string running;
  for (const auto& job : health.jobs) {
    const auto quiet = seconds_between(job.last_progress, now);
    if (job.stuck_after.count() > 0 && now - job.last_progress > job.stuck_after) {
      stuck += job.description + " stuck: no progress for " + std::to_string(quiet) + " s (deadline " +
               std::to_string(job.stuck_after.count()) + " s)\n";
    } else {
      running += "running: " + job.description + ", last progress " + std::to_string(quiet) + " s ago\n";
    }
  }
  if (!stuck.empty()) return {false, stuck};
  // A broken repository is not a reason to restart the agent: the metrics and alerts say so.
  return {true, "ok\n" + running + repository_line(health) + degraded_lines(health)};
}

ProbeAnswer readiness(const AgentHealth& health, std::chrono::steady_clock::time_point now) {
  if (!health.config_loaded) return {false, "configuration not loaded\n"};
  if (auto silent = silent_loop(health, now)) return {false, *silent + "\n"};
  // Deliberately not the repository: a NotReady sidecar makes the database pod NotReady.
  return {true, "ok\n" + repository_line(health) + degraded_lines(health)};
}

}  // namespace agent::probes
