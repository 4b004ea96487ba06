#include "pipelines/parallel_copy.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "core/spill_file.hpp"

namespace agent {
namespace {

// Rows are written in pieces of about this size: few system calls, little held.
constexpr std::size_t kWriteBytes = 1 << 20;

// Whose chunk is written next, and the first failure, which stops everyone.
class Turns {
 public:
  explicit Turns(const CancelToken& cancel) : cancel_(cancel) {}

  bool is_turn(std::size_t chunk) const { return next_.load(std::memory_order_acquire) == chunk; }

  // False if the copy failed elsewhere or was cancelled first.
  bool wait_turn(std::size_t chunk) {
    std::unique_lock lock(mutex_);
    while (!is_turn(chunk)) {
      if (error_ || cancel_.cancelled()) return false;
      changed_.wait_for(lock, std::chrono::milliseconds(100));
    }
    return !error_;
  }

  void done(std::size_t chunk) {
    std::lock_guard lock(mutex_);
    next_.store(chunk + 1, std::memory_order_release);
    changed_.notify_all();
  }

  void fail(Error error) {
    std::lock_guard lock(mutex_);
    if (!error_) error_ = std::move(error);
    changed_.notify_all();
  }

  bool failed() {
    std::lock_guard lock(mutex_);
    return error_.has_value();
  }

  std::optional<Error> error() {
    std::lock_guard lock(mutex_);
    return error_;
  }

 private:
  const CancelToken& cancel_;
  std::atomic<std::size_t> next_{0};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<Error> error_;
};

void run_worker(int worker, const std::vector<CopyChunk>& chunks, CopyConnector& connector,
                const ParallelCopySettings& settings, const OrderedWrite& write, const CancelToken& cancel,
                Turns& turns) {
  auto session = connector.connect(settings.conninfo);
  if (!session) return turns.fail(session.error().with_context("connecting to the temporary server"));
  for (const auto& setup : {dump_session_setup(), dump_transaction()})
    if (auto s = (*session)->execute(setup); !s)
      return turns.fail(s.error().with_context("setting up a copy connection"));
  std::string held;
  held.reserve(settings.hold_bytes + kWriteBytes);
  SpillFile spilled(settings.spill_directory);
  const auto step = static_cast<std::size_t>(settings.connections);
  for (auto index = static_cast<std::size_t>(worker); index < chunks.size(); index += step) {
    const CopyChunk& chunk = chunks[index];
    held = chunk.prefix;
    bool my_turn = false;
    std::optional<Error> local_error;
    // Writes what waited on disk, then what is held: the rows in the order they came.
    const auto flush = [&]() -> bool {
      if (auto s = spilled.drain(write, kWriteBytes); !s) {
        local_error = s.error();
        return false;
      }
      if (auto s = write(held.data(), held.size()); !s) {
        local_error = s.error();
        return false;
      }
      held.clear();
      return true;
    };
    const auto on_data = [&](const char* data, std::size_t size) -> bool {
      held.append(data, size);
      if (held.size() < kWriteBytes) return true;
      if (!my_turn) {
        if (turns.failed()) return false;
        my_turn = turns.is_turn(index);
      }
      if (my_turn) return flush();
      if (held.size() < settings.hold_bytes) return true;
      if (auto s = spilled.append(held.data(), held.size()); !s) {
        local_error = s.error();
        return false;
      }
      held.clear();
      return true;
    };
    auto copied = (*session)->copy_out(chunk.query, on_data, cancel);
    if (local_error) return turns.fail(*local_error);
    if (!copied) {
      // Stopped because another connection failed: that failure is the one to report.
      if (!turns.failed() && !cancel.cancelled()) turns.fail(copied.error());
      return;
    }
    held += chunk.suffix;
    if (!my_turn && !turns.wait_turn(index)) return;
    if (!flush()) return turns.fail(*local_error);
    turns.done(index);
  }
}

}  // namespace

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
      if (j + 1 == count) chunk.suffix = copy_block_trailer();
      chunks.push_back(std::move(chunk));
    }
  }
  return chunks;
}

Status copy_chunks_in_order(const std::vector<CopyChunk>& chunks, CopyConnector& connector,
                            const ParallelCopySettings& settings, const OrderedWrite& write,
                            const CancelToken& cancel) {
  if (chunks.empty()) return {};
  Turns turns(cancel);
  const int connections = connections_for(settings.connections, chunks.size());
  ParallelCopySettings effective = settings;
  effective.connections = connections;
  std::vector<std::thread> workers;
  for (int worker = 0; worker < connections; ++worker)
    workers.emplace_back([&, worker] {
      try {
        run_worker(worker, chunks, connector, effective, write, cancel, turns);
      } catch (const std::exception& e) {
        turns.fail(make_error(ErrorKind::internal, std::string("copying table rows: ") + e.what()));
      }
    });
  for (auto& worker : workers) worker.join();
  if (auto error = turns.error()) return *error;
  if (cancel.cancelled()) return make_error(ErrorKind::interrupted, "interrupted while copying table rows");
  return {};
}

}  // namespace agent
