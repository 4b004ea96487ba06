#pragma once
// Everything `agent dump` checks before it writes anything. Facts are gathered once (the
// only I/O), then judged by pure functions that the unit tests drive with hand-made facts.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "pgbackrest/info.hpp"
#include "pipelines/disk_watch.hpp"
#include "pipelines/dump_job.hpp"

namespace agent {

// A pg_tblspc entry: the tablespace's OID and where its link points (canonical).
struct TablespaceLink {
  std::string oid;
  std::string path;
  bool operator==(const TablespaceLink&) const = default;
};

// The tablespace links of a data directory.
std::vector<TablespaceLink> read_tablespace_links(const std::string& data_dir);

// A filesystem the job writes to or the live cluster uses, told apart by device.
struct FilesystemFacts {
  std::uint64_t device = 0;
  std::string path;  // a directory on it that exists (statvfs, messages)
  std::uint64_t size_bytes = 0;
  std::uint64_t free_bytes = 0;        // what an unprivileged writer may still use
  std::vector<std::string> live_uses;  // "live data directory /pgdata/pg15", ...; empty: nothing live
};

struct DiskFacts {
  std::vector<FilesystemFacts> filesystems;
  int scratch = -1;  // index in `filesystems` of the scratch directory's filesystem
  int output = -1;   // of the output file's; -1 for standard output
  std::uint64_t wal_segment_bytes = 16 * 1024 * 1024;  // the live cluster's
};

struct LocalFacts {
  bool running_as_root = false;
  bool bindir_has_programs = true;          // postgres and pg_dump are executable in postgres.bindir
  std::string live_data;                    // canonical
  std::vector<TablespaceLink> tablespaces;  // the live cluster's
  std::string scratch;                      // canonical
  bool scratch_exists = false;
  bool scratch_is_dir = true;
  bool scratch_empty = true;
  bool scratch_has_marker = false;
  bool scratch_parent_writable = true;  // to create it, or write in it
  std::optional<long> scratch_server_pid;
  bool scratch_server_alive = false;
  std::string output;  // canonical; empty for standard output
  bool output_dir_is_dir = true;
  bool output_dir_writable = true;
  bool output_exists = false;
  // What the dump step writes (OUTPUT.partial, renamed to OUTPUT, and OUTPUT.manifest.json)
  // where something that is not a regular file already is: "PATH is a directory", ...
  std::vector<std::string> output_paths_in_the_way;
  bool port_in_use = false;
  DiskFacts disk;
  std::uint64_t scratch_data_bytes = 0;  // reused by --delta
};

LocalFacts gather_local_facts(const DumpJob& job);

// Every local refusal, each with what was wrong and what to do.
std::vector<Error> check_local_facts(const LocalFacts& facts, const DumpJob& job);

// Refusals that need the repository's view: --repo not configured or not readable, target
// before the oldest backup or in the future, a named set that does not fit, too little disk for
// the chosen backup. Returns the backup set pgBackRest will use (choose_backup: with job.repo
// from that repository, else from the first readable one in key order that holds one), its
// `repo` set to the repository.
Result<BackupRecord> check_against_repository(const StanzaInfo& stanza, const DumpJob& job,
                                              const LocalFacts& facts,
                                              std::chrono::system_clock::time_point now);

// --database against the chosen backup set's database list (pgbackrest info --set), before the
// restore: nullopt when the set holds it (template0 and template1 always: pgBackRest does not
// list them), or when it does not but the live server has it, or the live server did not answer
// (`live_databases` nullopt): a database made after the backup, the copy then says whether it
// existed at the target. Otherwise the refusal (usage, exit 2) lists the names the set holds.
std::optional<Error> check_database_name(const std::string& database,
                                         const std::vector<BackupDatabase>& in_backup,
                                         const std::optional<std::vector<std::string>>& live_databases,
                                         const std::string& backup_label);

// What the job may write, from the chosen backup and the repository (upper estimates).
struct DiskEstimate {
  std::uint64_t restore = 0;  // the restored cluster: the backup's size
  std::uint64_t wal = 0;      // WAL from the backup's start to the first backup ending after the
                              // target (or the newest archived): what replay may add at most
  std::uint64_t spill = 0;    // rows copied ahead of their turn (dump.connections > 1)
  std::uint64_t dump = 0;     // the dump file, as large as the restored cluster; 0 for standard output
};
DiskEstimate estimate_disk_use(const StanzaInfo& stanza, const BackupRecord& chosen, const DumpJob& job,
                               std::uint64_t wal_segment_bytes);

// What must stay free on a filesystem for the live cluster: the larger of disk.reserve_percent
// of its size and disk.reserve_mb; 0 when the live cluster does not use it.
std::uint64_t live_reserve_bytes(const FilesystemFacts& filesystem, const AgentConfig& config);

// Room for the estimate on the scratch and output filesystems, and the reserve kept on those
// the live cluster uses. Part of check_against_repository.
std::vector<Error> check_disk(const LocalFacts& facts, const DumpJob& job, const DiskEstimate& estimate,
                              const std::string& backup_label);

// The filesystems the job writes to that the live cluster also uses, with their reserves.
std::vector<WatchedFilesystem> filesystems_to_watch(const LocalFacts& facts, const DumpJob& job);

// Whether the restored copy stays for the next --delta restore (restore.keep_scratch), and why.
struct ScratchKeeping {
  bool keep = false;
  std::string reason;
};
ScratchKeeping decide_scratch_keeping(const LocalFacts& facts, const std::string& setting,
                                      bool scratch_below_reserve);

// After the restore, before the copy starts: every tablespace of the copy must live in the
// scratch directory, and every live tablespace must be in the copy. A tablespace created after
// the chosen backup is not remapped by pgBackRest; replaying its creation would point the copy
// at the live tablespace directory.
std::vector<Error> check_restored_tablespaces(const std::vector<TablespaceLink>& live,
                                              const std::vector<TablespaceLink>& restored,
                                              const std::string& scratch_root,
                                              const std::string& backup_label);

// True when `inner` is `outer` or lies inside it (both canonical, absolute).
bool path_within(const std::string& inner, const std::string& outer);

}  // namespace agent
