#include "core/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

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

namespace {
// At `offset`, or at the file's position when it is negative.
bool write_all_at(int fd, const char* data, std::size_t size, off_t offset) {
  while (size > 0) {
    const ssize_t n = offset < 0 ? write(fd, data, size) : pwrite(fd, data, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
    if (offset >= 0) offset += n;
  }
  return true;
}
}  // namespace

bool write_fully(int fd, const char* data, std::size_t size) {
  return write_all_at(fd, data, size, -1);
}

bool pwrite_fully(int fd, const char* data, std::size_t size, std::uint64_t offset) {
  return write_all_at(fd, data, size, static_cast<off_t>(offset));
}

Status write_file_atomically(const std::string& path, const std::string& content) {
  const std::string partial = path + ".partial";
  auto fd = create_private_file(partial);
  if (!fd) return fd.error();
  if (!write_fully(*fd, content.data(), content.size())) {
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

}  // namespace agent
