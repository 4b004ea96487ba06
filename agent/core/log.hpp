#pragma once
// Logging: readable text on a terminal, JSON lines when asked (log.format: json).
// Every logger is named after its component ("dump", "pgbackrest", "postgres", ...), and
// the name is the "component" field of a JSON line, so child output stays attributable.
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace agent::log {

enum class Format { text, json };

// Configures the process-wide sink (always stderr: stdout may carry a dump).
void setup(Format format, spdlog::level::level_enum level);
std::shared_ptr<spdlog::logger> get(const std::string& component);

}  // namespace agent::log
