#pragma once
// Command lines of the programs the agent runs, built by pure functions so each one is
// unit-tested. Values are always joined to their option ("--target=...") so nothing a user
// supplies can be read as an option of its own.
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace agent {

struct PgBackRestTarget {
  std::string bin;
  std::vector<std::string> config_args;  // --config-path, --config, --config-include-path (as configured)
  std::string stanza;
  int repo = 0;  // 0: not passed
};

std::vector<std::string> pgbackrest_info_argv(const PgBackRestTarget& target);
// `pgbackrest info --set=LABEL`: the set's own details, its database list among them. `label`
// must have passed is_backup_label.
std::vector<std::string> pgbackrest_info_set_argv(const PgBackRestTarget& target, const std::string& label);
// `pgbackrest repo-get backup/STANZA/LABEL/backup.manifest` (to standard output); `label` must
// have passed is_backup_label.
std::vector<std::string> pgbackrest_manifest_get_argv(const PgBackRestTarget& target,
                                                      const std::string& label);
// `pgbackrest version`: it reads no config.
std::vector<std::string> pgbackrest_version_argv(const std::string& bin);

// pgBackRest's `backup --annotation=KEY=VALUE` pairs (2.41+; `pgbackrest info` shows them, its
// JSON always): who asked for the backup. Each pair is one argv element, so a value can never
// be read as an option.
using BackupAnnotations = std::vector<std::pair<std::string, std::string>>;

// `pgbackrest annotate --set=LABEL --annotation=KEY=VALUE...` (2.41+): adds or replaces those keys
// of the set's annotations, keeping the others. `label` must be a checked backup label and
// `target.repo` the set's repository. Takes the stanza's backup lock; writes no log file.
std::vector<std::string> pgbackrest_annotate_argv(const PgBackRestTarget& target, const std::string& label,
                                                  const BackupAnnotations& annotations);

// `pgbackrest verify --set=LABEL` with its verbose text result and every invalid file logged
// (console at info), no log file. `label` must be a checked backup label.
std::vector<std::string> pgbackrest_verify_set_argv(const PgBackRestTarget& target, const std::string& label);

// `pgbackrest backup --type=TYPE`; type is "full", "diff" or "incr" (never user text).
std::vector<std::string> pgbackrest_backup_argv(const PgBackRestTarget& target, const std::string& type,
                                                const BackupAnnotations& annotations = {});

struct RestoreRequest {
  std::string target_time;     // --target: a time in pgBackRest's accepted form, or the checked
                               // LSN, xid or restore point name of `target_type`
  std::string data_dir;        // --pg1-path
  std::string tablespace_dir;  // --tablespace-map-all
  int process_max = 1;
  std::optional<std::string> backup_set;  // --set, validated by is_backup_label
  // pgBackRest's own lock and log files for the restore, under the scratch directory (--lock-path,
  // --log-path); empty: not passed.
  std::string lock_dir{};
  std::string log_dir{};
  // --spool-path: a restore removes SPOOL/archive/STANZA, which in the live spool-path (PGO:
  // /pgdata/pgbackrest-spool) holds the live archive-push's acknowledgements; empty: not passed.
  std::string spool_dir{};
  // --db-include: the OID of the one user database to restore (the others are zeroed); 0: all.
  std::uint32_t include_database_oid = 0;
  std::string target_type = "time";  // --type: time, lsn, xid or name (never user text)
};

std::vector<std::string> pgbackrest_restore_argv(const PgBackRestTarget& target,
                                                 const RestoreRequest& request);

// A backup label as pgBackRest writes it: 20241104-020000F, 20241104-020000F_20241104-091500I.
bool is_backup_label(const std::string& text);

// The copy's restore_command: `pgbackrest archive-get` with the live config, but with its own
// lock and log paths under the scratch directory and asynchronous archiving off, so that it
// writes nothing to the live spool, lock or log paths and leaves no process behind (an
// asynchronous archive-get detaches a process that goes on fetching WAL). A shell command line
// (PostgreSQL runs it through /bin/sh): every word is quoted, every % doubled.
struct ScratchArchiveGet {
  std::string data_dir;  // --pg1-path: the copy
  std::string lock_dir;
  std::string log_dir;
};
std::string scratch_restore_command(const PgBackRestTarget& target, const ScratchArchiveGet& paths);
// The same archive-get, run by the agent: WAL segment `segment` into `destination`.
std::vector<std::string> scratch_archive_get_argv(const PgBackRestTarget& target,
                                                  const ScratchArchiveGet& paths, const std::string& segment,
                                                  const std::string& destination);

// The temporary server started on a restored copy: private socket, no TCP, no archiving,
// nothing from the live pod's configuration that could reach outside the scratch directory.
struct ScratchServerSettings {
  std::string bindir;
  std::string data_dir;
  std::string socket_dir;  // also holds the server's own pg_hba.conf and pg_ident.conf
  int port = 0;
  std::string shared_buffers;
  std::string restore_command{};  // scratch_restore_command(); empty: the restored copy's own
  int lock_timeout_seconds = 0;   // for every session on the copy; 0: none
  // Set: recover to this WAL location (inclusive) instead of the restored time target.
  std::string recovery_target_lsn{};
  // A copy restored with --db-include: replay of the zeroed databases meets pages that are not
  // there; the agent reads the log for those of the dumped database.
  bool ignore_invalid_pages = false;
};

std::vector<std::string> scratch_postgres_argv(const ScratchServerSettings& settings);
// The pg_hba.conf the scratch server uses: only local socket connections, only from the
// agent's OS user (the socket directory is 0700).
extern const char* const kScratchHbaConf;

// A libpq connection string with every value quoted.
std::string conninfo(const std::string& host, int port, const std::string& user, const std::string& database);

struct DumpRequest {
  std::string bindir;
  std::string host;
  int port = 0;
  std::string user;
  std::string database;
  // One of pre-data, data, post-data; empty: the whole dump. --create goes with the whole
  // dump and with pre-data (where pg_dump writes CREATE DATABASE and \connect).
  std::string section;
  // Patterns (--exclude-table-data) of tables whose rows the agent copies itself.
  std::vector<std::string> exclude_table_data;
  // --restrict-key, so that the pieces of one dump share one key; empty: pg_dump picks one.
  std::string restrict_key;
  // --lock-wait-timeout: pg_dump gives up on a table lock it cannot get (pg_dump turns the
  // session's lock_timeout off); 0: it waits.
  int lock_wait_timeout_seconds = 0;
  // Non-empty: instead of plain SQL on standard output, the schema (pre-data and post-data)
  // as an uncompressed custom-format archive in this file, for pg_restore to write in pieces.
  std::string schema_archive{};
  // The whole dump's shape (dump_format.hpp): --format (plain, custom, directory), with --file
  // (directory: the directory; empty: standard output), --jobs, --compress=N (-1: not passed),
  // and the selection, each pattern one `--table=PATTERN` element. `create`: --create with the
  // whole dump and pre-data (off when only some objects or only rows are dumped).
  std::string format = "plain";
  std::string file{};
  int jobs = 1;
  int compress_level = -1;
  bool create = true;
  std::vector<std::string> tables{}, exclude_tables{}, schemas{}, exclude_schemas{};
  bool data_only = false;
  bool schema_only = false;
};

std::vector<std::string> pg_dump_argv(const DumpRequest& request);

// pg_dumpall --globals-only --no-role-passwords --no-tablespaces of the copy, on standard
// output: the roles, their settings and memberships (the copy's tablespaces lie in the scratch
// directory, so their locations would be wrong).
std::vector<std::string> pg_dumpall_globals_argv(const std::string& bindir, const std::string& conninfo);

// pg_restore of a schema archive: plain SQL (or its list of entries) on standard output.
struct PgRestoreRequest {
  std::string bindir;
  std::string archive;
  bool list = false;           // --list: the entries, one a line
  bool create = false;         // --create: CREATE DATABASE and \connect before the entries
  std::string section;         // --section; empty: all
  bool no_privileges = false;  // --no-privileges
  std::string use_list;        // --use-list: only the entries this file lists
  std::string restrict_key;    // --restrict-key, shared with the dump's other pieces
};

std::vector<std::string> pg_restore_argv(const PgRestoreRequest& request);

}  // namespace agent
