#include "pipelines/split_tables.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace agent {
namespace {

std::uint64_t to_u64(const std::string& text) {
  std::uint64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

std::string double_quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Result<std::vector<SplitTable>> find_split_tables(CopySession& session, std::uint64_t min_bytes) {
  // pg_dump dumps the rows of every table outside the system schemas that no extension owns
  // (an extension's configuration tables are dumped by pg_dump as usual). quote_ident quotes
  // exactly as pg_dump's fmtId does. The row estimate scales the statistics' density to the
  // table's size, as the planner does; a table never analysed is taken at 64 rows a block.
  const std::string sql =
      "SELECT n.nspname, c.relname, pg_catalog.pg_get_userbyid(c.relowner),"
      " pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),"
      " (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)"
      "    FROM pg_catalog.pg_attribute a"
      "   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''),"
      " CASE WHEN c.reltuples > 0 AND c.relpages > 0 THEN (c.reltuples / c.relpages * pages.blocks)::bigint"
      "  ELSE pages.blocks * 64 END,"
      " size.bytes"
      " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
      " CROSS JOIN LATERAL (SELECT pg_catalog.pg_relation_size(c.oid) AS bytes) size"
      " CROSS JOIN LATERAL (SELECT size.bytes / pg_catalog.current_setting('block_size')::bigint AS blocks)"
      " pages"
      " WHERE c.relkind = 'r' AND c.relpersistence = 'p'"
      "   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
      "   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d"
      "                    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
      "                      AND d.objid = c.oid AND d.deptype = 'e')"
      "   AND size.bytes >= " +
      std::to_string(min_bytes) + " ORDER BY 7 DESC, 1, 2";
  auto rows = session.query(sql);
  if (!rows) return rows.error().with_context("listing the largest tables");
  std::vector<SplitTable> tables;
  for (const auto& row : *rows) {
    if (row.size() != 7 || row[4].empty()) continue;  // a table without columns: left to pg_dump
    // A name with a line break would need psql's restricted mode to stay harmless in the
    // COPY header; pg_dump writes such a table as usual.
    if (std::any_of(row.begin(), row.begin() + 5, [](const std::string& field) {
          return field.find_first_of("\r\n") != std::string::npos;
        }))
      continue;
    tables.push_back(SplitTable{row[0], row[1], row[2], row[3], row[4], to_u64(row[5]), to_u64(row[6])});
  }
  return tables;
}

std::string random_restrict_key() {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char random[40];
  std::size_t got = 0;
  while (got < sizeof random) {
    const ssize_t n = getrandom(random + got, sizeof random - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  std::string key;
  for (unsigned char byte : random) key += alphabet[byte % (sizeof alphabet - 1)];
  return key;
}

std::string restrict_line(const std::string& key) {
  return "\\restrict " + key + "\n\n";
}

std::string unrestrict_line(const std::string& key) {
  return "\\unrestrict " + key + "\n\n";
}

std::string exact_table_pattern(const SplitTable& table) {
  return double_quoted(table.schema) + "." + double_quoted(table.name);
}

std::string copy_block_header(const SplitTable& table) {
  return "--\n-- Data for Name: " + table.name + "; Type: TABLE DATA; Schema: " + table.schema +
         "; Owner: " + table.owner + "\n--\n\nCOPY " + table.qualified + " (" + table.columns +
         ") FROM stdin;\n";
}

std::string copy_block_trailer() {
  return "\\.\n\n\n";
}

std::string row_range_select(const SplitTable& table, std::uint64_t skip,
                             std::optional<std::uint64_t> count) {
  std::string query = "SELECT " + table.columns + " FROM ONLY " + table.qualified;
  if (skip != 0) query += " OFFSET " + std::to_string(skip);
  if (count) query += " LIMIT " + std::to_string(*count);
  return query;
}

std::string row_range_copy(const SplitTable& table, std::uint64_t skip, std::optional<std::uint64_t> count) {
  return "COPY (" + row_range_select(table, skip, count) + ") TO STDOUT";
}

std::string row_range_plan_query(const SplitTable& table, std::uint64_t skip,
                                 std::optional<std::uint64_t> count) {
  return "EXPLAIN (FORMAT JSON) " + row_range_select(table, skip, count);
}

std::optional<std::string> scan_other_than_sequential(const std::string& plan_json) {
  const auto parsed = nlohmann::json::parse(plan_json, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_array() || parsed.size() != 1 || !parsed[0].is_object() || !parsed[0].contains("Plan"))
    return "a plan the agent cannot read";
  try {
    // Down the single line of nodes: Limit nodes, then one Seq Scan with nothing below it.
    const nlohmann::json* node = &parsed[0]["Plan"];
    for (;;) {
      if (!node->is_object()) return "a plan the agent cannot read";
      const std::string type = node->value("Node Type", "");
      const auto children = node->find("Plans");
      const bool leaf = children == node->end() || (children->is_array() && children->empty());
      if (node->value("Parallel Aware", false)) return "a parallel " + type;
      if (type == "Seq Scan" && leaf) return std::nullopt;
      if (type != "Limit" || leaf || !children->is_array() || children->size() != 1)
        return type.empty() ? std::string("a plan the agent cannot read") : "a plan with " + type;
      node = &(*children)[0];
    }
  } catch (const nlohmann::json::exception&) {  // a field of an unexpected type
    return "a plan the agent cannot read";
  }
}

std::string dump_session_setup() {
  // As pg_dump 15 sets up its connection (setup_connection in pg_dump.c), in its order: an
  // empty search_path, ISO dates, postgres intervals, exact floats, no synchronized scans
  // (every scan starts at the first block, so rows come in the same order on every
  // connection), no timeouts, an error rather than silently filtered rows under row-level
  // security, and since 15.8 no expansion of views or foreign tables (set only where the
  // server has the setting, exactly as pg_dump does). The client encoding is not set: like
  // pg_dump's, the connection gets the server's default (the database's encoding unless the
  // configuration says otherwise) or PGCLIENTENCODING, which pg_dump inherits from the agent.
  return "SELECT pg_catalog.set_config('search_path', '', false);"
         " SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3;"
         " SET synchronize_seqscans = off;"
         " SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0;"
         " SET row_security = off;"
         " SELECT pg_catalog.set_config(name, 'view, foreign-table', false) FROM pg_catalog.pg_settings"
         " WHERE name = 'restrict_nonsystem_relation_kind';"
         // The pins: pg_dump's COPY of a whole table always reads it in physical order; a
         // range's SELECT has a planner, which could pick an index (an index-only scan over a
         // covering index is cheaper where random reads are configured cheap), a bitmap scan
         // or a parallel plan, and its rows would come in another order. Only a sequential
         // scan is left.
         " SET enable_indexscan = off; SET enable_indexonlyscan = off; SET enable_bitmapscan = off;"
         " SET max_parallel_workers_per_gather = 0";
}

std::string dump_transaction() {
  return "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
}

Result<ReplayState> read_replay_state(CopySession& session) {
  // The pause state only exists during recovery; a copy that was promoted says so instead.
  auto rows = session.query(
      "SELECT pg_catalog.pg_last_wal_replay_lsn(), CASE WHEN pg_catalog.pg_is_in_recovery()"
      " THEN pg_catalog.pg_get_wal_replay_pause_state() ELSE 'not in recovery' END");
  if (!rows) return rows.error().with_context("reading where the temporary server's replay stands");
  if (rows->size() != 1 || (*rows)[0].size() != 2)
    return make_error(ErrorKind::internal, "the temporary server's replay position came back unreadable");
  return ReplayState{(*rows)[0][0], (*rows)[0][1]};
}

std::optional<Error> replay_moved(const ReplayState& before, const ReplayState& after) {
  const std::string hint =
      "nothing else may connect to the scratch server or resume its replay; run the dump again";
  if (after.lsn != before.lsn)
    return make_error(ErrorKind::verification,
                      "the temporary server replayed WAL while the rows were copied (from " + before.lsn +
                          " to " + after.lsn + "): the connections may have seen different data",
                      hint);
  if (after.pause_state != "paused" || before.pause_state != "paused")
    return make_error(ErrorKind::verification,
                      "the temporary server's replay is '" + after.pause_state +
                          "' after the rows were copied, no longer paused at the target",
                      hint);
  return std::nullopt;
}

std::optional<PgDumpVersion> parse_pg_dump_version(const std::string& version_output) {
  static const std::string marker = "(PostgreSQL) ";
  const auto at = version_output.find(marker);
  if (at == std::string::npos) return std::nullopt;
  const char* first = version_output.data() + at + marker.size();
  const char* last = version_output.data() + version_output.size();
  PgDumpVersion version;
  auto major = std::from_chars(first, last, version.major);
  if (major.ec != std::errc() || major.ptr == last || *major.ptr != '.') return std::nullopt;
  auto minor = std::from_chars(major.ptr + 1, last, version.minor);
  if (minor.ec != std::errc() || (minor.ptr != last && !std::isspace(static_cast<unsigned char>(*minor.ptr))))
    return std::nullopt;
  return version;
}

bool split_copy_tested_with(const std::optional<PgDumpVersion>& version) {
  // PostgreSQL 15, the version the agent is built and tested for (Debian 12). Within it the
  // parts of pg_dump the pieces depend on are its plain format, its section and privilege
  // passes and its session setup; minor releases changed only the setup, each time in a way
  // the agent follows at run time as pg_dump does (restrict_nonsystem_relation_kind in 15.8,
  // set only where the server has it; the \restrict key in 15.14, asked of pg_dump --help).
  return version && version->major == 15;
}

std::vector<TocEntry> parse_toc_list(const std::string& list) {
  std::vector<TocEntry> entries;
  std::istringstream in(list);
  std::string line;
  while (std::getline(in, line)) {
    // "ID; TABLEOID OID DESC SCHEMA NAME OWNER"
    int id = 0;
    const auto parsed = std::from_chars(line.data(), line.data() + line.size(), id);
    if (parsed.ec != std::errc() || id <= 0 || parsed.ptr == line.data() + line.size() || *parsed.ptr != ';')
      continue;
    std::istringstream fields(line.substr(static_cast<std::size_t>(parsed.ptr - line.data()) + 1));
    std::string table_oid, oid;
    if (!(fields >> table_oid >> oid)) continue;
    std::string description;
    std::getline(fields >> std::ws, description);
    entries.push_back(TocEntry{id, line, description});
  }
  return entries;
}

SchemaPieces plan_schema_pieces(const std::string& all, const std::string& pre_data) {
  std::set<int> restored_first;
  for (const auto& entry : parse_toc_list(pre_data)) restored_first.insert(entry.id);
  const auto starts = [](const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; };
  SchemaPieces pieces;
  std::string acls, after_acls;
  for (const auto& entry : parse_toc_list(all)) {
    if (restored_first.count(entry.id) != 0) continue;
    const std::string& d = entry.description;  // DESC comes first, as pg_dump names it
    // pg_restore's passes (_tocEntryRestorePass in PostgreSQL 15's pg_backup_archiver.c).
    if (starts(d, "ACL - DATABASE ")) {
      pieces.database_acl += entry.line + "\n";
    } else if (starts(d, "ACL ") || starts(d, "DEFAULT ACL ")) {
      acls += entry.line + "\n";
    } else if (starts(d, "EVENT TRIGGER ") || starts(d, "MATERIALIZED VIEW DATA ") ||
               starts(d, "COMMENT - EVENT TRIGGER ")) {
      after_acls += entry.line + "\n";
    } else {
      pieces.post_data += entry.line + "\n";
    }
    if (!starts(d, "ACL - DATABASE ")) ++pieces.entries_after;
  }
  pieces.acls_and_after = acls + after_acls;
  return pieces;
}

std::optional<std::string> inserted_before_footer(const std::string& with_entry, const std::string& without) {
  static const std::string footer = "--\n-- PostgreSQL database dump complete\n--\n";
  const auto at = without.rfind(footer);
  if (at == std::string::npos || with_entry.size() <= without.size()) return std::nullopt;
  const std::size_t extra = with_entry.size() - without.size();
  if (with_entry.compare(0, at, without, 0, at) != 0) return std::nullopt;
  if (with_entry.compare(at + extra, std::string::npos, without, at) != 0) return std::nullopt;
  std::string inserted = with_entry.substr(at, extra);
  // One or more whole entries: each starts with "--" and ends with a blank line.
  if (inserted.rfind("--\n", 0) != 0 || inserted.size() < 2 || inserted.compare(extra - 2, 2, "\n\n") != 0)
    return std::nullopt;
  return inserted;
}

}  // namespace agent
