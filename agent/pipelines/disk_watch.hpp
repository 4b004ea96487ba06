#pragma once
// The live volume's watchdog. While `agent dump` restores, replays and dumps, a thread reads
// the free space of every filesystem the job writes to that the live cluster also uses; when
// one falls below its reserve, it cancels the job (the steps' teardowns then stop the
// temporary server and remove what was written) and says which filesystem, how much was free
// and what the reserve was. It also forwards the caller's cancellation (SIGINT, SIGTERM) to
// the job, so the job waits on one token.
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/cancel.hpp"
#include "core/error.hpp"

namespace agent {

struct WatchedFilesystem {
  std::uint64_t device = 0;
  std::string path;         // a directory on it that exists while the job runs (statvfs)
  std::string description;  // what the job and the live cluster keep there, for messages
  std::uint64_t reserve_bytes = 0;
  bool operator==(const WatchedFilesystem&) const = default;
};

// Free bytes on the filesystem of `path` for an unprivileged writer; nothing when statvfs fails.
using FreeSpaceProbe = std::function<std::optional<std::uint64_t>(const std::string& path)>;
std::optional<std::uint64_t> statvfs_free_bytes(const std::string& path);

struct DiskTrip {
  WatchedFilesystem filesystem;
  std::uint64_t free_bytes = 0;
  Error error;  // what stops the job
};

// The first filesystem whose free space is below its reserve. A filesystem that cannot be
// read is skipped (it is read again on the next round).
std::optional<DiskTrip> check_reserves(const std::vector<WatchedFilesystem>& filesystems,
                                       const FreeSpaceProbe& probe);

// "1.5 GiB"
std::string human_bytes(std::uint64_t bytes);

class DiskWatch {
 public:
  DiskWatch(const CancelToken& outer, std::chrono::milliseconds interval,
            FreeSpaceProbe probe = statvfs_free_bytes);
  ~DiskWatch();
  DiskWatch(const DiskWatch&) = delete;
  DiskWatch& operator=(const DiskWatch&) = delete;

  // Cancelled when `outer` is (with its signal number), or when a watched filesystem falls
  // below its reserve.
  const CancelToken& token() const { return token_; }
  // Replaces what is watched; an empty list watches nothing (the outer token is still forwarded).
  void watch(std::vector<WatchedFilesystem> filesystems);
  std::optional<DiskTrip> tripped() const;

 private:
  void loop();

  const CancelToken& outer_;
  std::chrono::milliseconds interval_;
  FreeSpaceProbe probe_;
  CancelToken token_;
  CancelToken stop_;
  mutable std::mutex mutex_;
  std::vector<WatchedFilesystem> filesystems_;
  std::optional<DiskTrip> tripped_;
  std::thread thread_;
};

}  // namespace agent
