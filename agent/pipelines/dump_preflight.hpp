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
  bool port_in_use = false;
  std::uint64_t free_bytes_for_scratch = 0;
  std::uint64_t scratch_data_bytes = 0;  // reused by --delta
};

LocalFacts gather_local_facts(const DumpJob& job);

// Every local refusal, each with what was wrong and what to do.
std::vector<Error> check_local_facts(const LocalFacts& facts, const DumpJob& job);

// Refusals that need the repository's view: target before the oldest backup or in the
// future, a named set that does not fit, too little disk for the chosen backup.
// Returns the backup set pgBackRest will use.
Result<BackupRecord> check_against_repository(const StanzaInfo& stanza, const DumpJob& job,
                                              const LocalFacts& facts,
                                              std::chrono::system_clock::time_point now);

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
