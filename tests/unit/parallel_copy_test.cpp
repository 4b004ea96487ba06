#include "pipelines/parallel_copy.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "fakes/fake_copy.hpp"

namespace agent {
namespace {

using testing::FakeCopyConnector;
using testing::FakeCopyScript;
using ::testing::HasSubstr;

SplitTable table(const std::string& name, std::uint64_t blocks) {
  return SplitTable{"public", name, "postgres", "public." + name, "id, payload", blocks, blocks * 8192};
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

std::string expected_text(const std::vector<CopyChunk>& chunks, FakeCopyScript& script) {
  std::string out;
  for (const auto& chunk : chunks) out += chunk.prefix + script.rows_for(chunk.query) + chunk.suffix;
  return out;
}

TEST(PlanCopyChunks, CutsEachTableIntoRangesWithItsHeaderFirstAndItsEndLast) {
  const auto chunks = plan_copy_chunks({table("big", 1100), table("small", 1)}, 512);
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks[0].prefix,
            "--\n-- Data for Name: big; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\n"
            "COPY public.big (id, payload) FROM stdin;\n");
  EXPECT_EQ(chunks[0].query,
            "COPY (SELECT id, payload FROM ONLY public.big WHERE ctid >= '(0,0)'::pg_catalog.tid AND "
            "ctid < '(512,0)'::pg_catalog.tid) TO STDOUT");
  EXPECT_EQ(chunks[0].suffix, "");
  EXPECT_THAT(chunks[1].query, HasSubstr("ctid >= '(512,0)'::pg_catalog.tid AND ctid < '(1024,0)'"));
  // The last range has no upper bound: rows beyond the size read earlier still come along.
  EXPECT_THAT(chunks[2].query, HasSubstr("ctid >= '(1024,0)'::pg_catalog.tid) TO STDOUT"));
  EXPECT_EQ(chunks[2].prefix, "");
  EXPECT_EQ(chunks[2].suffix, "\\.\n\n\n");
  EXPECT_THAT(chunks[3].prefix, HasSubstr("COPY public.small (id, payload) FROM stdin;\n"));
  EXPECT_THAT(chunks[3].query, HasSubstr("ctid >= '(0,0)'::pg_catalog.tid) TO STDOUT"));
  EXPECT_EQ(chunks[3].suffix, "\\.\n\n\n");
}

TEST(ParallelCopy, WritesEveryRangeInTableOrderWhicheverConnectionFinishesFirst) {
  FakeCopyScript script;
  // Every other range is slow, so later ranges finish before earlier ones.
  script.delay_for = [](const std::string& query) {
    return std::chrono::milliseconds(
        query.find("'(0,0)'") != std::string::npos || query.find("'(4,0)'") != std::string::npos ? 40 : 1);
  };
  FakeCopyConnector connector(script);
  const auto chunks = plan_copy_chunks({table("a", 10), table("b", 7)}, 2);
  ASSERT_EQ(chunks.size(), 9u);
  ParallelCopySettings settings;
  settings.connections = 3;
  settings.hold_bytes = 16;
  Collected out;
  auto status = copy_chunks_in_order(chunks, connector, settings, out.writer(), CancelToken::never());
  ASSERT_TRUE(status.ok()) << status.error().describe();
  EXPECT_EQ(out.text, expected_text(chunks, script));
  EXPECT_EQ(out.max_concurrent, 1) << "two writes overlapped";
  EXPECT_EQ(script.sessions.load(), 3);
  EXPECT_EQ(script.threads.size(), 3u);
  // Each connection reads in pg_dump's session settings and one read-only transaction.
  ASSERT_EQ(script.executed.size(), 6u);
  EXPECT_EQ(std::count(script.executed.begin(), script.executed.end(), dump_transaction()), 3);
  EXPECT_EQ(std::count(script.executed.begin(), script.executed.end(), dump_session_setup()), 3);
}

TEST(ParallelCopy, NeverOpensMoreConnectionsThanRanges) {
  FakeCopyScript script;
  FakeCopyConnector connector(script);
  const auto chunks = plan_copy_chunks({table("a", 1)}, 512);
  ParallelCopySettings settings;
  settings.connections = 4;
  Collected out;
  ASSERT_TRUE(copy_chunks_in_order(chunks, connector, settings, out.writer(), CancelToken::never()).ok());
  EXPECT_EQ(script.sessions.load(), 1);
  EXPECT_EQ(out.text, expected_text(chunks, script));
}

// Memory stays flat: a connection whose turn has not come stops reading once it holds its
// share, so its COPY cannot finish before the earlier range was written.
TEST(ParallelCopy, AConnectionAheadOfItsTurnHoldsOnlyItsShare) {
  FakeCopyScript script;
  const std::string big(4 << 20, 'x');
  script.rows_for = [&big](const std::string& query) {
    return query.find("'(0,0)'") != std::string::npos ? std::string("first\n") : big + "\n";
  };
  script.delay_for = [](const std::string& query) {
    return std::chrono::milliseconds(query.find("'(0,0)'") != std::string::npos ? 300 : 0);
  };
  script.piece_bytes = 64 << 10;
  std::mutex mutex;
  std::chrono::steady_clock::time_point second_range_read{};
  FakeCopyConnector connector(script);
  const auto chunks = plan_copy_chunks({table("a", 2)}, 1);
  ParallelCopySettings settings;
  settings.connections = 2;
  settings.hold_bytes = 1 << 20;
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
        if (sql.find("'(1,0)'") != std::string::npos) done_();
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
  EXPECT_EQ(out.text, expected_text(chunks, script));
  EXPECT_GT(second_range_read, out.first_write)
      << "the second range was read whole before the first was written";
  EXPECT_LE(largest_write, (2u << 20) + (64u << 10)) << "written in pieces of about a megabyte";
}

TEST(ParallelCopy, AFailedRangeStopsEveryConnectionAndIsWhatIsReported) {
  FakeCopyScript script;
  script.failing_query_part = "'(3,0)'";
  script.delay_for = [](const std::string& query) {
    return std::chrono::milliseconds(query.find("'(0,0)'") != std::string::npos ? 100 : 0);
  };
  FakeCopyConnector connector(script);
  const auto chunks = plan_copy_chunks({table("a", 40)}, 1);
  ParallelCopySettings settings;
  settings.connections = 2;
  settings.hold_bytes = 8;
  Collected out;
  auto status = copy_chunks_in_order(chunks, connector, settings, out.writer(), CancelToken::never());
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message, HasSubstr("could not read block"));
  // Nothing from the failed range or after it was written.
  EXPECT_EQ(out.text.find("row of block 3"), std::string::npos) << out.text;
  EXPECT_LT(script.queries.size(), chunks.size()) << "the other connection went on copying";
}

TEST(ParallelCopy, AFailedWriteStopsTheCopy) {
  FakeCopyScript script;
  FakeCopyConnector connector(script);
  const auto chunks = plan_copy_chunks({table("a", 40)}, 1);
  int writes = 0;
  const OrderedWrite write = [&](const char*, std::size_t) -> Status {
    if (++writes == 2)
      return make_error(ErrorKind::environment, "cannot write the dump: No space left on device");
    return {};
  };
  auto status = copy_chunks_in_order(chunks, connector, ParallelCopySettings{}, write, CancelToken::never());
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message, HasSubstr("No space left"));
  EXPECT_EQ(writes, 2);
}

TEST(ParallelCopy, ARefusedConnectionIsReported) {
  FakeCopyScript script;
  script.refuse_connections = true;
  FakeCopyConnector connector(script);
  Collected out;
  auto status = copy_chunks_in_order(plan_copy_chunks({table("a", 4)}, 1), connector, ParallelCopySettings{},
                                     out.writer(), CancelToken::never());
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message, HasSubstr("connecting to the temporary server"));
  EXPECT_TRUE(out.text.empty());
}

TEST(ParallelCopy, CancellationEndsTheCopyAsInterrupted) {
  FakeCopyScript script;
  script.delay_for = [](const std::string&) { return std::chrono::milliseconds(20); };
  FakeCopyConnector connector(script);
  CancelToken cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancel.cancel(SIGTERM);
  });
  Collected out;
  const auto chunks = plan_copy_chunks({table("a", 1000)}, 1);
  auto status = copy_chunks_in_order(chunks, connector, ParallelCopySettings{}, out.writer(), cancel);
  canceller.join();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().kind, ErrorKind::interrupted);
  EXPECT_LT(script.queries.size(), chunks.size());
}

}  // namespace
}  // namespace agent
