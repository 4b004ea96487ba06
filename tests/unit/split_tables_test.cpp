#include "pipelines/split_tables.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes/fake_copy.hpp"

namespace agent {
namespace {

using testing::FakeCopyScript;
using testing::FakeCopySession;
using ::testing::HasSubstr;

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
  for (const char* setting : {"DateStyle = ISO", "IntervalStyle = postgres", "extra_float_digits = 3",
                              "row_security = off", "'search_path', ''", "'client_encoding'",
                              // Every range's scan starts at the first block, in this process.
                              "synchronize_seqscans = off", "max_parallel_workers_per_gather = 0"})
    EXPECT_THAT(setup, HasSubstr(setting));
  EXPECT_EQ(dump_transaction(), "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
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
