#pragma once
// Waits until the temporary server has really reached the recovery target: the log says it
// stopped at the target and paused there, and SQL confirms it is in recovery and paused.
// The deadline resets whenever replay advances (the replay position, or a line of the startup
// process), so a long replay may take as long as it needs, while a stuck one still ends; the
// agent's own failed connection attempts are never progress. A connection refused for a
// reason that waiting does not cure ends the wait at once.
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "core/cancel.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "pg/recovery_log.hpp"
#include "pg/session.hpp"

namespace agent {

// What the waiter needs to know about the server process besides SQL.
class ServerWatch {
 public:
  virtual ~ServerWatch() = default;
  virtual RecoveryLogFacts log_facts() const = 0;
  // Set once the server process has exited: how it ended.
  virtual std::optional<std::string> exited() const = 0;
};

struct ReplayWaitSettings {
  std::string conninfo;
  // Who and where conninfo connects, for messages when the copy refuses the connection.
  std::string user;
  std::string database;
  std::chrono::milliseconds no_progress_timeout{std::chrono::minutes(5)};
  // Polls start fast, because a copy usually reaches its target within a second of starting,
  // and back off to the maximum. The maximum is how late the dump may start after the pause
  // (at 200 ms, one scale-200 dump noticed the pause 190 ms after the server logged it); a
  // query on the scratch server every 50 ms costs nothing a user would notice.
  std::chrono::milliseconds first_poll_interval{10};
  std::chrono::milliseconds poll_interval{50};
  // What the copy reaches when no transaction after the backup is archived, e.g.
  // "2024-11-04T02:00:55Z (the end of backup set 20241104-020000F)".
  std::string backup_end_description;
};

// A connection refused for a reason that waiting does not cure (no such role, no such
// database, authentication): the error, naming the setting to fix. Nothing for the refusals of
// a server that is still starting up, shutting down or not there.
struct ConnectionSubject {
  std::string user;              // postgres.user
  std::string database;          // the database connected to
  std::string database_setting;  // where that name comes from ("--database (dump.database)"), or ""
  std::string server;            // "the copy at the target", "the live server"
};
std::optional<Error> fatal_connection_error(const std::string& message, const ConnectionSubject& subject);

// Why the copy's server ended before reaching the target, from what its log says: a failed
// WAL fetch (out of space, unreadable or unreachable repository) or a failure of its own.
// `backup_end_description` is what the copy reaches when no transaction is archived.
Error recovery_failure(const RecoveryLogFacts& facts, const std::string& ended,
                       const std::string& backup_end_description);

Result<RecoveryStatus> wait_for_recovery_target(const ReplayWaitSettings& settings, const ServerWatch& server,
                                                PgConnector& connector, Clock& clock,
                                                const CancelToken& cancel);

}  // namespace agent
