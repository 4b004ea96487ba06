#pragma once
// Bytes set aside on disk until their turn comes, in a file without a name: the kernel frees
// it when it is closed, however the agent ends (even killed), so nothing is left behind.
// One thread may append while another reads back what was appended before.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "core/error.hpp"

namespace agent {

class SpillFile {
 public:
  // The file is created in `directory` on the first append.
  explicit SpillFile(std::string directory);
  ~SpillFile();
  SpillFile(const SpillFile&) = delete;
  SpillFile& operator=(const SpillFile&) = delete;

  // Adds `size` bytes at the end; returns where they start.
  Result<std::uint64_t> append(const char* data, std::size_t size);
  // Hands `length` bytes from `offset` back, in pieces of at most `piece` bytes, then frees
  // their room on disk: bytes read back are neither kept in memory nor ever written out.
  Status read_back(std::uint64_t offset, std::uint64_t length,
                   const std::function<Status(const char*, std::size_t)>& out, std::size_t piece);
  // What the file takes on disk (or in the page cache) now.
  std::uint64_t bytes_on_disk() const;

 private:
  Status open_unnamed();

  std::string directory_;
  int fd_ = -1;
  std::uint64_t end_ = 0;  // touched by the appending thread only
};

}  // namespace agent
