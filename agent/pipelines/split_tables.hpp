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

// Session settings that make COPY write rows exactly as pg_dump's own session does, and
// scan every table from its first block, in one process.
std::string dump_session_setup();
// The transaction every range is copied in, as pg_dump's (run after the setup: a statement
// list runs as one implicit transaction, which BEGIN ISOLATION LEVEL cannot follow).
std::string dump_transaction();

}  // namespace agent
