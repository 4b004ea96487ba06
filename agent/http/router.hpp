#pragma once
// HTTP routing as a pure function of the request line and a snapshot of the agent's state, so
// it is tested without sockets. No endpoint starts work.
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "probes/probes.hpp"

namespace agent {

struct HttpAnswer {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

struct RouteState {
  probes::AgentHealth health;
  std::chrono::steady_clock::time_point now;
  std::function<std::string()> scrape;  // the metrics text, computed only for /metrics
};

HttpAnswer route(std::string_view method, std::string_view target, const RouteState& state);

}  // namespace agent
