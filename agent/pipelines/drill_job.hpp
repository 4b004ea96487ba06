#pragma once
// What `agent drill` was asked to do, after the command line and config were merged: which
// copy to restore (a target time, a backup set, or the newest recoverable point) and what to
// check on it.
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/error.hpp"
#include "pipelines/dump_job.hpp"
#include "time/target_time.hpp"

namespace agent {

// An SQL query that must return exactly one row holding one true boolean, run on the paused
// copy in `database` under drill.statement_timeout_seconds.
struct DrillAssertion {
  std::string database;
  std::string sql;
};

struct DrillJob {
  // The copy, restored and verified by the dump's steps: target, set, scratch, port. Its output
  // is "-" (nothing is written there) and its database "postgres" (which always exists).
  DumpJob copy;
  // "target" (--target), "set" (--set alone: that set, then the archived WAL to its end) or
  // "latest" (the newest set, then the archived WAL to its end).
  std::string mode;
  std::vector<std::string> databases;  // empty: every database that accepts connections
  std::vector<DrillAssertion> assertions;
  int statement_timeout_seconds = 0;
  std::string manifest_dir;  // state_dir/drills: DRILL-ID.json and last.json
  std::string trigger = "cli";
  // The caller narrowed what is checked (--database or --assert): the result speaks for that
  // question only, not for the backup set as drill.databases and drill.assertions_file define
  // its drill, so it is not annotated on the set.
  bool narrowed_by_caller = false;
};

struct DrillArguments {
  std::optional<std::string> target;
  std::optional<std::string> backup_set;
  std::optional<int> repo;  // 1..256; else drill.repo, else as a dump
  bool latest = false;
  std::vector<std::string> databases;
  std::vector<std::string> assertions;  // "DATABASE:SQL"
  std::optional<std::string> scratch;
  std::optional<int> port;
};

// Checks the arguments and merges them with `config`. Without --target the copy's target is
// `now`: recovery goes to the end of the archived WAL and the replay gap is the measured RPO.
Result<DrillJob> build_drill_job(const AgentConfig& config, const DrillArguments& arguments, SysMicros now);

// Assertions from drill.assertions_file: lines "DATABASE: SQL"; blank lines and lines starting
// with '#' are skipped.
Result<std::vector<DrillAssertion>> parse_drill_assertions(const std::string& text,
                                                           const std::string& source);

}  // namespace agent
