#pragma once
// Copies the rows of the largest tables over several connections at once, written in table
// order: each table is cut into one row range per connection, and each range's rows are
// written when every range before it has been. A connection whose turn has not come holds at
// most `hold_bytes` of rows in memory and sets the rest aside in an unnamed file until its
// turn: the agent's memory stays flat however large the tables are, and no connection waits
// for another. On a paused recovery every connection sees the same data, so the pieces add
// up to one consistent copy.
#include <cstddef>
#include <cstdint>
#include <functional>
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
};

// The connections a copy of `chunks` ranges opens: `wanted`, but never more than ranges.
int connections_for(int wanted, std::size_t chunks);

// Cuts each table into `ranges` row ranges, the first ones larger by the cost of skipping.
std::vector<CopyChunk> plan_copy_chunks(const std::vector<SplitTable>& tables, int ranges,
                                        double skip_cost = kSkipCostPerCopiedRow);

// Writes every chunk through `write`, in order, never two writes at once. The first failure
// (a connection, a query, a write) stops all connections and is returned.
using OrderedWrite = std::function<Status(const char* data, std::size_t size)>;
Status copy_chunks_in_order(const std::vector<CopyChunk>& chunks, CopyConnector& connector,
                            const ParallelCopySettings& settings, const OrderedWrite& write,
                            const CancelToken& cancel);

}  // namespace agent
