// Fuzz target: the agent's YAML configuration (load_config_text), as a ConfigMap or an
// operator's file supplies it. Every problem must come back as a located issue, never as an
// exception or a crash. A configuration that loads without issues must hold what `agent run`
// then takes for granted: the schedules' time zone exists, each schedule parses, and
// http.listen ends in a port that std::stoi reads within 1..65535.
#include <date/tz.h>

#include <string>

#include "config/config.hpp"
#include "fuzz_check.hpp"
#include "jobs/cron.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(agent::fuzz::as_text(data, size));
  const auto load = agent::load_config_text(text, "fuzz.yaml", {});
  if (!load.issues.empty()) {
    for (const auto& issue : load.issues) {
      agent::fuzz::check(issue.line >= 0, "an issue on a negative line", issue.describe());
      agent::fuzz::check(!issue.message.empty(), "an issue without a message");
    }
    (void)agent::config_error(load.issues).describe();
    return 0;
  }
  const auto& config = load.config;
  try {
    (void)date::locate_zone(config.schedules.timezone);
  } catch (const std::exception&) {
    agent::fuzz::fail("a valid configuration names a time zone that does not exist",
                      config.schedules.timezone);
  }
  for (const auto* schedule : {&config.schedules.full, &config.schedules.diff, &config.schedules.incr})
    if (!schedule->empty())
      agent::fuzz::check(agent::parse_cron(*schedule).ok(),
                         "a valid configuration has a schedule that does not parse", *schedule);
  if (!config.http.listen.empty()) {
    const auto colon = config.http.listen.rfind(':');
    agent::fuzz::check(colon != std::string::npos, "a valid http.listen without a port", config.http.listen);
    int port = 0;
    try {
      port = std::stoi(config.http.listen.substr(colon + 1));
    } catch (const std::exception&) {
      agent::fuzz::fail("a valid http.listen whose port std::stoi cannot read", config.http.listen);
    }
    agent::fuzz::check(port >= 1 && port <= 65535, "a valid http.listen with a port out of range",
                       config.http.listen);
  }
  return 0;
}
