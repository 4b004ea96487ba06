#include "pipelines/parallel_copy.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <regex>
#include <thread>

#include "fakes/fake_copy.hpp"
#include "fakes/temp_directory.hpp"

namespace agent {
namespace {

using testing::FakeCopyConnector;
using testing::FakeCopyScript;
using ::testing::HasSubstr;
using testing::TempDirectory;

SplitTable table(const std::string& name, std::uint64_t rows) {
  return SplitTable{"public", name, "postgres", "public." + name, "id, payload", rows, rows * 100};
}

// Settings for `connections` connections that set rows aside in `spill_directory`.
ParallelCopySettings spilling(int connections, const std::string& spill_directory,
                              std::size_t hold_bytes = ParallelCopySettings{}.hold_bytes) {
  ParallelCopySettings settings;
  settings.connections = connections;
  settings.spill_directory = spill_directory;
  settings.hold_bytes = hold_bytes;
  return settings;
}

// What the writer receives, with the moments of its calls.
struct Collected {
  std::mutex mutex;
  std::string text;
  int concurrent = 0;
  int max_concurrent = 0;
  std::chrono::steady_clock::time_point first_write{};
  OrderedWrite writer() {
    return [this](const char* data, std::size_t size) -> Status {
      {
        std::lock_guard lock(mutex);
        max_concurrent = std::max(max_concurrent, ++concurrent);
        if (text.empty()) first_write = std::chrono::steady_clock::now();
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      std::lock_guard lock(mutex);
      text.append(data, size);
      --concurrent;
      return {};
    };
  }
};

// What pg_dump would write for these tables: each one's header, all its rows, its end.
std::string whole_tables(const std::vector<SplitTable>& tables, FakeCopyScript& script) {
  std::string out;
  for (const auto& t : tables)
    out += copy_block_header(t) + script.rows_for(row_range_copy(t, 0, std::nullopt)) + copy_block_trailer();
  return out;
}

TEST(PlanCopyChunks, CutsEachTableIntoOneRowRangePerConnectionWithItsHeaderFirstAndItsEndLast) {
  const auto chunks = plan_copy_chunks({table("big", 1000), table("small", 1)}, 2, 0.16);
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks[0].prefix,
            "--\n-- Data for Name: big; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\n"
            "COPY public.big (id, payload) FROM stdin;\n");
  // The second range skips 543 rows before copying: the first gets more rows to make up for it
  // (0.16 * 543 + 457 = 543).
  EXPECT_EQ(chunks[0].query, "COPY (SELECT id, payload FROM ONLY public.big LIMIT 543) TO STDOUT");
  EXPECT_EQ(chunks[0].suffix, "");
  // The last range has no upper bound: rows beyond the estimate still come along.
  EXPECT_EQ(chunks[1].query, "COPY (SELECT id, payload FROM ONLY public.big OFFSET 543) TO STDOUT");
  EXPECT_EQ(chunks[1].prefix, "");
  EXPECT_EQ(chunks[1].suffix, "\\.\n\n\n");
  EXPECT_THAT(chunks[2].prefix, HasSubstr("COPY public.small (id, payload) FROM stdin;\n"));
  EXPECT_EQ(chunks[2].query, "COPY (SELECT id, payload FROM ONLY public.small LIMIT 1) TO STDOUT");
  EXPECT_EQ(chunks[3].query, "COPY (SELECT id, payload FROM ONLY public.small OFFSET 1) TO STDOUT");
  EXPECT_EQ(chunks[3].suffix, "\\.\n\n\n");
  // Each range's plan is asked for before its rows.
  EXPECT_EQ(chunks[0].plan_query, "EXPLAIN (FORMAT JSON) SELECT id, payload FROM ONLY public.big LIMIT 543");
  EXPECT_EQ(chunks[1].plan_query, "EXPLAIN (FORMAT JSON) SELECT id, payload FROM ONLY public.big OFFSET 543");
}

TEST(PlanCopyChunks, EveryRangeCostsAboutTheSame) {
  const double skip_cost = 0.2;
  const auto chunks = plan_copy_chunks({table("big", 1000000)}, 4, skip_cost);
  ASSERT_EQ(chunks.size(), 4u);
  static const std::regex range(R"(FROM ONLY \S+(?: OFFSET (\d+))?(?: LIMIT (\d+))?\))");
  std::vector<double> costs;
  std::uint64_t next = 0;
  for (const auto& chunk : chunks) {
    std::smatch m;
    ASSERT_TRUE(std::regex_search(chunk.query, m, range)) << chunk.query;
    const std::uint64_t skip = m[1].matched ? std::stoull(m[1]) : 0;
    EXPECT_EQ(skip, next) << "ranges must follow each other without gap or overlap";
    const std::uint64_t count = m[2].matched ? std::stoull(m[2]) : 1000000 - skip;
    next = skip + count;
    costs.push_back(skip_cost * static_cast<double>(skip) + static_cast<double>(count));
  }
  EXPECT_GT(costs.front(), 250000 * 1.1) << "the first range takes more rows than an even share";
  for (double cost : costs) EXPECT_NEAR(cost, costs.front(), 2.0);
}

TEST(PlanCopyChunks, AnEmptyEstimateStillCopiesEveryRowOnce) {
  FakeCopyScript script;
  script.table_rows["public.t"] = 25;
  const auto chunks = plan_copy_chunks({table("t", 0)}, 3);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].query, "COPY (SELECT id, payload FROM ONLY public.t LIMIT 0) TO STDOUT");
  EXPECT_EQ(chunks[2].query, "COPY (SELECT id, payload FROM ONLY public.t) TO STDOUT");
}

TEST(ParallelCopy, WritesEveryRangeInTableOrderWhicheverConnectionFinishesFirst) {
  FakeCopyScript script;
  script.table_rows = {{"public.a", 400}, {"public.b", 7}};
  // The first range of each table is slow, so later ranges finish before earlier ones.
  script.delay_for = [](const std::string& query) {
    return std::chrono::milliseconds(query.find("OFFSET") == std::string::npos ? 40 : 1);
  };
  FakeCopyConnector connector(script);
  const std::vector<SplitTable> tables = {table("a", 400), table("b", 7)};
  const auto chunks = plan_copy_chunks(tables, 3);
  ASSERT_EQ(chunks.size(), 6u);
  TempDirectory spill("spill-test");
  const ParallelCopySettings settings = spilling(3, spill.path, 16);
  Collected out;
  auto status = copy_chunks_in_order(chunks, connector, settings, out.writer(), CancelToken::never());
  ASSERT_TRUE(status.ok()) << status.error().describe();
  EXPECT_EQ(out.text, whole_tables(tables, script));
  EXPECT_EQ(out.max_concurrent, 1) << "two writes overlapped";
  EXPECT_EQ(script.sessions.load(), 3);
  EXPECT_EQ(script.threads.size(), 3u);
  // Each connection reads in pg_dump's session settings and one read-only transaction.
  ASSERT_EQ(script.executed.size(), 6u);
  EXPECT_EQ(std::count(script.executed.begin(), script.executed.end(), dump_transaction()), 3);
  EXPECT_EQ(std::count(script.executed.begin(), script.executed.end(), dump_session_setup()), 3);
  EXPECT_TRUE(spill.empty()) << "a file was left in " << spill.path;
}

// The estimate only decides where to cut: a table that grew or shrank since its statistics
// still comes out whole, each row once.
TEST(ParallelCopy, EveryRowOnceWhateverTheEstimate) {
  for (const unsigned long actual : {0ul, 3ul, 100ul, 5000ul}) {
    FakeCopyScript script;
    script.table_rows["public.a"] = actual;
    FakeCopyConnector connector(script);
    const std::vector<SplitTable> tables = {table("a", 100)};
    TempDirectory spill("spill-test");
    const ParallelCopySettings settings = spilling(3, spill.path);
    Collected out;
    ASSERT_TRUE(copy_chunks_in_order(plan_copy_chunks(tables, 3), connector, settings, out.writer(),
                                     CancelToken::never())
                    .ok());
    EXPECT_EQ(out.text, whole_tables(tables, script)) << actual << " rows";
  }
}

TEST(ParallelCopy, NeverOpensMoreConnectionsThanRanges) {
  FakeCopyScript script;
  FakeCopyConnector connector(script);
  const std::vector<SplitTable> tables = {table("a", 10)};
  const auto chunks = plan_copy_chunks(tables, 1);
  ParallelCopySettings settings;
  settings.connections = 4;
  Collected out;
  ASSERT_TRUE(copy_chunks_in_order(chunks, connector, settings, out.writer(), CancelToken::never()).ok());
  EXPECT_EQ(script.sessions.load(), 1);
  EXPECT_EQ(out.text, whole_tables(tables, script));
}

// The first range answers one short row after 300 ms; the second, `big` at once, in 64 KiB
// pieces: the second connection is far ahead of its turn.
void slow_first_range_then_big_second(FakeCopyScript& script, const std::string& big) {
  script.rows_for = [&big](const std::string& query) {
    return query.find("OFFSET") == std::string::npos ? std::string("first\n") : big + "\n";
  };
  script.delay_for = [](const std::string& query) {
    return std::chrono::milliseconds(query.find("OFFSET") == std::string::npos ? 300 : 0);
  };
  script.piece_bytes = 64 << 10;
}

// A connection whose turn has not come keeps copying: beyond its share of memory, its rows
// wait in an unnamed file, so it finishes its range before the one ahead of it is written,
// and the agent's memory stays flat.
TEST(ParallelCopy, AConnectionAheadOfItsTurnSetsItsRowsAsideAndGoesOn) {
  FakeCopyScript script;
  const std::string big(4 << 20, 'x');
  slow_first_range_then_big_second(script, big);
  std::mutex mutex;
  std::chrono::steady_clock::time_point second_range_read{};
  FakeCopyConnector connector(script);
  const auto chunks = plan_copy_chunks({table("a", 2)}, 2);
  TempDirectory spill("spill-test");
  const ParallelCopySettings settings = spilling(2, spill.path, 1 << 20);
  Collected out;
  auto inner = out.writer();
  std::size_t largest_write = 0;
  const OrderedWrite write = [&](const char* data, std::size_t size) {
    largest_write = std::max(largest_write, size);
    return inner(data, size);
  };
  // The second range's rows are all read when its COPY returns; stamp that moment.
  class StampingConnector final : public CopyConnector {
   public:
    StampingConnector(CopyConnector& inner, std::function<void()> on_second_done)
        : inner_(inner), on_second_done_(std::move(on_second_done)) {}
    Result<std::unique_ptr<CopySession>> connect(const std::string& conninfo) override {
      auto session = inner_.connect(conninfo);
      if (!session) return session.error();
      return std::unique_ptr<CopySession>(std::make_unique<Stamping>(std::move(*session), on_second_done_));
    }

   private:
    class Stamping final : public CopySession {
     public:
      Stamping(std::unique_ptr<CopySession> inner, std::function<void()> done)
          : inner_(std::move(inner)), done_(std::move(done)) {}
      Status execute(const std::string& sql) override { return inner_->execute(sql); }
      Result<std::vector<std::vector<std::string>>> query(const std::string& sql) override {
        return inner_->query(sql);
      }
      Status copy_out(const std::string& sql, const std::function<bool(const char*, std::size_t)>& on_data,
                      const CancelToken& cancel) override {
        auto status = inner_->copy_out(sql, on_data, cancel);
        if (sql.find("OFFSET") != std::string::npos) done_();
        return status;
      }

     private:
      std::unique_ptr<CopySession> inner_;
      std::function<void()> done_;
    };
    CopyConnector& inner_;
    std::function<void()> on_second_done_;
  } stamping(connector, [&] {
    std::lock_guard lock(mutex);
    second_range_read = std::chrono::steady_clock::now();
  });
  ASSERT_TRUE(copy_chunks_in_order(chunks, stamping, settings, write, CancelToken::never()).ok());
  EXPECT_EQ(out.text, copy_block_header(table("a", 2)) + "first\n" + big + "\n" + copy_block_trailer());
  EXPECT_LT(second_range_read, out.first_write) << "the second range waited for the first";
  EXPECT_LE(largest_write, (2u << 20) + (64u << 10)) << "written in pieces of about a megabyte";
  EXPECT_TRUE(spill.empty()) << "a file was left in " << spill.path;
}

// The dump starts the connections before pg_dump writes the schema: they copy meanwhile.
TEST(ParallelCopy, ConnectionsCopyBeforeTheWriterAsks) {
  FakeCopyScript script;
  script.table_rows["public.a"] = 1000;
  FakeCopyConnector connector(script);
  const std::vector<SplitTable> tables = {table("a", 1000)};
  TempDirectory spill("spill-test");
  const ParallelCopySettings settings = spilling(2, spill.path);
  ParallelCopy copy(plan_copy_chunks(tables, 2), connector, settings, CancelToken::never());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(script.mutex);
      if (script.queries.size() == 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(script.queries.size(), 2u) << "the connections waited for the writer";
  Collected out;
  ASSERT_TRUE(copy.write_in_order(out.writer()).ok());
  EXPECT_EQ(out.text, whole_tables(tables, script));
}

// When pg_dump fails before the rows' turn, the copy is left unwritten: its end stops the
// connections at once, even while the server has not sent a row yet.
TEST(ParallelCopy, LeftUnwrittenItStopsItsConnections) {
  FakeCopyScript script;
  script.delay_for = [](const std::string&) { return std::chrono::milliseconds(20000); };
  FakeCopyConnector connector(script);
  const auto started = std::chrono::steady_clock::now();
  {
    ParallelCopy copy(plan_copy_chunks({table("a", 10)}, 2), connector, ParallelCopySettings{},
                      CancelToken::never());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_EQ(script.sessions.load(), 2);
}

// The rows beyond a connection's share go to disk, not to memory: where there is no room for
// them, the copy fails with the reason and what to do.
TEST(ParallelCopy, RowsThatCannotBeSetAsideFailTheCopy) {
  FakeCopyScript script;
  const std::string big(4 << 20, 'x');
  slow_first_range_then_big_second(script, big);
  FakeCopyConnector connector(script);
  const ParallelCopySettings settings = spilling(2, "/nonexistent/spill", 1 << 20);
  Collected out;
  auto status = copy_chunks_in_order(plan_copy_chunks({table("a", 2)}, 2), connector, settings, out.writer(),
                                     CancelToken::never());
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message, HasSubstr("rows set aside in /nonexistent/spill"));
  EXPECT_THAT(status.error().message, HasSubstr("No such file or directory"));
  EXPECT_FALSE(status.error().hint.empty());
}

TEST(ParallelCopy, AFailedRangeStopsEveryConnectionAndIsWhatIsReported) {
  FakeCopyScript script;
  script.table_rows = {{"public.a", 40}, {"public.b", 40}, {"public.c", 40}};
  script.failing_query_part = "public.b OFFSET";
  script.delay_for = [](const std::string& query) {
    return std::chrono::milliseconds(query.find("public.b LIMIT") != std::string::npos ? 100 : 0);
  };
  FakeCopyConnector connector(script);
  const auto chunks = plan_copy_chunks({table("a", 40), table("b", 40), table("c", 40)}, 2);
  TempDirectory spill("spill-test");
  const ParallelCopySettings settings = spilling(2, spill.path, 8);
  Collected out;
  auto status = copy_chunks_in_order(chunks, connector, settings, out.writer(), CancelToken::never());
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message, HasSubstr("could not read block"));
  // Nothing from the failed range or after it was written.
  EXPECT_EQ(out.text.find("public.b row 39"), std::string::npos) << out.text;
  EXPECT_EQ(out.text.find("public.c"), std::string::npos) << out.text;
  EXPECT_LT(script.queries.size(), chunks.size()) << "the other connection went on copying";
}

TEST(ParallelCopy, AFailedWriteStopsTheCopy) {
  FakeCopyScript script;
  FakeCopyConnector connector(script);
  script.table_rows["public.a"] = 100000;
  const auto chunks = plan_copy_chunks({table("a", 100000)}, 2);
  TempDirectory spill("spill-test");
  ParallelCopySettings settings;
  settings.spill_directory = spill.path;
  int writes = 0;
  const OrderedWrite write = [&](const char*, std::size_t) -> Status {
    if (++writes == 2)
      return make_error(ErrorKind::environment, "cannot write the dump: No space left on device");
    return {};
  };
  auto status = copy_chunks_in_order(chunks, connector, settings, write, CancelToken::never());
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message, HasSubstr("No space left"));
  EXPECT_EQ(writes, 2);
}

TEST(ParallelCopy, ARefusedConnectionIsReported) {
  FakeCopyScript script;
  script.refuse_connections = true;
  FakeCopyConnector connector(script);
  Collected out;
  auto status = copy_chunks_in_order(plan_copy_chunks({table("a", 4)}, 2), connector, ParallelCopySettings{},
                                     out.writer(), CancelToken::never());
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message, HasSubstr("connecting to the temporary server"));
  EXPECT_TRUE(out.text.empty());
}

TEST(ParallelCopy, CancellationEndsTheCopyAsInterrupted) {
  FakeCopyScript script;
  script.delay_for = [](const std::string&) { return std::chrono::milliseconds(40); };
  FakeCopyConnector connector(script);
  CancelToken cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancel.cancel(SIGTERM);
  });
  script.table_rows = {{"public.a", 10}, {"public.b", 10}, {"public.c", 10}, {"public.d", 10}};
  Collected out;
  const auto chunks = plan_copy_chunks({table("a", 10), table("b", 10), table("c", 10), table("d", 10)}, 2);
  auto status = copy_chunks_in_order(chunks, connector, ParallelCopySettings{}, out.writer(), cancel);
  canceller.join();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::interrupted);
  EXPECT_LT(script.queries.size(), chunks.size());
}

// Descriptors this process holds open on files in `directory` (spill files show there as
// "DIR/#INODE (deleted)").
int open_files_in(const std::string& directory) {
  int count = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code link_ec;
    const auto target = std::filesystem::read_symlink(it->path(), link_ec);
    if (!link_ec && target.string().rfind(directory + "/", 0) == 0) ++count;
  }
  return count;
}

// A few thousand tables, every range ahead of the writer: their rows wait in one file per
// connection, not one per range (which ran out of descriptors at the usual soft limit of 1024).
TEST(ParallelCopy, RowsSetAsideWaitInOneFilePerConnectionHoweverManyRanges) {
  FakeCopyScript script;
  std::vector<SplitTable> tables;
  for (int i = 0; i < 1500; ++i) {
    tables.push_back(table("t" + std::to_string(i), 20));
    script.table_rows["public.t" + std::to_string(i)] = 20;
  }
  script.piece_bytes = 64;
  FakeCopyConnector connector(script);
  const auto chunks = plan_copy_chunks(tables, 2);
  TempDirectory spill("spill-test");
  ParallelCopy copy(chunks, connector, spilling(2, spill.path, 256), CancelToken::never());
  // Every range is received before the writer starts.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    {
      std::lock_guard lock(script.mutex);
      if (script.queries.size() == chunks.size()) break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the connections did not finish";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_GE(open_files_in(spill.path), 1) << "nothing was set aside: the test proves nothing";
  EXPECT_LE(open_files_in(spill.path), 2) << "more spill files than connections";
  Collected out;
  ASSERT_TRUE(copy.write_in_order(out.writer()).ok());
  EXPECT_EQ(out.text, whole_tables(tables, script));
  EXPECT_EQ(open_files_in(spill.path), 0);
  EXPECT_TRUE(spill.empty());
}

// Every range's plan is read on its own connection, in its transaction, before its rows.
TEST(ParallelCopy, EveryRangeIsCheckedToBeOneSequentialScanFirst) {
  FakeCopyScript script;
  script.table_rows = {{"public.a", 50}, {"public.b", 50}};
  FakeCopyConnector connector(script);
  const std::vector<SplitTable> tables = {table("a", 50), table("b", 50)};
  const auto chunks = plan_copy_chunks(tables, 2);
  Collected out;
  ASSERT_TRUE(
      copy_chunks_in_order(chunks, connector, ParallelCopySettings{}, out.writer(), CancelToken::never())
          .ok());
  EXPECT_EQ(out.text, whole_tables(tables, script));
  std::vector<std::string> expected, explained = script.explained;
  for (const auto& chunk : chunks)
    expected.push_back(chunk.plan_query.substr(std::string("EXPLAIN (FORMAT JSON) ").size()));
  std::sort(expected.begin(), expected.end());
  std::sort(explained.begin(), explained.end());
  EXPECT_EQ(explained, expected);
}

// A server that would read a range through an index (an index-only scan over a covering
// index where random reads are cheap) would hand its rows over in index order: the copy
// refuses it rather than write rows in another order than pg_dump's.
TEST(ParallelCopy, ARangeReadAnyOtherWayThanBySequentialScanFailsTheCopy) {
  FakeCopyScript script;
  script.table_rows = {{"public.a", 50}, {"public.b", 50}};
  script.plan_for = [](const std::string& select) -> std::string {
    if (select.find("public.b OFFSET") == std::string::npos)
      return R"([{"Plan": {"Node Type": "Limit", "Plans": [{"Node Type": "Seq Scan"}]}}])";
    return R"([{"Plan": {"Node Type": "Limit", "Plans": [{"Node Type": "Index Only Scan"}]}}])";
  };
  FakeCopyConnector connector(script);
  const auto chunks = plan_copy_chunks({table("a", 50), table("b", 50)}, 2);
  Collected out;
  auto status =
      copy_chunks_in_order(chunks, connector, ParallelCopySettings{}, out.writer(), CancelToken::never());
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::verification);
  EXPECT_THAT(status.error().message, HasSubstr("with a plan with Index Only Scan"));
  EXPECT_THAT(status.error().message, HasSubstr("public.b OFFSET"));
  EXPECT_EQ(out.text.find("public.b row 49"), std::string::npos) << "rows of the refused range were written";
  for (const auto& query : script.queries)
    EXPECT_EQ(query.find("public.b OFFSET"), std::string::npos) << query;
}

}  // namespace
}  // namespace agent
