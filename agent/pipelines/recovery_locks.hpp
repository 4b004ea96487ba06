#pragma once
// Locks that recovery holds on the paused copy. A transaction that was in progress at the
// target and had taken an ACCESS EXCLUSIVE lock (DDL, an autovacuum truncation, LOCK TABLE)
// leaves that lock with the startup process while the copy is paused, for good: pg_dump, which
// takes ACCESS SHARE on every table it dumps, would wait for it forever. The agent looks
// before the dump, names the relation, reads the archived WAL (pg_waldump) for the transaction
// that took the lock, and proposes the latest target before it took it.
//
// A time target stops recovery just before the first commit (or abort) after the target, so
// every record up to that commit is replayed. The latest target that leaves a lock out is the
// instant before the last commit that precedes the lock's record in the WAL.
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cancel.hpp"
#include "core/error.hpp"
#include "exec/commands.hpp"
#include "exec/process.hpp"
#include "time/target_time.hpp"

namespace agent {

struct RecoveryLock {
  std::uint32_t database = 0;  // 0: a shared catalog
  std::uint32_t relation = 0;
  std::string name;  // schema-qualified, quoted as needed
};

// Run in the dumped database on the paused copy: the ACCESS EXCLUSIVE locks on its relations
// (those visible at the target) and on shared catalogs. Nothing but recovery can hold one there
// (the copy is read-only, and the agent's sessions take no such lock).
extern const char* const kRecoveryLocksQuery;
Result<std::vector<RecoveryLock>> parse_recovery_locks(const std::vector<std::vector<std::string>>& rows);

// One lock of a Standby LOCK record: "xid 783 db 16385 rel 16386".
struct WalLock {
  std::uint32_t xid = 0;
  std::uint32_t database = 0;
  std::uint32_t relation = 0;
};

// The pg_waldump records that matter here.
struct WalRecord {
  enum class Kind { lock, commit, abort, running_xacts };
  Kind kind = Kind::commit;
  std::uint64_t lsn = 0;
  std::uint32_t xid = 0;       // commit, abort: the transaction; running_xacts: nextXid
  std::vector<WalLock> locks;  // lock: each lock in the record
  std::string time;            // commit, abort: "2024-11-04 17:40:01.123456 UTC"
};
// Parses pg_waldump's output (run with TZ=UTC), keeping only those records.
std::vector<WalRecord> parse_waldump(std::string_view output);
// "0/705A2F8" as a byte position.
std::optional<std::uint64_t> parse_lsn(std::string_view text);
std::string format_lsn(std::uint64_t lsn);
// Where WAL segment `name` (24 hex digits) starts, for segments of `segment_bytes`.
std::optional<std::uint64_t> segment_start(std::string_view name, std::uint64_t segment_bytes);
// The segment before `name` on the same timeline.
std::optional<std::string> previous_segment(std::string_view name, std::uint64_t segment_bytes);

// The transaction behind a lock, as the WAL before `stop_lsn` tells it.
struct LockOrigin {
  RecoveryLock lock;
  std::uint32_t xid = 0;
  std::uint64_t lock_lsn = 0;  // where it took the lock
  // The last commit (or abort) before it took the lock, when the records reach back that far,
  // and whether they show the transaction beginning there (not a later repetition of the lock,
  // which PostgreSQL writes again with each snapshot of running transactions).
  std::optional<std::string> commit_before;
  bool began_in_records = false;
  bool complete() const { return commit_before.has_value() && began_in_records; }
};
// Of the locks, the one taken first; nothing if no record names any of them.
std::optional<LockOrigin> find_lock_origin(const std::vector<WalRecord>& records,
                                           const std::vector<RecoveryLock>& locks, std::uint64_t stop_lsn);

// The latest target that leaves the lock out: the instant before `commit_time` (pg_waldump's
// "YYYY-MM-DD HH:MM:SS.ffffff UTC").
std::optional<SysMicros> target_before(const std::string& commit_time);

struct WalScanSettings {
  PgBackRestTarget pgbackrest;
  ScratchArchiveGet archive_get;
  std::string bindir;     // pg_waldump
  std::string directory;  // where segments are fetched (emptied afterwards)
  std::size_t max_segments = 32;
  std::chrono::seconds fetch_timeout{120};  // per segment
};
// Fetches the segments the copy replayed, newest first (`segments` in replay order), then the
// ones before them, and reads them with pg_waldump until the origin of the lock is found,
// `max_segments` were read, or the archive has no more.
Result<std::optional<LockOrigin>> scan_for_lock_origin(ProcessRunner& runner, const CancelToken& cancel,
                                                       const WalScanSettings& settings,
                                                       const std::vector<RecoveryLock>& locks,
                                                       std::uint64_t stop_lsn,
                                                       const std::deque<std::string>& segments);

// The refusal: the relation, the transaction, and the target to choose instead.
Error recovery_lock_error(const std::vector<RecoveryLock>& locks, const std::optional<LockOrigin>& origin,
                          SysMicros target);

}  // namespace agent
