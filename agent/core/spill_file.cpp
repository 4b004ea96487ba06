#include "core/spill_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/files.hpp"

namespace agent {
namespace {

Error spill_error(const std::string& what, const std::string& directory) {
  const int saved = errno;
  return make_error(ErrorKind::environment,
                    "cannot " + what + " rows set aside in " + directory + ": " + std::strerror(saved),
                    saved == ENOSPC ? "free disk space there, or lower dump.connections to 1"
                                    : "check the directory and its permissions");
}

}  // namespace

SpillFile::SpillFile(std::string directory) : directory_(std::move(directory)) {}

SpillFile::~SpillFile() {
  if (fd_ >= 0) close(fd_);
}

Status SpillFile::open_unnamed() {
  fd_ = open(directory_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd_ >= 0) return {};
  // Not every file system has O_TMPFILE (overlayfs before Linux 6.6): a named file, unlinked
  // at once, is as good once this line is passed.
  std::string name = directory_ + "/.agent-spill-XXXXXX";
  fd_ = mkostemp(name.data(), O_CLOEXEC);
  if (fd_ < 0) return spill_error("create a file for", directory_);
  unlink(name.c_str());
  return {};
}

Status SpillFile::append(const char* data, std::size_t size) {
  if (fd_ < 0)
    if (auto s = open_unnamed(); !s) return s;
  if (!write_fully(fd_, data, size)) return spill_error("write", directory_);
  size_ += size;
  return {};
}

Status SpillFile::drain(const std::function<Status(const char*, std::size_t)>& out, std::size_t piece) {
  if (size_ == 0) return {};
  std::vector<char> buffer(piece);
  for (std::uint64_t at = 0; at < size_;) {
    const ssize_t n =
        pread(fd_, buffer.data(), std::min<std::uint64_t>(piece, size_ - at), static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return spill_error("read back", directory_);
    }
    if (auto s = out(buffer.data(), static_cast<std::size_t>(n)); !s) return s;
    at += static_cast<std::uint64_t>(n);
  }
  size_ = 0;
  // Truncating frees the pages at once; the next append starts at offset 0 again.
  if (ftruncate(fd_, 0) != 0 || lseek(fd_, 0, SEEK_SET) != 0)
    return spill_error("empty the file of", directory_);
  return {};
}

}  // namespace agent
