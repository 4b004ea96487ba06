#pragma once
// Copies the rows of the largest tables over several connections at once, written in table
// order: each table is cut into one row range per connection. The connections only receive;
// one writer writes the ranges in order, each as its rows come in. A connection holds at most
// `hold_bytes` of rows in memory that are not written yet and sets the rest aside in an
// unnamed file, read back when their turn comes: the agent's memory stays flat however large
// the tables are, no connection waits for another or for the writer, and the writer reads
// back what waited while the connection goes on. On a paused recovery every connection sees
// the same data, so the pieces add up to one consistent copy.
//
// Rows set aside wait in one unnamed file per connection, whatever the number of tables: a
// connection appends its ranges' rows in the order the writer reads them back, and the writer
// frees what it has read. Before each range the connection asks the server for the range's
// plan and refuses anything but one plain sequential scan (the session setup disables the
// others), so that consecutive ranges follow the table's physical order as pg_dump's COPY does.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/cancel.hpp"
#include "core/error.hpp"
#include "pg/copy_session.hpp"
#include "pipelines/split_tables.hpp"

namespace agent {

struct ParallelCopySettings {
  std::string conninfo;
  int connections = 2;
  std::string spill_directory;               // where rows ahead of their turn wait
  std::size_t hold_bytes = 8 * 1024 * 1024;  // in memory, per connection
};

// A range that starts further into the table costs more: its scan reads and skips every
// row before it, and its rows set aside are written out after the ranges before it. Measured
// on pgbench_accounts at scale 200 (2 vCPUs): skipping all 20 million rows takes a sixth of
// the time of copying them to psql; with the rows set aside counted too, both connections
// ended closest together at 0.25 (0.16: the second ended 1.4-2.2 s after the first; 0.35:
// 0.8-1.5 s before it, then waited). The later ranges get fewer rows accordingly.
constexpr double kSkipCostPerCopiedRow = 0.25;

// One range of one table, with what goes before and after its rows.
struct CopyChunk {
  std::string prefix;  // the table's COPY header, on its first range
  std::string query;
  std::string suffix;  // the end-of-data line, on its last range
  // EXPLAIN (FORMAT JSON) of the range's SELECT, run first on the range's connection: the copy
  // fails unless the server reads the range with one plain sequential scan. Empty: unchecked.
  std::string plan_query;
};

// The connections a copy of `chunks` ranges opens: `wanted`, but never more than ranges.
int connections_for(int wanted, std::size_t chunks);

// Cuts each table into `ranges` row ranges, the first ones larger by the cost of skipping.
std::vector<CopyChunk> plan_copy_chunks(const std::vector<SplitTable>& tables, int ranges,
                                        double skip_cost = kSkipCostPerCopiedRow);

// Writes every chunk through `write`, in order, never two writes at once.
using OrderedWrite = std::function<Status(const char* data, std::size_t size)>;

// The connections start copying when it is made, so that they run while the caller writes
// what goes before the rows. Whatever happens, its end stops and joins them.
class ParallelCopy {
 public:
  ParallelCopy(std::vector<CopyChunk> chunks, CopyConnector& connector, ParallelCopySettings settings,
               const CancelToken& cancel);
  ~ParallelCopy();
  ParallelCopy(const ParallelCopy&) = delete;
  ParallelCopy& operator=(const ParallelCopy&) = delete;

  // Writes every chunk in order as its rows come. The first failure (a connection, a query,
  // setting rows aside, a write) stops all connections and is returned. Once only.
  Status write_in_order(const OrderedWrite& write);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Starts a ParallelCopy and writes it at once.
Status copy_chunks_in_order(const std::vector<CopyChunk>& chunks, CopyConnector& connector,
                            const ParallelCopySettings& settings, const OrderedWrite& write,
                            const CancelToken& cancel);

}  // namespace agent
