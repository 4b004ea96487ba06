#pragma once
// Which tables of the dumped database are large enough to copy in row ranges over several
// connections, and how those pieces fit into pg_dump's plain format: pg_dump writes
// everything else (schema, the other tables, sequences, indexes and constraints) and leaves
// these tables' rows out with --exclude-table-data; the agent writes each one's COPY block in
// its place in the data section, as pg_dump would have.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "pg/copy_session.hpp"

namespace agent {

struct SplitTable {
  std::string schema;
  std::string name;
  std::string owner;
  std::string qualified;   // schema.name, each quoted when needed, as pg_dump writes it
  std::string columns;     // the column list pg_dump's COPY names: no dropped or generated columns
  std::uint64_t rows = 0;  // an estimate, from the statistics: it only decides where to cut
  std::uint64_t bytes = 0;
};

// The ordinary, permanent, non-extension tables of at least `min_bytes` with at least one
// column, largest first.
Result<std::vector<SplitTable>> find_split_tables(CopySession& session, std::uint64_t min_bytes);

// A key for psql's restricted mode (`\restrict KEY`, pg_dump --restrict-key; PostgreSQL
// 15.14 and later): the pieces of one dump share it, and the agent's COPY blocks sit inside
// it like pg_dump's, so that nothing the dumped server sends can run a psql meta-command.
std::string random_restrict_key();
std::string restrict_line(const std::string& key);
std::string unrestrict_line(const std::string& key);

// The --exclude-table-data pattern matching exactly this table (pg_dump's patterns treat
// everything inside double quotes literally).
std::string exact_table_pattern(const SplitTable& table);

// What pg_dump writes before a table's rows, and after them.
std::string copy_block_header(const SplitTable& table);
std::string copy_block_trailer();

// `COPY (SELECT columns FROM ONLY table OFFSET skip LIMIT count) TO STDOUT`; no count means
// to the end of the table. A plain sequential scan in physical order (with the session's
// settings below), so consecutive ranges add up to pg_dump's COPY of the table, row for row.
// Unlike a scan of a block range (a TID range scan), it reads through a small ring of
// buffers: it never evicts the pages recovery dirtied, which would otherwise be written into
// the scratch copy and make the next --delta restore copy those files again.
std::string row_range_copy(const SplitTable& table, std::uint64_t skip, std::optional<std::uint64_t> count);
// The SELECT inside it, and `EXPLAIN (FORMAT JSON)` of that SELECT.
std::string row_range_select(const SplitTable& table, std::uint64_t skip, std::optional<std::uint64_t> count);
std::string row_range_plan_query(const SplitTable& table, std::uint64_t skip,
                                 std::optional<std::uint64_t> count);
// Nothing if the plan (the text of `EXPLAIN (FORMAT JSON)`) reads one table with one plain,
// non-parallel sequential scan, under at most a Limit; else what it does instead, e.g.
// "an Index Only Scan".
std::optional<std::string> scan_other_than_sequential(const std::string& plan_json);

// Session settings that make COPY write rows exactly as pg_dump 15's own session does
// (setup_connection in pg_dump.c), and pin every range to a sequential scan from the first
// block, in one process: index, index-only, bitmap and parallel scans are off.
std::string dump_session_setup();
// The transaction every range is copied in, as pg_dump's (run after the setup: a statement
// list runs as one implicit transaction, which BEGIN ISOLATION LEVEL cannot follow).
std::string dump_transaction();

// Where the paused copy's replay stands, read on the dump's own connection before the rows are
// copied and again after the last range: if replay went on (or the copy left recovery) in
// between, the connections may have seen different data and the dump is refused.
struct ReplayState {
  std::string lsn;          // pg_last_wal_replay_lsn()
  std::string pause_state;  // pg_get_wal_replay_pause_state()
};
Result<ReplayState> read_replay_state(CopySession& session);
// Nothing if `after` is `before` and still paused; else what moved.
std::optional<Error> replay_moved(const ReplayState& before, const ReplayState& after);

// --- which pg_dump ---------------------------------------------------------------------------
struct PgDumpVersion {
  int major = 0;
  int minor = 0;
};
// From `pg_dump --version`, e.g. "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
// Nothing for anything else (a development or beta version included).
std::optional<PgDumpVersion> parse_pg_dump_version(const std::string& version_output);
// The pg_dump versions whose output the split pieces have been checked against: PostgreSQL 15.
// Another pg_dump writes the whole dump alone.
bool split_copy_tested_with(const std::optional<PgDumpVersion>& version);

// --- pg_dump's order around the rows --------------------------------------------------------
// pg_dump writes its single plain dump in three passes over its entries: everything in
// section order (pre-data, data, post-data), then every privilege (GRANT/REVOKE, ALTER
// DEFAULT PRIVILEGES), then what must come after them (event triggers, materialized view
// contents). A dump cut into sections moves the privileges of pre-data objects in front of
// the rows: a table owner who revoked a privilege from itself could then no longer load them.
// The agent therefore takes the schema once as an archive and has pg_restore write it in
// pg_dump's places: pre-data without privileges before the rows; after them the post-data
// entries, the database's own privileges, then every other privilege and what follows them.

// One entry of `pg_restore --list`: "ID; TABLEOID OID DESC SCHEMA NAME OWNER".
struct TocEntry {
  int id = 0;
  std::string line;         // as listed: pg_restore --use-list reads the ID at its start
  std::string description;  // "DESC SCHEMA NAME OWNER"
};
// The entries of a `pg_restore --list` output, in order (comment lines left out).
std::vector<TocEntry> parse_toc_list(const std::string& list);

struct SchemaPieces {
  std::string post_data;          // --use-list: the post-data entries of pg_restore's first pass
  std::string acls_and_after;     // --use-list: every other privilege, then the entries after them
  std::string database_acl;       // --use-list: the database's own privileges; empty if it has none
  std::size_t entries_after = 0;  // entries in post_data and acls_and_after
};
// `all`: `pg_restore --list --create` of the schema archive; `pre_data`: the same with
// `--section=pre-data --no-privileges`, which the first piece restores.
SchemaPieces plan_schema_pieces(const std::string& all, const std::string& pre_data);

// pg_restore --create writes CREATE DATABASE and \connect before any entry it is asked for:
// the database's privileges come out alone as the text `with_entry` (restored with their
// entry listed) has more than `without` (with no entry listed) right before the footer
// "PostgreSQL database dump complete". Nothing if the two differ in any other way.
std::optional<std::string> inserted_before_footer(const std::string& with_entry, const std::string& without);

}  // namespace agent
