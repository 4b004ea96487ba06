#include "pipelines/parallel_copy.hpp"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "core/spill_file.hpp"

namespace agent {
namespace {

// Rows go from a connection to the writer in pieces of about this size: few system calls,
// little held.
constexpr std::size_t kPieceBytes = 1 << 20;

// Some of one range's rows: in memory, or `length` bytes at `offset` of the range's spill file.
struct Piece {
  std::string bytes;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  bool on_disk() const { return length > 0; }
};

// One range's rows on their way from its connection to the writer, in the order they came.
// Pieces on disk are in the spill file of the range's connection.
struct RangeRows {
  std::deque<Piece> pieces;
  bool received = false;  // every row of the range is in `pieces` or written
};

}  // namespace

struct ParallelCopy::State {
  State(std::vector<CopyChunk> chunks_in, CopyConnector& connector_in, ParallelCopySettings settings_in,
        const CancelToken& cancel_in)
      : chunks(std::move(chunks_in)),
        connector(connector_in),
        settings(std::move(settings_in)),
        cancel(cancel_in),
        connections(connections_for(settings.connections, chunks.size())),
        ranges(chunks.size()),
        held(static_cast<std::size_t>(connections), 0) {
    // One file per connection, opened when it first sets rows aside: however many tables and
    // ranges, the copy never holds more files than connections (a range per file ran out of
    // descriptors at the usual limit of 1024 with a few thousand tables).
    for (int connection = 0; connection < connections; ++connection)
      spills.push_back(std::make_unique<SpillFile>(settings.spill_directory));
  }

  const std::vector<CopyChunk> chunks;
  CopyConnector& connector;
  const ParallelCopySettings settings;
  const CancelToken& cancel;  // the caller's (a signal)
  const int connections;
  // Fired by the first failure, by the caller's cancellation, or at the end: it wakes the
  // connections however long the server takes to send their first row.
  CancelToken stop;

  std::mutex mutex;
  std::condition_variable changed;
  std::vector<RangeRows> ranges;
  std::vector<std::size_t> held;  // bytes in memory not yet written, per connection
  // Rows set aside, per connection: appended by the connection in range order, read back and
  // freed by the writer in the same order.
  std::vector<std::unique_ptr<SpillFile>> spills;
  std::vector<std::string> spare;  // buffers of written pieces, for reuse
  std::optional<Error> error;      // the first failure
  std::vector<std::thread> workers;

  bool stopped() const { return stop.cancelled() || cancel.cancelled(); }

  // Ranges are dealt round-robin: range `index` is copied by connection `index % connections`,
  // and its rows in memory count against that connection's share.
  std::size_t& share_of(std::size_t index) { return held[index % held.size()]; }
  SpillFile& spill_of(std::size_t index) { return *spills[index % spills.size()]; }

  void fail(Error failure) {
    {
      std::lock_guard lock(mutex);
      if (!error) error = std::move(failure);
      changed.notify_all();
    }
    stop.cancel();
  }

  std::string take_buffer() {
    {
      std::lock_guard lock(mutex);
      if (!spare.empty()) {
        std::string buffer = std::move(spare.back());
        spare.pop_back();
        return buffer;
      }
    }
    std::string buffer;
    buffer.reserve(kPieceBytes + (64 << 10));
    return buffer;
  }

  // Passes `rows` on to the writer: in memory within the connection's share, else through
  // the range's spill file. Leaves `rows` empty for the next piece. False once the copy failed.
  bool hand_over(std::size_t index, std::string& rows) {
    if (rows.empty()) return true;
    RangeRows& range = ranges[index];
    const std::size_t size = rows.size();
    bool in_memory = false;
    {
      std::lock_guard lock(mutex);
      if (error) return false;
      auto& share = share_of(index);
      if (share + size <= settings.hold_bytes) {
        share += size;
        range.pieces.push_back(Piece{std::move(rows), 0, 0});
        changed.notify_all();
        in_memory = true;
      }
    }
    if (in_memory) {
      rows = take_buffer();
      return true;
    }
    auto at = spill_of(index).append(rows.data(), size);
    if (!at) {
      fail(at.error());
      return false;
    }
    rows.clear();
    std::lock_guard lock(mutex);
    if (error) return false;
    range.pieces.push_back(Piece{{}, *at, size});
    changed.notify_all();
    return true;
  }

  // The server must read the range with one plain sequential scan: the ranges of a table then
  // follow each other in its physical order, as pg_dump's COPY of the whole table does.
  static Status check_plan(CopySession& session, const CopyChunk& chunk) {
    if (chunk.plan_query.empty()) return {};
    auto plan = session.query(chunk.plan_query);
    if (!plan) return plan.error().with_context("reading the plan of a row range");
    const std::string json = plan->empty() || plan->front().empty() ? std::string() : plan->front().front();
    const auto other = scan_other_than_sequential(json);
    if (!other) return {};
    return make_error(
        ErrorKind::verification,
        "the temporary server would read a row range (" + chunk.query + ") with " + *other +
            ", not one sequential scan in the table's physical order: its rows could come in "
            "another order than pg_dump's",
        "report this with the table's definition; dump.connections: 1 dumps with pg_dump alone");
  }

  void received(std::size_t index) {
    std::lock_guard lock(mutex);
    ranges[index].received = true;
    changed.notify_all();
  }

  void receive(int connection) {
    auto session = connector.connect(settings.conninfo);
    if (!session) return fail(session.error().with_context("connecting to the temporary server"));
    for (const auto& setup : {dump_session_setup(), dump_transaction()})
      if (auto s = (*session)->execute(setup); !s)
        return fail(s.error().with_context("setting up a copy connection"));
    std::string rows = take_buffer();
    const auto step = static_cast<std::size_t>(connections);
    for (auto index = static_cast<std::size_t>(connection); index < chunks.size(); index += step) {
      if (stopped()) return;
      const CopyChunk& chunk = chunks[index];
      if (auto s = check_plan(**session, chunk); !s) return fail(s.error());
      rows.assign(chunk.prefix);
      const auto on_data = [&](const char* data, std::size_t size) -> bool {
        if (stopped()) return false;
        rows.append(data, size);
        return rows.size() < kPieceBytes || hand_over(index, rows);
      };
      auto copied = (*session)->copy_out(chunk.query, on_data, stop);
      // Stopped by another failure, or by the caller: that is what is reported.
      if (stopped()) return;
      if (!copied) return fail(copied.error());
      rows += chunk.suffix;
      if (!hand_over(index, rows)) return;
      received(index);
    }
  }

  // Writes one range as its rows come; returns once all of them are written.
  Status write_range(std::size_t index, const OrderedWrite& write) {
    RangeRows& range = ranges[index];
    for (;;) {
      Piece piece;
      {
        std::unique_lock lock(mutex);
        while (!error && range.pieces.empty() && !range.received) {
          if (cancel.cancelled()) {
            const Error interrupted =
                make_error(ErrorKind::interrupted, "interrupted while copying table rows");
            lock.unlock();
            fail(interrupted);
            return interrupted;
          }
          changed.wait_for(lock, std::chrono::milliseconds(100));
        }
        if (error) return *error;
        if (range.pieces.empty()) break;
        piece = std::move(range.pieces.front());
        range.pieces.pop_front();
      }
      Status written = piece.on_disk()
                           ? spill_of(index).read_back(piece.offset, piece.length, write, kPieceBytes)
                           : write(piece.bytes.data(), piece.bytes.size());
      if (!piece.on_disk()) {
        std::lock_guard lock(mutex);
        share_of(index) -= piece.bytes.size();
        piece.bytes.clear();
        if (spare.size() < static_cast<std::size_t>(connections)) spare.push_back(std::move(piece.bytes));
      }
      if (!written) {
        fail(written.error());
        return written.error();
      }
    }
    return {};
  }

  // Called by the writer's thread only (or at the end): once the connections are joined,
  // nothing appends or reads any more, and the spill files go.
  void stop_and_join() {
    stop.cancel();
    for (auto& worker : workers)
      if (worker.joinable()) worker.join();
    for (auto& spill : spills) spill.reset();
  }
};

ParallelCopy::ParallelCopy(std::vector<CopyChunk> chunks, CopyConnector& connector,
                           ParallelCopySettings settings, const CancelToken& cancel)
    : state_(std::make_unique<State>(std::move(chunks), connector, std::move(settings), cancel)) {
  State& state = *state_;
  if (state.chunks.empty()) return;
  try {
    for (int connection = 0; connection < state.connections; ++connection)
      state.workers.emplace_back([&state, connection] {
        try {
          state.receive(connection);
        } catch (const std::exception& e) {
          state.fail(make_error(ErrorKind::internal, std::string("copying table rows: ") + e.what()));
        }
      });
  } catch (...) {
    // No thread to be had: the ones started must be joined before the state goes.
    state.stop_and_join();
    throw;
  }
}

ParallelCopy::~ParallelCopy() {
  state_->stop_and_join();
}

Status ParallelCopy::write_in_order(const OrderedWrite& write) {
  State& state = *state_;
  for (std::size_t index = 0; index < state.chunks.size(); ++index)
    if (auto s = state.write_range(index, write); !s) {
      state.stop_and_join();
      return s;
    }
  state.stop_and_join();
  std::lock_guard lock(state.mutex);
  if (state.error) return *state.error;
  if (state.cancel.cancelled())
    return make_error(ErrorKind::interrupted, "interrupted while copying table rows");
  return {};
}

int connections_for(int wanted, std::size_t chunks) {
  return static_cast<int>(
      std::max<std::size_t>(1, std::min(static_cast<std::size_t>(std::max(wanted, 1)), chunks)));
}

std::vector<CopyChunk> plan_copy_chunks(const std::vector<SplitTable>& tables, int ranges, double skip_cost) {
  const auto count = static_cast<std::size_t>(std::max(ranges, 1));
  std::vector<CopyChunk> chunks;
  for (const auto& table : tables) {
    // Range j starts at row a(j) and costs skip_cost * a(j) + (a(j+1) - a(j)); equal costs make
    // the starts a geometric series: a(j) = unit * (1 - q^j) / skip_cost with q = 1 - skip_cost.
    const double q = 1.0 - skip_cost;
    const double unit =
        static_cast<double>(table.rows) * skip_cost / (1.0 - std::pow(q, static_cast<double>(count)));
    const auto start_of = [&](std::size_t j) -> std::uint64_t {
      if (skip_cost <= 0.0 || skip_cost >= 1.0) return table.rows * j / count;
      const double start = unit * (1.0 - std::pow(q, static_cast<double>(j))) / skip_cost;
      return std::min(table.rows, static_cast<std::uint64_t>(std::llround(start)));
    };
    for (std::size_t j = 0; j < count; ++j) {
      CopyChunk chunk;
      if (j == 0) chunk.prefix = copy_block_header(table);
      const std::uint64_t skip = start_of(j);
      // The last range runs to the end of the table, however many rows it has by now.
      std::optional<std::uint64_t> limit;
      if (j + 1 < count) limit = start_of(j + 1) - skip;
      chunk.query = row_range_copy(table, skip, limit);
      chunk.plan_query = row_range_plan_query(table, skip, limit);
      if (j + 1 == count) chunk.suffix = copy_block_trailer();
      chunks.push_back(std::move(chunk));
    }
  }
  return chunks;
}

Status copy_chunks_in_order(const std::vector<CopyChunk>& chunks, CopyConnector& connector,
                            const ParallelCopySettings& settings, const OrderedWrite& write,
                            const CancelToken& cancel) {
  ParallelCopy copy(chunks, connector, settings, cancel);
  return copy.write_in_order(write);
}

}  // namespace agent
