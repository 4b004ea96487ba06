#pragma once
// The temporary server on a restored copy. The agent starts `postgres` itself (argv, no
// pg_ctl: pg_ctl passes -o through /bin/sh) so it owns the process: it sees at once when
// the server exits, reads its log from a pipe, and can always stop it.
#include <memory>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "exec/commands.hpp"
#include "exec/process.hpp"
#include "pg/recovery_log.hpp"
#include "pg/replay_wait.hpp"

namespace agent {

// What the agent keeps under the scratch directory.
struct ScratchLayout {
  std::string root;
  std::string data;         // the restored PGDATA (--pg1-path)
  std::string run;          // socket, pg_hba.conf, pg_ident.conf (mode 0700)
  std::string tablespaces;  // --tablespace-map-all
  std::string marker;       // proves the directory is the agent's before --delta touches it
  std::string lock;         // one job per scratch directory

  static ScratchLayout under(const std::string& scratch);
};

class ScratchServer final : public ServerWatch {
 public:
  static Result<std::unique_ptr<ScratchServer>> start(ProcessRunner& runner,
                                                      const ScratchServerSettings& settings);
  ~ScratchServer() override;

  RecoveryLogFacts log_facts() const override { return log_->facts(); }
  std::optional<std::string> exited() const override;
  // Immediate shutdown, then SIGKILL of the group if it does not go. Idempotent.
  void stop();

 private:
  ScratchServer(std::unique_ptr<RunningProcess> process, std::shared_ptr<RecoveryLog> log)
      : process_(std::move(process)), log_(std::move(log)) {}
  std::unique_ptr<RunningProcess> process_;
  std::shared_ptr<RecoveryLog> log_;
  bool stopped_ = false;
};

}  // namespace agent
