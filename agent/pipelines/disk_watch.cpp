#include "pipelines/disk_watch.hpp"

#include <poll.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdio>

#include "core/log.hpp"

namespace agent {

std::optional<std::uint64_t> statvfs_free_bytes(const std::string& path) {
  struct statvfs vfs {};
  if (statvfs(path.c_str(), &vfs) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

std::string human_bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f %s", value, units[unit]);
  return buffer;
}

std::optional<DiskTrip> check_reserves(const std::vector<WatchedFilesystem>& filesystems,
                                       const FreeSpaceProbe& probe) {
  for (const auto& filesystem : filesystems) {
    const auto free_bytes = probe(filesystem.path);
    if (!free_bytes || *free_bytes >= filesystem.reserve_bytes) continue;
    Error error = make_error(
        ErrorKind::environment,
        "free space on " + filesystem.path + " (" + filesystem.description + ") fell to " +
            human_bytes(*free_bytes) + ", below the " + human_bytes(filesystem.reserve_bytes) +
            " kept free for the live cluster",
        "the temporary server was stopped and the partial dump and the restored copy on that filesystem "
        "removed; put restore.scratch (and the dump) on a volume of its own (README: Deploy), or write "
        "the dump to standard output (--output -), or free space there; the reserve is "
        "disk.reserve_percent and disk.reserve_mb");
    return DiskTrip{filesystem, *free_bytes, std::move(error)};
  }
  return std::nullopt;
}

DiskWatch::DiskWatch(const CancelToken& outer, std::chrono::milliseconds interval, FreeSpaceProbe probe)
    : outer_(outer), interval_(interval), probe_(std::move(probe)), thread_([this] { loop(); }) {}

DiskWatch::~DiskWatch() {
  stop_.cancel();
  if (thread_.joinable()) thread_.join();
}

void DiskWatch::watch(std::vector<WatchedFilesystem> filesystems) {
  std::lock_guard lock(mutex_);
  filesystems_ = std::move(filesystems);
}

std::optional<DiskTrip> DiskWatch::tripped() const {
  std::lock_guard lock(mutex_);
  return tripped_;
}

void DiskWatch::loop() {
  const auto logger = log::get("dump");
  for (;;) {
    pollfd fds[2] = {{outer_.fd(), POLLIN, 0}, {stop_.fd(), POLLIN, 0}};
    const int rc = poll(fds, 2, static_cast<int>(interval_.count()));
    if (rc < 0 && errno != EINTR) return;
    if (stop_.cancelled()) return;
    if (outer_.cancelled()) {
      token_.cancel(outer_.signal_number());
      return;
    }
    std::vector<WatchedFilesystem> filesystems;
    {
      std::lock_guard lock(mutex_);
      filesystems = filesystems_;
    }
    if (filesystems.empty()) continue;
    if (auto trip = check_reserves(filesystems, probe_)) {
      logger->error("{}: stopping the dump", trip->error.message);
      {
        std::lock_guard lock(mutex_);
        tripped_ = std::move(trip);
      }
      token_.cancel();
      return;
    }
  }
}

}  // namespace agent
