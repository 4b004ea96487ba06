#include "core/files.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace agent {

namespace {
Error file_error(const std::string& what, const std::string& path) {
  const int saved = errno;
  return make_error(ErrorKind::environment, "cannot " + what + " " + path + ": " + std::strerror(saved),
                    saved == ENOSPC ? "free disk space there" : "check the path and its permissions");
}
}  // namespace

Result<int> create_private_file(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return file_error("remove the old", path);
  // Readable too: the dump step hashes the file back while pg_dump writes it.
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return file_error("create", path);
  return fd;
}

Status publish_file(int fd, const std::string& partial, const std::string& final_path) {
  if (fsync(fd) != 0) {
    close(fd);
    return file_error("flush", partial);
  }
  if (close(fd) != 0) return file_error("close", partial);
  if (rename(partial.c_str(), final_path.c_str()) != 0) return file_error("rename to", final_path);
  const std::string dir = std::filesystem::path(final_path).parent_path().string();
  const int dir_fd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    fsync(dir_fd);
    close(dir_fd);
  }
  return {};
}

int write_all(int fd, const char* data, std::size_t size, const WriteTarget& target) {
  std::uint64_t offset = target.offset.value_or(0);
  while (size > 0) {
    ssize_t n = 0;
    if (target.socket)
      n = send(fd, data, size, MSG_NOSIGNAL);
    else if (target.offset)
      n = pwrite(fd, data, size, static_cast<off_t>(offset));
    else
      n = write(fd, data, size);
    if (n < 0 && errno == EINTR) {
      if (target.cancel != nullptr && target.cancel->cancelled()) return EINTR;
      continue;
    }
    if (n < 0) return errno;
    if (n == 0) return EIO;  // nothing written and no error: never spin
    data += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return 0;
}

Status write_file_atomically(const std::string& path, const std::string& content) {
  const std::string partial = path + ".partial";
  auto fd = create_private_file(partial);
  if (!fd) return fd.error();
  if (const int written = write_all(*fd, content.data(), content.size()); written != 0) {
    errno = written;
    auto error = file_error("write", partial);
    close(*fd);
    unlink(partial.c_str());
    return error;
  }
  if (auto published = publish_file(*fd, partial, path); !published) {
    unlink(partial.c_str());
    return published;
  }
  return {};
}

Status ensure_private_directory(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec)
    return make_error(ErrorKind::environment, "cannot create " + path + ": " + ec.message(),
                      "check the permissions of its parent");
  if (chmod(path.c_str(), 0700) != 0) return file_error("set mode 0700 on", path);
  return {};
}

std::string file_type_name(unsigned mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "a regular file";
    case S_IFDIR:
      return "a directory";
    case S_IFIFO:
      return "a FIFO (named pipe)";
    case S_IFSOCK:
      return "a socket";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFLNK:
      return "a symbolic link";
    default:
      return "not a regular file";
  }
}

FileRead read_regular_file_nonblocking(const std::string& path, std::size_t max_bytes) {
  FileRead result;
  const auto fail = [&](FileRead::Outcome outcome, std::string problem, int error_number = 0) {
    result.outcome = outcome;
    result.problem = std::move(problem);
    result.error_number = error_number;
    result.content.clear();
    return result;
  };
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int saved = errno;
    if (saved == ENOENT) return fail(FileRead::Outcome::missing, path + " does not exist", saved);
    // A socket cannot be opened at all (ENXIO); say what is there rather than "no such device".
    struct stat info {};
    if (stat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode))
      return fail(FileRead::Outcome::not_regular,
                  path + " is " + file_type_name(info.st_mode) + ", not a regular file", saved);
    return fail(FileRead::Outcome::failed, "cannot open " + path + ": " + std::strerror(saved), saved);
  }
  struct stat info {};
  if (fstat(fd, &info) != 0) {
    const int saved = errno;
    close(fd);
    return fail(FileRead::Outcome::failed, "cannot inspect " + path + ": " + std::strerror(saved), saved);
  }
  if (!S_ISREG(info.st_mode)) {
    close(fd);
    return fail(FileRead::Outcome::not_regular,
                path + " is " + file_type_name(info.st_mode) + ", not a regular file");
  }
  const auto too_large = [&](std::uint64_t size, bool at_least) {
    return fail(FileRead::Outcome::too_large, path + " is " + (at_least ? "more than " : "") +
                                                  std::to_string(size) + " bytes, larger than the " +
                                                  std::to_string(max_bytes) + " bytes allowed");
  };
  if (info.st_size > 0 && static_cast<std::uint64_t>(info.st_size) > max_bytes) {
    close(fd);
    return too_large(static_cast<std::uint64_t>(info.st_size), false);
  }
  // st_size can be wrong (files in /proc say 0) or change under us: read at most one byte past
  // the limit, which is how "too large" is told from "exactly the limit".
  const std::size_t cap = max_bytes == SIZE_MAX ? max_bytes : max_bytes + 1;
  result.content.resize(std::min<std::size_t>(
      cap, info.st_size > 0 ? static_cast<std::size_t>(info.st_size) + 1 : std::size_t{65536}));
  std::size_t used = 0;
  for (;;) {
    if (used == result.content.size()) {
      if (used >= cap) break;
      result.content.resize(std::min(cap, used * 2));
    }
    const ssize_t n = read(fd, result.content.data() + used, result.content.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int saved = errno;
      close(fd);
      return fail(FileRead::Outcome::failed, "cannot read " + path + ": " + std::strerror(saved), saved);
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  close(fd);
  if (used > max_bytes) return too_large(max_bytes, true);
  result.content.resize(used);
  return result;
}

Result<std::optional<std::string>> read_state_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::optional<std::string>{};
    return make_error(ErrorKind::environment,
                      "cannot open the " + what + " " + path + ": " + std::strerror(errno),
                      "check the permissions of state_dir");
  }
  std::stringstream content;
  content << in.rdbuf();
  return std::optional<std::string>{content.str()};
}

Result<std::string> move_corrupt_state_file_aside(const std::string& path, const std::string& what,
                                                  const std::string& problem) {
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  const std::string aside = path + ".corrupt-" + stamp;
  if (std::rename(path.c_str(), aside.c_str()) != 0)
    return make_error(ErrorKind::environment,
                      "the " + what + " " + path + " is corrupt (" + problem +
                          ") and cannot be moved aside: " + std::strerror(errno),
                      "remove or fix it");
  return aside;
}

}  // namespace agent
