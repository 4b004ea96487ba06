#include "pipelines/split_tables.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "exec/commands.hpp"
#include "fakes/fake_copy.hpp"

namespace agent {
namespace {

using testing::FakeCopyScript;
using testing::FakeCopySession;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(FindSplitTables, ReadsTheLargestTablesAndLeavesOddOnesToPgDump) {
  FakeCopyScript script;
  script.query_rows = {
      {"public", "pgbench_accounts", "postgres", "public.pgbench_accounts", "aid, bid, abalance, filler",
       "20000000", "2685878272"},
      {"Sales", "Line Items", "app", "\"Sales\".\"Line Items\"", "id, \"Note\"", "40000", "327680000"},
      {"public", "no_columns", "postgres", "public.no_columns", "", "50000", "409600000"},
      {"public", "two\nlines", "postgres", "public.\"two\nlines\"", "id", "50000", "409600000"},
  };
  FakeCopySession session(script);
  auto tables = find_split_tables(session, 256u << 20);
  ASSERT_TRUE(tables.ok()) << tables.error().describe();
  ASSERT_EQ(tables->size(), 2u);
  EXPECT_EQ((*tables)[0].qualified, "public.pgbench_accounts");
  EXPECT_EQ((*tables)[0].columns, "aid, bid, abalance, filler");
  EXPECT_EQ((*tables)[0].rows, 20000000u);
  EXPECT_EQ((*tables)[0].bytes, 2685878272u);
  EXPECT_EQ((*tables)[1].schema, "Sales");
  EXPECT_EQ((*tables)[1].name, "Line Items");
  EXPECT_EQ((*tables)[1].owner, "app");
  // The size limit and the kinds of tables pg_dump dumps are in the catalog query.
  ASSERT_EQ(script.queries.size(), 1u);
  EXPECT_THAT(script.queries[0], HasSubstr(">= 268435456"));
  EXPECT_THAT(script.queries[0], HasSubstr("c.relkind = 'r' AND c.relpersistence = 'p'"));
  EXPECT_THAT(script.queries[0], HasSubstr("d.deptype = 'e'"));
  EXPECT_THAT(script.queries[0], HasSubstr("NOT a.attisdropped AND a.attgenerated = ''"));
}

TEST(SplitTables, ExcludePatternMatchesExactlyOneTable) {
  SplitTable table{"we\"ird", "a.b*", "o", "\"we\"\"ird\".\"a.b*\"", "id", 1, 8192};
  EXPECT_EQ(exact_table_pattern(table), "\"we\"\"ird\".\"a.b*\"");
}

TEST(SplitTables, HeaderAndTrailerAreWhatPgDumpWrites) {
  SplitTable table{"public", "t", "postgres", "public.t", "id, \"Name\"", 1, 8192};
  EXPECT_EQ(copy_block_header(table),
            "--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\n"
            "COPY public.t (id, \"Name\") FROM stdin;\n");
  EXPECT_EQ(copy_block_trailer(), "\\.\n\n\n");
  EXPECT_EQ(row_range_copy(table, 8, 16),
            "COPY (SELECT id, \"Name\" FROM ONLY public.t OFFSET 8 LIMIT 16) TO STDOUT");
  EXPECT_EQ(row_range_copy(table, 0, 16), "COPY (SELECT id, \"Name\" FROM ONLY public.t LIMIT 16) TO STDOUT");
  EXPECT_EQ(row_range_copy(table, 0, 0), "COPY (SELECT id, \"Name\" FROM ONLY public.t LIMIT 0) TO STDOUT");
  EXPECT_EQ(row_range_copy(table, 8, std::nullopt),
            "COPY (SELECT id, \"Name\" FROM ONLY public.t OFFSET 8) TO STDOUT");
}

TEST(SplitTables, SessionMatchesPgDumpsOutputSettings) {
  const std::string setup = dump_session_setup();
  for (const char* setting :
       {"DateStyle = ISO", "IntervalStyle = postgres", "extra_float_digits = 3", "row_security = off",
        "'search_path', ''", "statement_timeout = 0", "lock_timeout = 0",
        "idle_in_transaction_session_timeout = 0",
        // pg_dump 15.8 and later, where the server has the setting.
        "set_config(name, 'view, foreign-table', false) FROM pg_catalog.pg_settings"
        " WHERE name = 'restrict_nonsystem_relation_kind'",
        // Every range's scan starts at the first block, in this process.
        "synchronize_seqscans = off", "max_parallel_workers_per_gather = 0",
        // ... and is a sequential scan: nothing else is left to the planner.
        "enable_indexscan = off", "enable_indexonlyscan = off", "enable_bitmapscan = off"})
    EXPECT_THAT(setup, HasSubstr(setting));
  // pg_dump leaves the client encoding to the server's default (or PGCLIENTENCODING, which it
  // inherits from the agent): so do the copy sessions, or their rows could be in another
  // encoding than the one pg_dump's pieces declare.
  EXPECT_THAT(setup, Not(HasSubstr("client_encoding")));
  EXPECT_EQ(dump_transaction(), "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
}

TEST(SplitTables, APlanIsAcceptedOnlyAsOnePlainSequentialScan) {
  const std::string seq = R"({"Node Type": "Seq Scan", "Parallel Aware": false, "Relation Name": "t"})";
  EXPECT_EQ(scan_other_than_sequential("[{\"Plan\": " + seq + "}]"), std::nullopt);
  EXPECT_EQ(scan_other_than_sequential(R"([{"Plan": {"Node Type": "Limit", "Plans": [)" + seq + "]}}]"),
            std::nullopt);
  EXPECT_EQ(scan_other_than_sequential(
                R"([{"Plan": {"Node Type": "Limit", "Plans": [{"Node Type": "Index Only Scan"}]}}])"),
            "a plan with Index Only Scan");
  EXPECT_EQ(
      scan_other_than_sequential(R"([{"Plan": {"Node Type": "Bitmap Heap Scan", "Plans": [{"Node Type": )"
                                 R"("Bitmap Index Scan"}]}}])"),
      "a plan with Bitmap Heap Scan");
  EXPECT_EQ(
      scan_other_than_sequential(R"([{"Plan": {"Node Type": "Gather", "Plans": [{"Node Type": "Seq Scan", )"
                                 R"("Parallel Aware": true}]}}])"),
      "a plan with Gather");
  EXPECT_EQ(scan_other_than_sequential(R"([{"Plan": {"Node Type": "Seq Scan", "Parallel Aware": true}}])"),
            "a parallel Seq Scan");
  EXPECT_EQ(scan_other_than_sequential(R"([{"Plan": {"Node Type": "Sort", "Plans": [)" + seq + "]}}]"),
            "a plan with Sort");
  EXPECT_EQ(scan_other_than_sequential("not json"), "a plan the agent cannot read");
  EXPECT_EQ(scan_other_than_sequential(R"([{"Plan": {"Node Type": 7}}])"), "a plan the agent cannot read");
  EXPECT_EQ(scan_other_than_sequential(""), "a plan the agent cannot read");
}

TEST(SplitTables, ThePlanAskedForIsTheRangesSelect) {
  SplitTable table{"public", "t", "postgres", "public.t", "id", 1, 8192};
  EXPECT_EQ(row_range_select(table, 8, 16), "SELECT id FROM ONLY public.t OFFSET 8 LIMIT 16");
  EXPECT_EQ(row_range_plan_query(table, 8, std::nullopt),
            "EXPLAIN (FORMAT JSON) SELECT id FROM ONLY public.t OFFSET 8");
}

TEST(SplitTables, OnlyPgDump15TakesTheSplitPath) {
  const auto debian = parse_pg_dump_version("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n");
  ASSERT_TRUE(debian.has_value());
  EXPECT_EQ(debian->major, 15);
  EXPECT_EQ(debian->minor, 18);
  EXPECT_TRUE(split_copy_tested_with(debian));
  EXPECT_TRUE(split_copy_tested_with(parse_pg_dump_version("pg_dump (PostgreSQL) 15.2\n")));
  EXPECT_FALSE(split_copy_tested_with(parse_pg_dump_version("pg_dump (PostgreSQL) 16.4\n")));
  EXPECT_FALSE(split_copy_tested_with(parse_pg_dump_version("pg_dump (PostgreSQL) 14.13 (Ubuntu)\n")));
  EXPECT_FALSE(split_copy_tested_with(parse_pg_dump_version("pg_dump (PostgreSQL) 18beta1\n")));
  EXPECT_FALSE(split_copy_tested_with(parse_pg_dump_version("pg_dump (PostgreSQL) 15devel\n")));
  EXPECT_FALSE(split_copy_tested_with(parse_pg_dump_version("")));
  EXPECT_FALSE(split_copy_tested_with(std::nullopt));
}

// `pg_restore --list --create` of a schema archive (pre-data and post-data) as PostgreSQL 15.18
// prints it, with a database whose privileges were changed, an event trigger and a
// materialized view added.
const char* const kAllEntries = R"(;
; Archive created at 2026-11-30 14:55:11 UTC
;     dbname: api
;
; Selected TOC Entries:
;
3357; 1262 16384 DATABASE - api alice
3358; 0 0 DATABASE PROPERTIES - api alice
217; 1255 16402 FUNCTION public f() alice
3360; 0 0 ACL - DATABASE api alice
3361; 0 0 ACL public FUNCTION f() alice
214; 1259 16387 TABLE public t alice
3362; 0 0 ACL public TABLE t alice
216; 1259 16397 MATERIALIZED VIEW public mv alice
3363; 0 0 ACL public TABLE mv alice
215; 1259 16394 TABLE public u alice
3207; 2606 16393 CONSTRAINT public t t_pkey alice
3208; 1259 16405 INDEX public "ACL - DATABASE x" alice
2043; 826 16401 DEFAULT ACL - DEFAULT PRIVILEGES FOR TABLES alice
3353; 0 16397 MATERIALIZED VIEW DATA public mv alice
3210; 3466 16410 EVENT TRIGGER - guard postgres
3364; 0 0 COMMENT - EVENT TRIGGER guard postgres
3211; 2620 16411 TRIGGER public t audit alice
)";

// The same with --section=pre-data --no-privileges: what the first piece restores.
const char* const kFirstEntries = R"(;
; Selected TOC Entries:
;
3357; 1262 16384 DATABASE - api alice
3358; 0 0 DATABASE PROPERTIES - api alice
217; 1255 16402 FUNCTION public f() alice
214; 1259 16387 TABLE public t alice
216; 1259 16397 MATERIALIZED VIEW public mv alice
215; 1259 16394 TABLE public u alice
)";

TEST(SchemaPieces, ReadsTheEntriesOfAListInOrder) {
  const auto entries = parse_toc_list(kFirstEntries);
  ASSERT_EQ(entries.size(), 6u);
  EXPECT_EQ(entries[0].id, 3357);
  EXPECT_EQ(entries[0].description, "DATABASE - api alice");
  EXPECT_EQ(entries[2].line, "217; 1255 16402 FUNCTION public f() alice");
  EXPECT_EQ(entries[2].description, "FUNCTION public f() alice");
}

// After the rows: the post-data entries, then the database's privileges, then every other
// privilege in pg_dump's order, then event triggers and materialized view contents, as
// pg_dump's single output has them.
TEST(SchemaPieces, PrivilegesAndWhatFollowsThemComeAfterThePostDataEntries) {
  const auto pieces = plan_schema_pieces(kAllEntries, kFirstEntries);
  EXPECT_EQ(pieces.post_data,
            "3207; 2606 16393 CONSTRAINT public t t_pkey alice\n"
            // A name that looks like a database's privileges is only a name.
            "3208; 1259 16405 INDEX public \"ACL - DATABASE x\" alice\n"
            "3211; 2620 16411 TRIGGER public t audit alice\n");
  EXPECT_EQ(pieces.database_acl, "3360; 0 0 ACL - DATABASE api alice\n");
  EXPECT_EQ(pieces.acls_and_after,
            "3361; 0 0 ACL public FUNCTION f() alice\n"
            "3362; 0 0 ACL public TABLE t alice\n"
            "3363; 0 0 ACL public TABLE mv alice\n"
            "2043; 826 16401 DEFAULT ACL - DEFAULT PRIVILEGES FOR TABLES alice\n"
            "3353; 0 16397 MATERIALIZED VIEW DATA public mv alice\n"
            "3210; 3466 16410 EVENT TRIGGER - guard postgres\n"
            "3364; 0 0 COMMENT - EVENT TRIGGER guard postgres\n");
  EXPECT_EQ(pieces.entries_after, 10u);
}

TEST(SchemaPieces, ADatabaseWithDefaultPrivilegesHasNoDatabaseEntry) {
  const auto pieces =
      plan_schema_pieces("1; 0 0 DATABASE - api postgres\n2; 1259 1 TABLE public t postgres\n",
                         "1; 0 0 DATABASE - api postgres\n2; 1259 1 TABLE public t postgres\n");
  EXPECT_EQ(pieces.post_data, "");
  EXPECT_EQ(pieces.database_acl, "");
  EXPECT_EQ(pieces.acls_and_after, "");
}

// What pg_restore --create writes with no entry listed, up to its footer.
const std::string kCreateDatabase =
    "--\n-- PostgreSQL database dump\n--\n\n\\restrict K\n\n"
    "CREATE DATABASE api WITH TEMPLATE = template0 ENCODING = 'UTF8';\n\n\n"
    "ALTER DATABASE api OWNER TO alice;\n\n\\unrestrict K\n\\connect api\n\\restrict K\n\n"
    "SET row_security = off;\n\n";
const std::string kFooter = "--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict K\n\n";
const std::string kDatabaseAcl =
    "--\n-- Name: DATABASE api; Type: ACL; Schema: -; Owner: alice\n--\n\n"
    "REVOKE CONNECT,TEMPORARY ON DATABASE api FROM PUBLIC;\nGRANT CONNECT ON DATABASE api TO bob;\n\n\n";

TEST(SchemaPieces, TheDatabasesPrivilegesAreCutOutWholeWithoutCreateDatabase) {
  // Both texts share "--\n-- " where the entry begins: the cut is at the footer, not after it.
  EXPECT_EQ(inserted_before_footer(kCreateDatabase + kDatabaseAcl + kFooter, kCreateDatabase + kFooter),
            kDatabaseAcl);
}

TEST(SchemaPieces, AnyOtherDifferenceIsRefused) {
  EXPECT_EQ(inserted_before_footer(kCreateDatabase + kDatabaseAcl + kFooter, kCreateDatabase), std::nullopt);
  EXPECT_EQ(inserted_before_footer(kDatabaseAcl + kCreateDatabase + kFooter, kCreateDatabase + kFooter),
            std::nullopt);
  EXPECT_EQ(inserted_before_footer(kCreateDatabase + kFooter + kDatabaseAcl, kCreateDatabase + kFooter),
            std::nullopt);
  EXPECT_EQ(inserted_before_footer(kCreateDatabase + kFooter, kCreateDatabase + kFooter), std::nullopt);
  std::string other_key = kCreateDatabase + kDatabaseAcl + kFooter;
  other_key.replace(other_key.rfind("unrestrict K"), 12, "unrestrict L");
  EXPECT_EQ(inserted_before_footer(other_key, kCreateDatabase + kFooter), std::nullopt);
}

// The schema is taken once as an archive and written in pieces by pg_restore, to standard
// output, sharing the dump's restrict key.
TEST(SchemaPieces, ArchiveAndRestoreCommandLines) {
  DumpRequest schema;
  schema.bindir = "/b";
  schema.host = "/s/run";
  schema.port = 5533;
  schema.user = "postgres";
  schema.database = "api";
  schema.restrict_key = "K3y";  // pg_dump takes it for plain output only
  schema.schema_archive = "/s/dump-schema.pgdump";
  const auto dump = pg_dump_argv(schema);
  EXPECT_THAT(dump, ::testing::IsSupersetOf({"--format=custom", "--compress=0", "--section=pre-data",
                                             "--section=post-data", "--file=/s/dump-schema.pgdump"}));
  EXPECT_THAT(dump, Not(::testing::Contains("--create")));
  EXPECT_THAT(dump, Not(::testing::Contains("--restrict-key=K3y")));
  PgRestoreRequest first{"/b", "/s/dump-schema.pgdump", false, true, "pre-data", true, "", "K3y"};
  EXPECT_THAT(pg_restore_argv(first),
              ::testing::ElementsAre("/b/pg_restore", "--create", "--section=pre-data", "--no-privileges",
                                     "--restrict-key=K3y", "--file=-", "/s/dump-schema.pgdump"));
  PgRestoreRequest list{"/b", "/s/dump-schema.pgdump", true, true, "", false, "", "K3y"};
  EXPECT_THAT(pg_restore_argv(list),
              ::testing::ElementsAre("/b/pg_restore", "--list", "--create", "/s/dump-schema.pgdump"));
  PgRestoreRequest acls{"/b", "/s/dump-schema.pgdump", false, false, "", false, "/s/dump-acls.list", "K3y"};
  EXPECT_THAT(pg_restore_argv(acls),
              ::testing::ElementsAre("/b/pg_restore", "--use-list=/s/dump-acls.list", "--restrict-key=K3y",
                                     "--file=-", "/s/dump-schema.pgdump"));
}

TEST(ReplayState, IsReadOnTheDumpsConnection) {
  FakeCopyScript script;
  script.query_rows = {{"0/3000148", "paused"}};
  FakeCopySession session(script);
  auto state = read_replay_state(session);
  ASSERT_TRUE(state.ok()) << state.error().describe();
  EXPECT_EQ(state->lsn, "0/3000148");
  EXPECT_EQ(state->pause_state, "paused");
  EXPECT_THAT(script.queries.at(0), HasSubstr("pg_catalog.pg_last_wal_replay_lsn()"));
  EXPECT_THAT(script.queries.at(0), HasSubstr("pg_catalog.pg_get_wal_replay_pause_state()"));
  script.query_rows = {};
  EXPECT_FALSE(read_replay_state(session).ok());
}

TEST(ReplayState, AnyMoveFailsTheDump) {
  const ReplayState before{"0/3000148", "paused"};
  EXPECT_EQ(replay_moved(before, before), std::nullopt);
  const auto replayed = replay_moved(before, ReplayState{"0/3000200", "paused"});
  ASSERT_TRUE(replayed.has_value());
  EXPECT_EQ(replayed->kind, ErrorKind::verification);
  EXPECT_THAT(replayed->message, HasSubstr("from 0/3000148 to 0/3000200"));
  const auto resumed = replay_moved(before, ReplayState{"0/3000148", "not paused"});
  ASSERT_TRUE(resumed.has_value());
  EXPECT_THAT(resumed->message, HasSubstr("'not paused'"));
  EXPECT_FALSE(resumed->hint.empty());
}

TEST(SplitTables, RestrictKeysAreRandomAlphanumerics) {
  const std::string key = random_restrict_key();
  EXPECT_EQ(key.size(), 40u);
  EXPECT_EQ(key.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            std::string::npos);
  EXPECT_NE(key, random_restrict_key());
  EXPECT_EQ(restrict_line(key), "\\restrict " + key + "\n\n");
  EXPECT_EQ(unrestrict_line(key), "\\unrestrict " + key + "\n\n");
}

}  // namespace
}  // namespace agent
