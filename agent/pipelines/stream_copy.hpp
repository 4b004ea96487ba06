#pragma once
// Copies a child's output to its destination through one fixed buffer, hashing as it goes,
// so the agent's memory stays flat however large the dump is.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "core/cancel.hpp"
#include "core/error.hpp"

namespace agent {

struct CopyStats {
  std::uint64_t bytes = 0;
  std::string sha256_hex;
};

// Called at most every `interval` with the bytes copied so far.
struct CopyProgress {
  std::chrono::milliseconds interval{500};
  std::function<void(std::uint64_t bytes, bool final)> report;
};

// Reads `from` (non-blocking) until EOF, writing everything to `to`. Stops early, with an
// interrupted error, when `cancel` fires.
Result<CopyStats> copy_stream(int from, int to, const CancelToken& cancel, const CopyProgress& progress);

// A progress reporter for stderr: a live "\r" counter on a terminal, a log line every 10 s
// otherwise.
CopyProgress dump_progress_reporter();

}  // namespace agent
