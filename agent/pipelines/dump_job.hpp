#pragma once
// What `agent dump` was asked to do, after the command line and config were merged.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/error.hpp"
#include "pipelines/dump_format.hpp"
#include "pipelines/recovery_target.hpp"
#include "time/target_time.hpp"

namespace agent {

struct DumpJob {
  AgentConfig config;
  // A time target's instant; for the other kinds, when the dump was asked for (the window's end).
  TargetTime target;
  RecoveryTarget recovery;  // what --target names: a time, latest, an LSN, an xid, a restore point
  std::string database;
  std::string output;  // "-" is standard output
  std::string scratch;
  int port = 0;
  std::optional<std::string> backup_set;
  // The repository to restore from (--repo, else pgbackrest.repo); 0: pgBackRest's choice, the
  // first repository in key order that holds a backup set for the target.
  int repo = 0;
  bool overwrite = false;
  // libeatmydata, preloaded into the restore; empty: the restore syncs (restore.fsync: on, or
  // the library is not installed).
  std::string no_sync_library;
  // What pg_dump is asked for: objects, format, compression, roles (dump_format.hpp).
  DumpShape shape;
  // --keep-running: after the dump is published the paused copy stays up this long for a
  // person to inspect (or until `agent dump --stop`); 0: the copy is stopped at once.
  std::chrono::seconds keep_running{0};

  bool to_stdout() const { return output == "-"; }
};

// What a person asked for on the command line (or through the control socket); what is not
// given comes from the config.
struct DumpArguments {
  std::string target;
  std::optional<std::string> database;
  std::optional<std::string> output;
  std::optional<std::string> scratch;
  std::optional<int> port;
  std::optional<std::string> backup_set;
  std::optional<int> repo;  // 1..256
  bool overwrite = false;
  // dump_format.hpp; format, compression and jobs default to dump.format, dump.compress and
  // (directory format) dump.jobs.
  std::vector<std::string> tables{}, exclude_tables{}, schemas{}, exclude_schemas{};
  bool data_only = false;
  bool schema_only = false;
  std::optional<std::string> format{};
  std::optional<std::string> compress{};
  std::optional<int> jobs{};
  bool globals = false;
  bool keep_running = false;
  std::optional<std::string> keep_for{};  // --keep-for: 30m, 2h, 90s (default one hour)
};

// The copy is kept one hour unless --keep-for says otherwise.
constexpr std::chrono::seconds kDefaultKeepRunning{3600};
// --keep-for's value: a whole number of seconds, minutes, hours or days ("90s", "30m", "2h",
// "1d"). Errors are ErrorKind::usage.
Result<std::chrono::seconds> parse_keep_duration(const std::string& text);

// Checks the arguments (target time, set label, names, ranges) and merges them with `config`.
Result<DumpJob> build_dump_job(const AgentConfig& config, const DumpArguments& arguments);

}  // namespace agent
