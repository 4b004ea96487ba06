#pragma once
// The control socket's replies as types, with one strict JSON mapping shared by the server
// (`agent run`) and its clients. Every reply line is one JSON object with an "event":
//
//   heartbeat        a waiting client still has an agent
//   refused          nothing was done: error, hint, exit_code (also "ok": false)
//   status           `agent status`: the status document
//   backup-accepted  admission (queued | merged | superseded | refused), job_id, reason
//   backup-finished  result: the job's report
//   abandoned        the agent stopped before the job ended (it runs again after the restart)
//   dump-accepted    job_id
//   dump-step        step, state, seconds
//   dump-kept        --keep-running: the paused copy is up; socket_dir, port, user, database,
//                    pod, since, until (the client of the dump ends here, the job goes on)
//   dump-finished    ok and summary, or not ok and error, hint, exit_code
//   drill-accepted   job_id, reason (what it waits for, or "")
//   drill-step       step, state, seconds
//   drill-finished   ok and summary (result passed or failed, with its exit code), or not ok
//                    and error, hint, exit_code (the drill could not run)
//
// A client reads each line with parse_control_reply: a line that is not one of these, a field
// missing or of the wrong type, is an error naming it, never a default or a crash.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>

#include "core/error.hpp"
#include "jobs/job_result.hpp"

namespace agent {

struct ReplyError {
  std::string error;
  std::string hint;
  int exit_code = 1;
};
ReplyError reply_error(const Error& error);

struct HeartbeatReply {};
struct RefusedReply {
  ReplyError error;
};
struct StatusReply {
  nlohmann::json status;  // the status document (daemon/status_view.hpp)
};
struct BackupAcceptedReply {
  std::string admission;  // queued | merged | superseded | refused
  std::uint64_t job_id = 0;
  std::string reason;
};
// A finished backup as clients and `agent status` show it.
struct BackupReport {
  std::uint64_t job_id = 0;
  std::string type;
  std::string trigger;
  std::string reason;
  std::string requested_at;
  std::string outcome;  // succeeded | failed | skipped
  std::string message;
  int pgbackrest_exit_code = -1;
  int exit_code = 0;  // what `agent backup` exits with for this outcome
  std::string started_at;
  double seconds = 0;
  int repo = 0;  // the repository it backed up into; 0: not known
};
BackupReport backup_report(const BackupResult& result);
nlohmann::json backup_report_json(const BackupReport& report);

struct BackupFinishedReply {
  BackupReport result;
};
struct AbandonedReply {
  std::string reason;
};
struct DumpAcceptedReply {
  std::uint64_t job_id = 0;
};
// A step of the client's dump or drill (event dump-step or drill-step).
struct StepReply {
  std::string job;  // dump | drill
  std::string step;
  std::string state;  // started | done | failed
  double seconds = 0;
};
struct DumpKeptReply {
  std::string socket_dir;
  int port = 0;
  std::string user;
  std::string database;
  std::string pod;
  std::string since;  // ISO 8601 UTC
  std::string until;  // the deadline
};
nlohmann::json dump_kept_json(const DumpKeptReply& kept);  // the reply's fields, without "event"
// How far the dump's restore is (pgBackRest's per-file lines): at most every 10 s, and at the end.
struct DumpProgressReply {
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0;
};
struct DumpWritten {
  std::string output;
  std::string manifest;
  std::uint64_t bytes = 0;
  std::string checksum;
  std::string backup_set;
  int repo = 0;  // the repository the set was restored from
  double gap_seconds = 0;
};
struct DumpFinishedReply {
  std::variant<DumpWritten, ReplyError> outcome;
};

struct DrillAcceptedReply {
  std::uint64_t job_id = 0;
  std::string reason;  // what it waits for ("it waits behind the backups"), or ""
};
// A drill that ran: its result (passed, or failed with what it found) and where its manifest is.
struct DrillSummary {
  std::string id;
  std::string result;  // passed | failed
  int exit_code = 0;   // what `agent drill` exits with: 0, or 4 for a finding
  std::string manifest;
  std::string backup_set;
  int repo = 0;
  std::string target;
  double gap_seconds = 0;
  double total_seconds = 0;
  std::uint64_t objects_checked = 0;
  std::uint64_t objects_failed = 0;
  std::string first_failure;
};
struct DrillFinishedReply {
  std::variant<DrillSummary, ReplyError> outcome;
};

using ControlReplyMessage =
    std::variant<HeartbeatReply, RefusedReply, StatusReply, BackupAcceptedReply, BackupFinishedReply,
                 AbandonedReply, DumpAcceptedReply, StepReply, DumpKeptReply, DumpProgressReply,
                 DumpFinishedReply, DrillAcceptedReply, DrillFinishedReply>;

nlohmann::json control_reply_json(const ControlReplyMessage& reply);
// One reply line (its JSON). Errors are ErrorKind::external_tool and name the field.
Result<ControlReplyMessage> parse_control_reply(const nlohmann::json& line);

// Sends one reply to the client; `last` closes the connection after it.
using ControlReply = std::function<void(const ControlReplyMessage& reply, bool last)>;

}  // namespace agent
