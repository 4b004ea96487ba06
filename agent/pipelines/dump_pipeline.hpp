#pragma once
// `agent dump` as one job: check -> prepare -> restore -> start -> wait -> verify -> dump ->
// publish -> stop. The temporary server is stopped and a partial dump removed whatever
// fails on the way, including SIGINT and SIGTERM.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/cancel.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "exec/process.hpp"
#include "pg/copy_session.hpp"
#include "pg/session.hpp"
#include "pipelines/dump_job.hpp"
#include "pipelines/kept_copy.hpp"
#include "pipelines/pipeline.hpp"

namespace agent {

struct DumpServices {
  ProcessRunner& runner;
  PgConnector& connector;
  CopyConnector& copier;  // the connections that copy the largest tables' rows
  Clock& clock;
  // Rebindable, so a pipeline can copy the services and wait on its own token instead
  // (`DumpServices watched = services; watched.cancel = ...`) with every other field carried.
  std::reference_wrapper<const CancelToken> cancel;
  StepObserver on_step = {};
  // --keep-running: fires to stop the kept copy before its deadline (`agent dump --stop`);
  // null: only the deadline or `cancel` end it.
  const CancelToken* stop_keeping = nullptr;
  // Sees the kept copy once it is up for inspection, on the job's thread.
  std::function<void(const KeptCopy&)> on_kept = {};
  // The pgBackRest restore's bytes done and in all (from its per-file lines and the set's size),
  // each time the percentage it prints moves; on the thread that reads the restore's output.
  std::function<void(std::uint64_t bytes_done, std::uint64_t bytes_total)> on_restore_progress = {};
};

struct DumpSummary {
  std::string backup_label;
  int repo = 0;  // the repository it was restored from
  std::optional<SysMicros> replayed_to;
  double gap_seconds = 0;
  std::uint64_t bytes = 0;
  std::string checksum;  // "xxh128:HEX", "sha256:HEX", or "" (dump.checksum: none)
  std::string output;
  std::string manifest_path;
  std::vector<StepTiming> timings;
  // --keep-running: what ended the kept copy (its deadline, `agent dump --stop`, a signal, ...).
  std::string kept_copy_ended;
};

Result<DumpSummary> run_dump(const DumpJob& job, DumpServices& services);

// The dump's steps up to `verify` (check, prepare, restore, start, wait, verify), for a job
// that uses the paused copy instead of dumping it: the restore drill (drill_pipeline.hpp).
// The copy is never promoted; `job.output` should be "-" and `job.database` one that exists.
struct PausedCopy {
  std::string data_dir;  // the copy's PGDATA
  std::string socket_dir;
  int port = 0;
  std::string user;
  std::string backup_label;
  std::string backup_type;
  int backup_repo = 0;  // the repository the set was restored from
  std::int64_t backup_stop_epoch = 0;
  std::optional<SysMicros> replayed_to;
  double gap_seconds = 0;       // target minus the last replayed commit (or the backup's end)
  bool end_of_archive = false;  // recovery paused at the end of the archived WAL
  bool clean_shutdown = false;  // after_stop: the copy shut down cleanly (fast shutdown)
};

struct CopyWork {
  // A target past the archived WAL pauses the copy at the end of that WAL instead of failing
  // (the drill's --latest): the WAL's last checkpoint need not lie after the target.
  bool to_end_of_archive = false;
  std::string logger = "dump";
  // Right after verify, on the paused copy: what still reads the repository (the drill's
  // pgBackRest verify of the set), so that it is over before the inspection; may be empty.
  std::string repository_step = "repository";
  std::function<Status(const PausedCopy&)> repository_check;
  std::string inspect_step = "inspect";
  std::function<Status(const PausedCopy&)> inspect;  // on the paused copy
  // After the copy's fast shutdown, before its data directory is kept or removed; may be empty.
  std::string after_stop_step = "after-stop";
  std::function<Status(const PausedCopy&)> after_stop;
};

struct CopyOutcome {
  Status status;  // the first failed step's error, with the step's name
  PausedCopy copy;
  std::vector<StepTiming> timings;  // of every step that ran
};

CopyOutcome run_on_paused_copy(const DumpJob& job, DumpServices& services, const CopyWork& work);

}  // namespace agent
