#include "http/router.hpp"

namespace agent {

HttpAnswer route(std::string_view method, std::string_view target, const RouteState& state) {
  if (method != "GET" && method != "HEAD") return {405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", state.scrape()};
  if (path == "/healthz") {
    const auto answer = probes::liveness(state.health, state.now);
    return {answer.ok ? 200u : 503u, "text/plain; charset=utf-8", answer.body};
  }
  if (path == "/readyz") {
    const auto answer = probes::readiness(state.health, state.now);
    return {answer.ok ? 200u : 503u, "text/plain; charset=utf-8", answer.body};
  }
  return {404, "text/plain; charset=utf-8", "not found; try /metrics, /healthz or /readyz\n"};
}

}  // namespace agent
