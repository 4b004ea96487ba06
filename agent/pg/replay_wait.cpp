#include "pg/replay_wait.hpp"

#include <algorithm>

#include "core/log.hpp"
#include "core/log_throttle.hpp"

namespace agent {

namespace {

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// The server's own words: what follows "FATAL:" (or the whole message).
std::string server_reason(const std::string& message) {
  auto at = message.find("FATAL:");
  std::string reason = at == std::string::npos ? message : message.substr(at + 6);
  const auto first = reason.find_first_not_of(' ');
  reason = first == std::string::npos ? "" : reason.substr(first);
  while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
  for (auto& c : reason)
    if (c == '\n') c = ' ';
  return reason;
}

}  // namespace

std::optional<Error> fatal_connection_error(const std::string& message, const ConnectionSubject& subject) {
  const std::string reason = server_reason(message);
  const std::string user = "postgres.user '" + subject.user + "'";
  if (contains(message, "role \"") && contains(message, "\" does not exist"))
    return make_error(ErrorKind::usage, user + " is not a role in " + subject.server + " (" + reason + ")",
                      "set postgres.user in the config to a role of the cluster that may log in, such as "
                      "its superuser (postgres)");
  if (contains(message, "database \"") && contains(message, "\" does not exist"))
    return make_error(
        ErrorKind::usage,
        "database '" + subject.database + "' does not exist in " + subject.server + " (" + reason + ")",
        subject.database_setting.empty() ? "the agent connects to it to watch recovery"
                                         : "choose another " + subject.database_setting);
  for (std::string_view refusal :
       {"authentication failed", "no pg_hba.conf entry", "is not permitted to log in", "no password supplied",
        "permission denied for database", "does not have CONNECT privilege", "SSL required",
        "password is required"})
    if (contains(message, refusal))
      return make_error(ErrorKind::usage, subject.server + " refused " + user + " (" + reason + ")",
                        "set postgres.user in the config to a role that may log in to " + subject.database +
                            ", such as the cluster's superuser (postgres)");
  return std::nullopt;
}

Error recovery_failure(const RecoveryLogFacts& facts, const std::string& ended,
                       const std::string& backup_end_description) {
  // archive-get's reason comes first: PostgreSQL reads any failure to fetch a WAL file as the
  // end of the archive, and then says that recovery ended before the target.
  if (facts.tool_error) {
    const std::string quoted = " (pgBackRest: " + *facts.tool_error + ")";
    switch (classify_failure(*facts.tool_error)) {
      case FailureCause::out_of_space:
        return make_error(
            ErrorKind::environment,
            "fetching WAL from the archive failed: the scratch directory's disk is full" + quoted,
            "free space on the scratch filesystem, or choose a --scratch on a larger volume: "
            "the copy needs room for the restored backup and for the WAL it replays");
      case FailureCause::archive_unreadable:
        return make_error(ErrorKind::external_tool,
                          "fetching WAL from the archive failed: the repository cannot be read" + quoted,
                          "check that this user can read the repository's archive (pgbackrest info, "
                          "pgbackrest check), then run the dump again");
      case FailureCause::repository_unreachable:
        return make_error(ErrorKind::external_tool,
                          "fetching WAL from the archive failed: the repository cannot be reached" + quoted,
                          "check the repository host or bucket and the network (pgbackrest info), then run "
                          "the dump again");
      case FailureCause::unknown:
        return make_error(ErrorKind::external_tool, "fetching WAL from the archive failed" + quoted,
                          "read the pgbackrest and postgres lines above in the log");
    }
  }
  if (facts.ended_before_target) {
    const std::string reach = facts.last_completed_transaction
                                  ? *facts.last_completed_transaction + " (its last archived transaction)"
                                  : backup_end_description + " (no later transaction is archived)";
    return make_error(ErrorKind::target_window,
                      "the archived WAL ends before the target; the last time the copy can reach is " + reach,
                      "choose a target at or before that time, or --target latest (everything archived), "
                      "or wait until the WAL up to the target has been archived (pgbackrest info shows the "
                      "archive range)");
  }
  const std::string fatal = facts.last_fatal ? ": " + *facts.last_fatal : "";
  if (facts.last_fatal && classify_failure(*facts.last_fatal) == FailureCause::out_of_space)
    return make_error(
        ErrorKind::environment,
        "the temporary server " + ended + " during recovery: the scratch directory's disk is full" + fatal,
        "free space on the scratch filesystem, or choose a --scratch on a larger volume");
  return make_error(ErrorKind::external_tool, "the temporary server " + ended + " during recovery" + fatal,
                    "read the postgres lines above in the log");
}

Result<RecoveryStatus> wait_for_recovery_target(const ReplayWaitSettings& settings, const ServerWatch& server,
                                                PgConnector& connector, Clock& clock,
                                                const CancelToken& cancel) {
  auto logger = log::get("replay");
  auto deadline = clock.steady_now() + settings.no_progress_timeout;
  std::unique_ptr<PgSession> session;
  std::uint64_t last_lsn = 0;
  std::uint64_t last_lines = 0;
  std::string last_connect_error;
  LogThrottle progress_line(clock.steady_now());
  auto interval = std::min(settings.first_poll_interval, settings.poll_interval);
  const ConnectionSubject subject{settings.user, settings.database, "", "the copy at the target"};

  for (;;) {
    const RecoveryLogFacts facts = server.log_facts();
    if (const auto ended = server.exited())
      return recovery_failure(facts, *ended, settings.backup_end_description);

    // Only recovery's own lines count: a failed connection attempt of the agent's also writes
    // a line into the server's log.
    bool progressed = facts.recovery_lines != last_lines;
    last_lines = facts.recovery_lines;

    if (!session) {
      auto connected = connector.connect(settings.conninfo);
      if (connected) {
        session = std::move(connected.value());
      } else {
        last_connect_error = connected.error().message;  // still starting up
        if (auto fatal = fatal_connection_error(last_connect_error, subject)) return *fatal;
      }
    }
    if (session) {
      auto status = session->recovery_status();
      if (!status) {
        session.reset();  // the server may be restarting a backend; reconnect next round
      } else {
        if (status->replay_lsn > last_lsn) {
          progressed = true;
          last_lsn = status->replay_lsn;
        }
        if (!status->in_recovery)
          return make_error(ErrorKind::verification,
                            "the temporary server left recovery instead of pausing at the target",
                            "check that nothing called pg_wal_replay_resume() or pg_promote() on it");
        if (facts.paused_at_target && status->pause_state == "paused") return *status;
      }
    }

    const auto now = clock.steady_now();
    if (progressed) deadline = now + settings.no_progress_timeout;
    if (now >= deadline) {
      const auto seconds =
          std::chrono::duration_cast<std::chrono::seconds>(settings.no_progress_timeout).count();
      return make_error(ErrorKind::external_tool,
                        "recovery made no progress for " + std::to_string(seconds) + " s" +
                            (session ? "" : " (cannot connect: " + last_connect_error + ")") +
                            (facts.tool_error ? " (pgBackRest: " + *facts.tool_error + ")" : ""),
                        "read the postgres lines in the log; raise restore.wait_timeout_seconds "
                        "if the archive is slow");
    }
    if (progress_line.due(now))
      logger->info("still replaying: replay position {} bytes, {} lines from recovery", last_lsn, last_lines);
    if (!clock.sleep_for(interval, cancel))
      return make_error(ErrorKind::interrupted, "interrupted while waiting for recovery");
    interval = std::min(interval * 2, settings.poll_interval);
  }
}

}  // namespace agent
