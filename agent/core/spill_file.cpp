#include "core/spill_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
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

Result<std::uint64_t> SpillFile::append(const char* data, std::size_t size) {
  if (fd_ < 0)
    if (auto s = open_unnamed(); !s) return s.error();
  // pwrite at a known offset: a concurrent read_back never moves it.
  if (const int error = write_all(fd_, data, size, WriteTarget::at(end_)); error != 0) {
    errno = error;
    return spill_error("write", directory_);
  }
  const std::uint64_t at = end_;
  end_ += size;
  return at;
}

Status SpillFile::read_back(std::uint64_t offset, std::uint64_t length,
                            const std::function<Status(const char*, std::size_t)>& out, std::size_t piece) {
  if (length == 0) return {};
  std::vector<char> buffer(std::min<std::uint64_t>(piece, length));
  for (std::uint64_t at = offset; at < offset + length;) {
    const ssize_t n = pread(fd_, buffer.data(), std::min<std::uint64_t>(buffer.size(), offset + length - at),
                            static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return spill_error("read back", directory_);
    }
    if (auto s = out(buffer.data(), static_cast<std::size_t>(n)); !s) return s;
    at += static_cast<std::uint64_t>(n);
  }
  // Dropping what was read spares the kernel writing it to disk. Where the file system cannot
  // punch holes, the pages stay until the file is closed: slower, not wrong.
  fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
            static_cast<off_t>(length));
  return {};
}

std::uint64_t SpillFile::bytes_on_disk() const {
  struct stat st {};
  if (fd_ < 0 || fstat(fd_, &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

}  // namespace agent
