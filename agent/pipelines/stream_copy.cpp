#include "pipelines/stream_copy.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "core/log.hpp"

namespace agent {
namespace {

constexpr std::size_t kBufferBytes = 1 << 20;

std::string hex(const unsigned char* data, unsigned int size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0xf];
  }
  return out;
}

Status write_all(int fd, const char* data, std::size_t size, const CancelToken& cancel) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n > 0) {
      data += n;
      size -= static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      if (cancel.cancelled()) return make_error(ErrorKind::interrupted, "interrupted while writing the dump");
      continue;
    }
    return make_error(ErrorKind::environment, std::string("cannot write the dump: ") + std::strerror(errno),
                      errno == ENOSPC ? "free disk space where the dump goes"
                                      : "check the output path (or the reader of standard output)");
  }
  return {};
}

// A dump as large as the database would otherwise sit in the page cache as dirty pages until
// the final fsync writes it all at once: seconds of waiting at the end, and gigabytes charged
// to the pod's memory. Instead each finished chunk goes to the disk at once, and chunks that
// reached it leave the cache. Only for regular files; errors surface at the final fsync.
class WriteBehind {
 public:
  explicit WriteBehind(int fd) : fd_(fd) {
    struct stat st {};
    enabled_ = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  }

  void wrote_up_to(std::uint64_t end) {
    if (!enabled_) return;
    while (end - submitted_ >= kChunkBytes) {
      sync_file_range(fd_, static_cast<off_t>(submitted_), kChunkBytes, SYNC_FILE_RANGE_WRITE);
      submitted_ += kChunkBytes;
      // A few chunks behind the writer the writeback has usually finished: drop the clean
      // pages. Pages still being written stay; never wait for the disk here.
      if (submitted_ >= kLagChunks * kChunkBytes) {
        const auto old = static_cast<off_t>(submitted_ - kLagChunks * kChunkBytes);
        posix_fadvise(fd_, old, kChunkBytes, POSIX_FADV_DONTNEED);
      }
    }
  }

 private:
  static constexpr std::uint64_t kChunkBytes = 8 << 20;
  static constexpr std::uint64_t kLagChunks = 3;
  int fd_;
  bool enabled_ = false;
  std::uint64_t submitted_ = 0;
};

// Fewer, larger reads: a pipe holds 64 KiB by default. Best effort (the system limit may be
// lower).
void enlarge_pipe(int fd) {
  struct stat st {};
  if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) fcntl(fd, F_SETPIPE_SZ, static_cast<int>(kBufferBytes));
}

}  // namespace

Result<CopyStats> copy_stream(int from, int to, const CancelToken& cancel, const CopyProgress& progress) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!sha || EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr) != 1)
    return make_error(ErrorKind::internal, "cannot initialise SHA-256");
  std::vector<char> buffer(kBufferBytes);
  CopyStats stats;
  WriteBehind write_behind(to);
  enlarge_pipe(from);
  auto last_report = std::chrono::steady_clock::now();
  for (;;) {
    pollfd fds[2] = {{from, POLLIN, 0}, {cancel.fd(), POLLIN, 0}};
    const int rc = poll(fds, 2, static_cast<int>(progress.interval.count()));
    if (cancel.cancelled()) return make_error(ErrorKind::interrupted, "interrupted while dumping");
    if (rc < 0 && errno != EINTR)
      return make_error(ErrorKind::internal, std::string("poll: ") + std::strerror(errno));
    if (rc > 0 && fds[0].revents != 0) {
      bool eof = false;
      for (;;) {
        const ssize_t n = read(from, buffer.data(), buffer.size());
        if (n > 0) {
          EVP_DigestUpdate(sha.get(), buffer.data(), static_cast<std::size_t>(n));
          if (auto s = write_all(to, buffer.data(), static_cast<std::size_t>(n), cancel); !s)
            return s.error();
          stats.bytes += static_cast<std::uint64_t>(n);
          write_behind.wrote_up_to(stats.bytes);
          continue;
        }
        if (n == 0)
          eof = true;
        else if (errno == EINTR)
          continue;
        else if (errno != EAGAIN)
          return make_error(ErrorKind::external_tool,
                            std::string("reading pg_dump output: ") + std::strerror(errno));
        break;
      }
      if (eof) break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (progress.report && now - last_report >= progress.interval) {
      progress.report(stats.bytes, false);
      last_report = now;
    }
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  EVP_DigestFinal_ex(sha.get(), digest, &digest_size);
  stats.sha256_hex = hex(digest, digest_size);
  if (progress.report) progress.report(stats.bytes, true);
  return stats;
}

CopyProgress dump_progress_reporter() {
  const bool terminal = isatty(STDERR_FILENO) == 1;
  auto start = std::chrono::steady_clock::now();
  auto last_log = start;
  CopyProgress progress;
  progress.interval = std::chrono::milliseconds(500);
  progress.report = [terminal, start, last_log](std::uint64_t bytes, bool final) mutable {
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - start).count();
    const double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
    const double rate = seconds > 0 ? mib / seconds : 0;
    if (terminal) {
      std::fprintf(stderr, "\r  dumped %.1f MiB (%.1f MiB/s)%s", mib, rate, final ? "\n" : "   ");
      std::fflush(stderr);
    } else if (!final && now - last_log >= std::chrono::seconds(10)) {
      log::get("dump")->info("dumped {:.1f} MiB so far ({:.1f} MiB/s)", mib, rate);
      last_log = now;
    }
  };
  return progress;
}

}  // namespace agent
