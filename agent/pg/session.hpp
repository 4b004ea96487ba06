#pragma once
// The PostgreSQL seam: the few questions the agent asks a server, behind an interface so the
// replay wait and verification are unit-tested against a scripted fake.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "time/target_time.hpp"

namespace agent {

struct ArchiverStats {
  std::uint64_t archived_count = 0;
  std::uint64_t failed_count = 0;
  std::optional<std::int64_t> last_archived_epoch;
  std::optional<std::int64_t> last_failed_epoch;
};

struct RecoveryStatus {
  bool in_recovery = false;
  std::string pause_state;                 // not paused, pause requested, paused
  std::optional<SysMicros> last_replayed;  // pg_last_xact_replay_timestamp(); none if nothing replayed
  std::uint64_t replay_lsn = 0;            // pg_last_wal_replay_lsn() as a byte position
};

class PgSession {
 public:
  virtual ~PgSession() = default;
  virtual Result<RecoveryStatus> recovery_status() = 0;
  // pg_is_in_recovery(): true on a standby.
  virtual Result<bool> is_in_recovery() = 0;
  // pg_stat_archiver of the server.
  virtual Result<ArchiverStats> archiver_stats() = 0;
  // Databases that accept connections (templates excluded).
  virtual Result<std::vector<std::string>> databases() = 0;
};

class PgConnector {
 public:
  virtual ~PgConnector() = default;
  virtual Result<std::unique_ptr<PgSession>> connect(const std::string& conninfo) = 0;
};

std::unique_ptr<PgConnector> make_pqxx_connector();

}  // namespace agent
