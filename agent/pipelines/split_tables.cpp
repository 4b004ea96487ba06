#include "pipelines/split_tables.hpp"

#include <sys/random.h>

#include <algorithm>
#include <charconv>

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

std::string row_range_copy(const SplitTable& table, std::uint64_t skip, std::optional<std::uint64_t> count) {
  std::string query = "COPY (SELECT " + table.columns + " FROM ONLY " + table.qualified;
  if (skip != 0) query += " OFFSET " + std::to_string(skip);
  if (count) query += " LIMIT " + std::to_string(*count);
  return query + ") TO STDOUT";
}

std::string dump_session_setup() {
  // As pg_dump sets up its connection (pg_backup_db.c / pg_dump.c's setup_connection): the
  // database's own encoding, ISO dates, exact floats, and an error rather than silently
  // filtered rows under row-level security.
  return "SELECT pg_catalog.set_config('search_path', '', false);"
         " SELECT pg_catalog.set_config('client_encoding', pg_catalog.pg_encoding_to_char(encoding), false)"
         " FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database();"
         " SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3;"
         " SET row_security = off; SET statement_timeout = 0; SET lock_timeout = 0;"
         " SET idle_in_transaction_session_timeout = 0;"
         // pg_dump turns synchronized scans off too: every scan starts at the first block, so
         // rows come in the same order on every connection. A parallel plan would not keep it.
         " SET synchronize_seqscans = off; SET max_parallel_workers_per_gather = 0";
}

std::string dump_transaction() {
  return "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
}

}  // namespace agent
