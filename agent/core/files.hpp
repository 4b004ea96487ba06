#pragma once
// Files that appear under their final name only when complete: written as NAME.partial
// (mode 0600), flushed, then renamed, and the directory flushed too.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "core/cancel.hpp"
#include "core/error.hpp"

namespace agent {

// Creates `path` fresh (an old file of that name is replaced), mode 0600; returns the fd.
Result<int> create_private_file(const std::string& path);
// fsyncs and closes `fd`, renames `partial` to `final_path`, fsyncs the directory.
Status publish_file(int fd, const std::string& partial, const std::string& final_path);
// The agent's one write loop: writes all of `size` bytes to `fd`, going on after short writes
// and signals. 0 when all is written, else the errno (EINTR once `cancel` has fired; EAGAIN
// from a non-blocking descriptor that is full).
struct WriteTarget {
  std::optional<std::uint64_t> offset;  // pwrite at this offset, the file's position left alone
  bool socket = false;                  // send() with MSG_NOSIGNAL: a gone peer is EPIPE, not SIGPIPE
  const CancelToken* cancel = nullptr;

  static WriteTarget at(std::uint64_t where) {
    WriteTarget t;
    t.offset = where;
    return t;
  }
  static WriteTarget to_socket() {
    WriteTarget t;
    t.socket = true;
    return t;
  }
  static WriteTarget until_cancelled(const CancelToken& token) {
    WriteTarget t;
    t.cancel = &token;
    return t;
  }
};
int write_all(int fd, const char* data, std::size_t size, const WriteTarget& target = {});
// Writes `content` to `path` through `path.partial`, mode 0600.
Status write_file_atomically(const std::string& path, const std::string& content);
// A state file of the agent (`what`: "job history"): its text, nullopt when it does not exist, an
// error naming it when it cannot be read.
Result<std::optional<std::string>> read_state_file(const std::string& path, const std::string& what);
// A corrupt state file moved aside to PATH.corrupt-YYYYMMDDTHHMMSSZ, kept for a person to read (a
// broken state file must not stop the agent); returns where it went.
Result<std::string> move_corrupt_state_file_aside(const std::string& path, const std::string& what,
                                                  const std::string& problem);
// Creates a directory (and its parents) with mode 0700, or checks an existing one.
Status ensure_private_directory(const std::string& path);

// A file somebody else provides (a Downward API volume, a state file, a config file), read so
// that it can never stall the caller: opened O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY
// (following symlinks, the way the kubelet's `..data` swap arrives), refused unless fstat says
// it is a regular file (a FIFO would block an open or read without O_NONBLOCK, a directory or a
// device is not a file of values), and never read beyond `max_bytes` + 1 bytes: a 100 MB file
// costs one fstat, not 100 MB.
struct FileRead {
  enum class Outcome {
    ok,           // `content` is the whole file
    missing,      // ENOENT, or a dangling symlink: nothing there (yet)
    not_regular,  // a FIFO, directory, socket or device; `problem` says which
    too_large,    // more than max_bytes
    failed,       // open or read failed otherwise (permissions, I/O); see error_number
  };
  Outcome outcome = Outcome::ok;
  std::string content;
  // Lowercase, names the path: "/etc/podinfo/annotations is a FIFO (named pipe), not a regular
  // file". Empty when ok.
  std::string problem;
  int error_number = 0;  // errno, for missing and failed
  bool ok() const { return outcome == Outcome::ok; }
};
FileRead read_regular_file_nonblocking(const std::string& path, std::size_t max_bytes);
// "a FIFO (named pipe)", "a directory", "a socket", "a character device", ... from st_mode.
std::string file_type_name(unsigned mode);

}  // namespace agent
