#pragma once
// Copies the rows of the largest tables over several connections at once, written in table
// order: each table is cut into block ranges, the ranges are dealt to the connections in
// turn, and each range's rows are written when every range before it has been. A connection
// whose turn has not come holds at most `hold_bytes` of rows, then waits: the agent's memory
// stays flat however large the tables are. On a paused recovery every connection sees the
// same data, so the pieces add up to one consistent copy.
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
  std::uint64_t chunk_blocks = 512;          // 4 MiB of table per range
  std::size_t hold_bytes = 8 * 1024 * 1024;  // per connection
};

// One range of one table, with what goes before and after its rows.
struct CopyChunk {
  std::string prefix;  // the table's COPY header, on its first range
  std::string query;
  std::string suffix;  // the end-of-data line, on its last range
};

// The connections a copy of `chunks` ranges opens: `wanted`, but never more than ranges.
int connections_for(int wanted, std::size_t chunks);

std::vector<CopyChunk> plan_copy_chunks(const std::vector<SplitTable>& tables, std::uint64_t chunk_blocks);

// Writes every chunk through `write`, in order, never two writes at once. The first failure
// (a connection, a query, a write) stops all connections and is returned.
using OrderedWrite = std::function<Status(const char* data, std::size_t size)>;
Status copy_chunks_in_order(const std::vector<CopyChunk>& chunks, CopyConnector& connector,
                            const ParallelCopySettings& settings, const OrderedWrite& write,
                            const CancelToken& cancel);

}  // namespace agent
