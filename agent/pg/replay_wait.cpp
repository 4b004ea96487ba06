#include "pg/replay_wait.hpp"

#include <algorithm>

#include "core/log.hpp"

namespace agent {

Result<RecoveryStatus> wait_for_recovery_target(const ReplayWaitSettings& settings, const ServerWatch& server,
                                                PgConnector& connector, Clock& clock,
                                                const CancelToken& cancel) {
  auto logger = log::get("replay");
  auto deadline = clock.steady_now() + settings.no_progress_timeout;
  std::unique_ptr<PgSession> session;
  std::uint64_t last_lsn = 0;
  std::uint64_t last_lines = 0;
  std::string last_connect_error;
  auto last_report = clock.steady_now();
  auto interval = std::min(settings.first_poll_interval, settings.poll_interval);

  for (;;) {
    const RecoveryLogFacts facts = server.log_facts();
    if (const auto ended = server.exited()) {
      if (facts.ended_before_target) {
        const std::string reach =
            facts.last_completed_transaction
                ? *facts.last_completed_transaction + " (its last archived transaction)"
                : settings.backup_end_description + " (no later transaction is archived)";
        return make_error(
            ErrorKind::target_window,
            "the archived WAL ends before the target; the last time the copy can reach is " + reach,
            "choose a target at or before that time, or wait until the WAL up to "
            "the target has been archived (pgbackrest info shows the archive range)");
      }
      return make_error(ErrorKind::external_tool,
                        "the temporary server " + *ended + " during recovery" +
                            (facts.last_fatal ? ": " + *facts.last_fatal : ""),
                        "read the postgres lines above in the log");
    }

    bool progressed = facts.lines != last_lines;
    last_lines = facts.lines;

    if (!session) {
      auto connected = connector.connect(settings.conninfo);
      if (connected) {
        session = std::move(connected.value());
      } else {
        last_connect_error = connected.error().message;  // still starting up
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
                            (session ? "" : " (cannot connect: " + last_connect_error + ")"),
                        "read the postgres lines in the log; raise restore.wait_timeout_seconds "
                        "if the archive is slow");
    }
    if (now - last_report >= std::chrono::seconds(10)) {
      logger->info("still replaying: replay position {} bytes, {} server log lines", last_lsn, last_lines);
      last_report = now;
    }
    if (!clock.sleep_for(interval, cancel))
      return make_error(ErrorKind::interrupted, "interrupted while waiting for recovery");
    interval = std::min(interval * 2, settings.poll_interval);
  }
}

}  // namespace agent
