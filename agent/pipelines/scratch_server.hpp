#pragma once
// The temporary server on a restored copy. The agent starts `postgres` itself (argv, no
// pg_ctl: pg_ctl passes -o through /bin/sh) so it owns the process: it sees at once when
// the server exits, reads its log from a pipe, and can always stop it.
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/error.hpp"
#include "exec/commands.hpp"
#include "exec/process.hpp"
#include "pg/recovery_log.hpp"
#include "pg/replay_wait.hpp"

namespace agent {

// What the agent keeps under the scratch directory.
struct ScratchLayout {
  std::string root;
  std::string data;              // the restored PGDATA (--pg1-path)
  std::string run;               // socket, pg_hba.conf, pg_ident.conf (mode 0700)
  std::string tablespaces;       // --tablespace-map-all
  std::string marker;            // proves the directory is the agent's before --delta touches it
  std::string lock;              // one job per scratch directory
  std::string pgbackrest;        // pgBackRest's files for the copy: nothing goes to the live paths
  std::string pgbackrest_lock;   // --lock-path of the restore and the copy's archive-get
  std::string pgbackrest_log;    // --log-path
  std::string pgbackrest_spool;  // --spool-path of the restore, which empties the spool it is given
  std::string wal_scan;          // WAL segments fetched to read which transaction holds a lock

  static ScratchLayout under(const std::string& scratch);
};

class ScratchServer final : public ServerWatch {
 public:
  // When `cancel` fires (SIGINT, SIGTERM), the server gets an immediate shutdown at once, from
  // a thread of its own: every connection to it ends, so nothing the job does on the copy (a
  // query waiting for a lock, pg_dump) can keep the job from ending.
  static Result<std::unique_ptr<ScratchServer>> start(ProcessRunner& runner,
                                                      const ScratchServerSettings& settings,
                                                      const CancelToken& cancel = CancelToken::never());
  ~ScratchServer() override;

  RecoveryLogFacts log_facts() const override { return log_->facts(); }
  std::optional<std::string> exited() const override;
  // Immediate shutdown, then SIGKILL of the group if it does not go. Idempotent.
  void stop();
  // Fast shutdown (SIGINT to the postmaster): the copy ends with a restartpoint and pg_control
  // says "shut down in recovery", which pg_checksums needs. After `grace`, as stop(). True when
  // the server shut down by itself; false when it had to be killed or had already ended.
  bool stop_clean(std::chrono::seconds grace);

 private:
  ScratchServer(std::unique_ptr<RunningProcess> process, std::shared_ptr<RecoveryLog> log)
      : process_(std::move(process)), log_(std::move(log)) {}
  void watch_cancel(const CancelToken& cancel);
  std::unique_ptr<RunningProcess> process_;
  std::shared_ptr<RecoveryLog> log_;
  std::mutex mutex_;
  bool stopped_ = false;
  CancelToken watch_stop_;
  std::thread watcher_;
};

}  // namespace agent
