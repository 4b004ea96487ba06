#pragma once
// The agent's configuration as typed values. Which keys exist, their types, defaults,
// ranges and help text live in one table (options.cpp); loading, validation, the
// command-line overrides, `agent config check` and the example config all derive from it.
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace agent {

struct AgentConfig {
  std::string stanza;
  std::string state_dir;
  struct {
    std::string bin;
    std::string config_path;          // empty: pgBackRest's own discovery
    std::string config;               // empty: pgBackRest's own discovery
    std::string config_include_path;  // empty: conf.d beside the config, when it exists
    int repo = 0;                     // 0: let pgBackRest choose
    int process_max = 0;
    int timeout_seconds = 0;
    int backup_timeout_seconds = 0;
    int backup_nice = 0;
    int lock_wait_seconds = 0;  // another backup holds the lock: try again for this long
  } pgbackrest;
  struct {
    std::string bindir;
    std::string data;
    std::string host;
    int port = 0;
    std::string user;
  } postgres;
  struct {
    std::string scratch;
    int port = 0;
    int wait_timeout_seconds = 0;
    int restore_timeout_seconds = 0;  // pgbackrest restore without progress for this long is ended
    std::string shared_buffers;
    bool fsync = false;                // false: the restore's fsync calls are skipped (libeatmydata)
    std::string keep_scratch;          // "auto", "always" or "never": the copy kept for the next --delta
    bool only_dumped_database = true;  // pgbackrest restore --db-include the dumped database
    std::string invalid_pages = "restore_in_full";  // restore_in_full | refuse (see options.cpp)
  } restore;
  struct {
    std::string database;
    std::string output;
    std::string checksum;  // "xxh128", "sha256" or "none"
    int connections = 0;   // 1: one pg_dump, as the runbook
    int split_table_mb = 0;
    int lock_timeout_seconds = 0;           // every session on the copy, pg_dump's too; 0: none
    std::string recovery_locks = "refuse";  // refuse | wait (see options.cpp)
    std::string format = "plain";           // plain | custom | directory
    std::string compress = "auto";          // auto | none | zstd[:N] | gzip[:N] (dump_format.hpp)
    int jobs = 1;                           // pg_dump --jobs for the directory format
    int keep_running_max_seconds = 28800;   // the longest --keep-for
  } dump;
  struct {
    int reserve_percent = 0;  // of a live filesystem's size, kept free for the live cluster
    int reserve_mb = 0;       // at least this much; the larger of the two applies
    std::string live_paths;   // more paths of the live cluster, comma-separated (e.g. the spool)
  } disk;
  struct RepoSchedules {
    std::string full;  // cron expressions; empty: not scheduled
    std::string diff;
    std::string incr;
    bool operator==(const RepoSchedules&) const = default;
  };
  struct {
    std::string timezone;
    std::string full;  // cron expressions; empty: not scheduled (into the default repository)
    std::string diff;
    std::string incr;
    std::map<int, RepoSchedules> repos;  // schedules.repoN: into repository N
    std::string drill;                   // restore drills (agent drill --latest); empty: none
  } schedules;
  struct {
    std::string databases;        // comma-separated; empty: every database
    std::string assertions_file;  // lines "DATABASE: SQL"; empty: none
    int statement_timeout_seconds = 0;
    int max_age_hours = 0;  // 0: from schedules.drill, else 8 days
    bool annotate = true;   // the result on the drilled set (pgbackrest annotate)
    int repo = 0;           // 0: as a dump (pgbackrest.repo, else pgBackRest's choice)
  } drill;
  struct {
    std::string annotations_file;
    std::string annotation;
    std::string type;
    int repo = 0;  // 0: the default repository
  } manual;
  struct {
    std::string socket;
  } control;
  struct {
    int grace_seconds = 0;
    int stuck_seconds = 0;
    int queue_capacity = 0;
  } run;
  struct {
    std::string listen;  // host:port; empty: no HTTP endpoint
  } http;
  struct {
    int refresh_seconds = 0;
    int progress_seconds = 0;  // while the agent's backup runs: how often its progress is read
    bool crunchy_compat = false;
  } metrics;
  struct {
    int min_window_hours = 0;  // the recoverable window each repository should keep; 0: none
  } alerts;
  struct {
    std::string format;
    std::string level;
  } log;
};

// One configuration problem, located where it was found.
struct ConfigIssue {
  std::string source;  // file name or "command line"
  int line = 0;        // 1-based; 0 when not known
  std::string message;
  std::string hint;
  std::string describe() const;
};

// A value from the command line that overrides the file: key as in the table.
struct ConfigOverride {
  std::string key;
  std::string value;
  std::string flag;  // "--port", for error messages
};

struct ConfigLoad {
  AgentConfig config;
  std::vector<ConfigIssue> issues;  // empty when the configuration is valid
};

// Loads defaults, then `path` (if not empty), then the overrides. Every problem is reported,
// not only the first. `path_must_exist` is false for the implicit default config path.
ConfigLoad load_config(const std::string& path, bool path_must_exist,
                       const std::vector<ConfigOverride>& overrides);
ConfigLoad load_config_text(const std::string& yaml_text, const std::string& source_name,
                            const std::vector<ConfigOverride>& overrides);

// All issues as one usage error ("configuration is invalid: ...").
Error config_error(const std::vector<ConfigIssue>& issues);

// The annotated example configuration (config/agent.example.yaml is this text).
std::string example_config_yaml();

// Where `agent` looks for its config when --config is not given.
extern const char* const kDefaultConfigPath;

}  // namespace agent
