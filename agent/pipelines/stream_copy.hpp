#pragma once
// Copies a child's output to its destination through one fixed buffer, or follows a file the
// child writes itself, hashing as it goes, so the agent's memory stays flat however large the
// dump is.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/cancel.hpp"
#include "core/error.hpp"

namespace agent {

// What the dump's manifest records to verify a copy of the file by. xxh128 (as rsync uses for
// transfers) costs a twentieth of SHA-256's CPU; sha256 is for those who need a cryptographic
// digest.
enum class ChecksumAlgorithm { xxh128, sha256, none };

struct CopyStats {
  std::uint64_t bytes = 0;
  std::string checksum;  // "xxh128:HEX" or "sha256:HEX" as xxh128sum / sha256sum print HEX; "" for none
};

// Called at most every `interval` with the bytes copied so far.
struct CopyProgress {
  std::chrono::milliseconds interval{500};
  std::function<void(std::uint64_t bytes, bool final)> report;
};

// "xxh128", "sha256", "none" (the config's values); nothing for anything else.
std::optional<ChecksumAlgorithm> parse_checksum_algorithm(const std::string& name);

// Reads `from` (non-blocking) until EOF, writing everything to `to`. Stops early, with an
// interrupted error, when `cancel` fires.
Result<CopyStats> copy_stream(int from, int to, ChecksumAlgorithm algorithm, const CancelToken& cancel,
                              const CopyProgress& progress);

// Hashes the regular file `fd` while another process is still writing it (through its own
// descriptor of the same file), following it until `writer_done()` says the writer has ended
// and everything it wrote was read. The writer needs no pipe through the agent: no copy of
// the bytes, no wake-up per write; the agent only reads them back from the page cache, in
// large chunks, and hands each finished chunk to the disk. `fd` must be open for reading.
Result<CopyStats> follow_file(int fd, const std::function<bool()>& writer_done, ChecksumAlgorithm algorithm,
                              const CancelToken& cancel, const CopyProgress& progress);

// A progress reporter for stderr: a live "\r" counter on a terminal, a log line every 10 s
// otherwise.
CopyProgress dump_progress_reporter();

}  // namespace agent
