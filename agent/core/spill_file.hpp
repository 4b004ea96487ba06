#pragma once
// Bytes set aside on disk until their turn comes, in a file without a name: the kernel frees
// it when it is closed, however the agent ends (even killed), so nothing is left behind.
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

  Status append(const char* data, std::size_t size);
  std::uint64_t size() const { return size_; }
  // Hands everything appended back, in order, in pieces of at most `piece` bytes, then
  // empties the file for reuse.
  Status drain(const std::function<Status(const char*, std::size_t)>& out, std::size_t piece);

 private:
  Status open_unnamed();

  std::string directory_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

}  // namespace agent
