#pragma once
// Reads the temporary server's log lines for what SQL cannot tell: whether recovery stopped
// because it reached the target (a manual pg_wal_replay_pause() also reads "paused"), and,
// when the WAL ends first, the last time it could reach and why it ended.
//
// The server writes "[PID] " before each of its lines (log_line_prefix), so the log tells the
// postmaster and the startup process (recovery) apart from the backends of the agent's own
// connections, whose failures ("the database system is starting up") are never recovery's
// progress or its cause of failure. Lines without the prefix come from the programs the
// server runs: pgBackRest's archive-get, whose reasons ("ERROR: [042]: unable to get ...",
// continued on indented lines) say why WAL could not be fetched.
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agent {

struct RecoveryLogFacts {
  bool target_reached = false;             // "recovery stopping before/after ..."
  bool paused_at_target = false;           // "pausing at the end of recovery"
  bool ended_before_target = false;        // "recovery ended before configured recovery target was reached"
  std::optional<std::string> stop_detail;  // the "recovery stopping ..." line
  std::optional<std::string> last_completed_transaction;  // its "log time"
  // The last FATAL or PANIC line of the postmaster or the startup process (never a backend's).
  std::optional<std::string> last_fatal;
  // The errors of a program the server ran (archive-get), each with its continuation lines
  // joined (the last 16), and of those the one that tells most: the last whose cause is known
  // (PostgreSQL asks again after a failure, and the second failure may only be a consequence of
  // the first), else the last.
  std::vector<std::string> tool_errors;
  std::optional<std::string> tool_error;
  // "redo done at X/Y": where replay ended when the WAL ran out (the last record's start).
  std::optional<std::string> redo_done_lsn;
  // WAL segments restored from the archive, in order (the last 256).
  std::deque<std::string> restored_segments;
  std::uint64_t lines = 0;
  // "page N of relation base/DB/REL is uninitialized|does not exist" (recovery with
  // ignore_invalid_pages reports them as warnings): the relation paths, the last 64, and how many.
  std::vector<std::string> invalid_page_relations;
  std::uint64_t invalid_pages = 0;
  // Lines of the startup process: recovery's own sign of life.
  std::uint64_t recovery_lines = 0;
};

class RecoveryLog {
 public:
  void feed(std::string_view line);
  RecoveryLogFacts facts() const;

 private:
  mutable std::mutex mutex_;
  RecoveryLogFacts facts_;
  std::optional<long> postmaster_pid_;
  std::optional<long> startup_pid_;
  bool in_tool_error_ = false;
};

// The database OID of a relation path as PostgreSQL prints it ("base/16385/16390",
// "pg_tblspc/16384/PG_15_202209061/16385/16390"); 0 for a shared one ("global/1262") or another form.
std::uint32_t relation_path_database(std::string_view path);

// The PID of a line that starts with "[PID] "; none for a line without the prefix.
std::optional<long> server_line_pid(std::string_view line);

// What a pgBackRest or PostgreSQL reason says went wrong, as far as the agent can tell.
enum class FailureCause {
  unknown,
  out_of_space,            // ENOSPC: "[28] No space left on device"
  archive_unreadable,      // the repository's files cannot be read (permissions, missing files)
  repository_unreachable,  // a remote repository does not answer (connect errors, timeouts)
};
FailureCause classify_failure(std::string_view reason);
// "ran out of space", "could not read the archive", ...; empty for unknown.
std::string describe_cause(FailureCause cause);

}  // namespace agent
