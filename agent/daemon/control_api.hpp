#pragma once
// The control socket's requests as types, with one strict JSON mapping shared by the server
// (`agent run`) and its clients (`agent backup`, `agent status`, `agent dump`, `agent drill`). Whatever a
// peer sends is checked field by field before anything acts on it: the line's size, that it
// is one JSON object, the command, every key known to that command, each value's type and
// range. A request that fails any check is refused with a message naming the field.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

#include "core/error.hpp"
#include "jobs/backup_request.hpp"
#include "pipelines/drill_job.hpp"
#include "pipelines/dump_job.hpp"

namespace agent {

// A request line, newline excluded, is at most this long; replies may be longer (status).
constexpr std::size_t kControlMaxRequestBytes = 16 * 1024;
// No string field of a request is longer (paths, labels, database names, target times).
constexpr std::size_t kControlMaxFieldBytes = 4096;

struct StatusCommand {};

struct BackupCommand {
  BackupType type = BackupType::full;
  bool wait = false;  // reply again when the job has finished
  int repo = 0;       // 1..256: --repo; 0: the default repository
};

struct DumpCommand {
  DumpArguments arguments;
};

// `agent dump --stop`: stop the copy a --keep-running dump left up.
struct DumpStopCommand {};

// `agent drill`: queued in the running agent like a scheduled drill, with the caller's arguments.
struct DrillCommand {
  DrillArguments arguments;
};

using ControlRequest = std::variant<StatusCommand, BackupCommand, DumpCommand, DumpStopCommand, DrillCommand>;

// Parses one request line. Errors are ErrorKind::usage and name the offending field.
Result<ControlRequest> parse_control_request(std::string_view line);
// The request as the client sends it (parse_control_request reads it back unchanged).
nlohmann::json control_request_json(const ControlRequest& request);

}  // namespace agent
