#pragma once
// Command lines of the programs the agent runs, built by pure functions so each one is
// unit-tested. Values are always joined to their option ("--target=...") so nothing a user
// supplies can be read as an option of its own.
#include <optional>
#include <string>
#include <vector>

namespace agent {

struct PgBackRestTarget {
  std::string bin;
  std::string config;  // --config
  std::string stanza;
  int repo = 0;  // 0: not passed
};

std::vector<std::string> pgbackrest_info_argv(const PgBackRestTarget& target);

// `pgbackrest backup --type=TYPE`; type is "full", "diff" or "incr" (never user text).
std::vector<std::string> pgbackrest_backup_argv(const PgBackRestTarget& target, const std::string& type);

struct RestoreRequest {
  std::string target_time;     // already in pgBackRest's accepted form
  std::string data_dir;        // --pg1-path
  std::string tablespace_dir;  // --tablespace-map-all
  int process_max = 1;
  std::optional<std::string> backup_set;  // --set, validated by is_backup_label
};

std::vector<std::string> pgbackrest_restore_argv(const PgBackRestTarget& target,
                                                 const RestoreRequest& request);

// A backup label as pgBackRest writes it: 20241104-020000F, 20241104-020000F_20241104-091500I.
bool is_backup_label(const std::string& text);

// The temporary server started on a restored copy: private socket, no TCP, no archiving,
// nothing from the live pod's configuration that could reach outside the scratch directory.
struct ScratchServerSettings {
  std::string bindir;
  std::string data_dir;
  std::string socket_dir;  // also holds the server's own pg_hba.conf and pg_ident.conf
  int port = 0;
  std::string shared_buffers;
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
};

std::vector<std::string> pg_dump_argv(const DumpRequest& request);

}  // namespace agent
