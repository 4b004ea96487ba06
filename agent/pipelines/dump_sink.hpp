#pragma once
// DumpSink: where the dump's bytes go. It copies a child's output through one fixed buffer,
// or follows a file the child writes itself, hashing as it goes, so the agent's memory stays
// flat however large the dump is.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/cancel.hpp"
#include "core/error.hpp"

namespace agent {

// What the dump's manifest records to verify a copy of the file by. xxh128 (as rsync uses for
// transfers) costs a twentieth of SHA-256's CPU; sha256 is for those who need a cryptographic
// digest.
enum class ChecksumAlgorithm { xxh128, sha256, none };

struct CopyStats {
  std::uint64_t bytes = 0;      // written (compressed, with zstd)
  std::uint64_t raw_bytes = 0;  // the dump's own bytes, before compression
  std::string checksum;  // "xxh128:HEX" or "sha256:HEX" as xxh128sum / sha256sum print HEX; "" for none
};

// Called at most every `interval` with the bytes copied so far.
struct CopyProgress {
  std::chrono::milliseconds interval{500};
  std::function<void(std::uint64_t bytes, bool final)> report;
};

// "xxh128", "sha256", "none" (the config's values); nothing for anything else.
std::optional<ChecksumAlgorithm> parse_checksum_algorithm(const std::string& name);

// Where the dump's bytes go (the output file, or standard output): counts them, hashes them in
// the order they land and hands each finished chunk of a file to the disk, whoever writes
// them: a pg_dump writing the file itself (follow), a pg_dump writing into a pipe (pump), or
// the agent (write). The pieces of one dump go through one sink, one after the other.
// With `zstd_level` > 0 the sink compresses what it is given into one zstd frame (through one
// fixed output buffer: memory stays flat) and counts and hashes the compressed bytes, which is
// what lands; follow() cannot compress (the writer wrote the file already), so the writer must
// write into a pipe (pump) instead, and end_stream() must be called once after the last piece.
class DumpSink {
 public:
  DumpSink(int fd, ChecksumAlgorithm algorithm, const CancelToken& cancel, CopyProgress progress,
           int zstd_level = 0);
  ~DumpSink();
  DumpSink(const DumpSink&) = delete;
  DumpSink& operator=(const DumpSink&) = delete;

  // False if the checksum could not be set up.
  bool ok() const;
  std::uint64_t bytes() const;
  // Writes `data` at the descriptor's offset.
  Status write(const char* data, std::size_t size);
  // Reads the non-blocking pipe `from` until EOF, writing everything.
  Status pump(int from);
  // Follows what another process appends to the regular file through a duplicate of the
  // sink's descriptor (so that the offset is shared), until `writer_done()` says it ended.
  // The writer needs no pipe through the agent: the agent only reads the bytes back from the
  // page cache, in large chunks, for the checksum. `fd` must be open for reading too.
  Status follow(const std::function<bool()>& writer_done);
  bool compressing() const;
  // Ends the zstd frame and writes its last bytes; nothing without compression.
  Status end_stream();
  // The totals; reports the final progress.
  CopyStats finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// A pg_dump directory-format output: every file is flushed to disk, counted and hashed (the
// manifest lists them, name order). `bytes`: the sum.
struct DirectoryFile {
  std::string name;
  std::uint64_t bytes = 0;
  std::string checksum;
};
struct DirectoryStats {
  std::uint64_t bytes = 0;
  std::vector<DirectoryFile> files;
};
Result<DirectoryStats> seal_dump_directory(const std::string& directory, ChecksumAlgorithm algorithm,
                                           const CancelToken& cancel);

// A progress reporter for stderr: a live "\r" counter on a terminal, a log line every 10 s
// otherwise.
CopyProgress dump_progress_reporter();

}  // namespace agent
