#pragma once
// What a finished job reports: the daemon's status, its clients and the metrics read these,
// so they live beside the requests, not with the pipelines that produce them.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "jobs/backup_request.hpp"
#include "pgbackrest/info.hpp"

namespace agent {

enum class BackupOutcome { succeeded, failed, skipped };
const char* backup_outcome_name(BackupOutcome outcome);

struct BackupResult {
  std::uint64_t job_id = 0;
  BackupRequest request;
  BackupOutcome outcome = BackupOutcome::failed;
  std::string message;            // the error or the skip reason; empty on success
  std::string skip_reason_code;   // "standby", "server-unreachable" (for counters)
  int pgbackrest_exit_code = -1;  // pgBackRest's error code when it failed
  bool cancelled = false;         // failed because it was told to stop (shutdown), not on its own
  // What kind of failure (its exit code for `agent backup`): a refusal in the check step is the
  // environment's (a version mismatch), a failed `pgbackrest backup` the tool's.
  ErrorKind failure_kind = ErrorKind::external_tool;
  int lock_waits = 0;  // times it found the backup lock held by another process and waited
  std::chrono::system_clock::time_point started{};
  double seconds = 0;
  // The repository it backed up into: the request's, else the lowest-numbered one pgbackrest
  // info lists after the job (pgBackRest's default); 0 when not known.
  int repo = 0;
  std::optional<StanzaInfo> info;  // the repository after the job, when it could be read
  double info_seconds = 0;         // how long that read took
};

// What `agent backup` exits with for `result`: 0, the environment's code for a skip (a
// standby, an unreachable server), else the code of its failure's kind.
int backup_exit_code(const BackupResult& result);

// A dump that ended well, as the metrics see it.
struct DumpResult {
  std::chrono::system_clock::time_point finished{};
  double seconds = 0;
  std::uint64_t bytes = 0;
  double replay_gap_seconds = 0;
};

}  // namespace agent
