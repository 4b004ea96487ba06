#include "pipelines/dump_sink.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <algorithm>
#include <filesystem>

#include "core/files.hpp"
#include "core/log.hpp"
#include "core/log_throttle.hpp"

// The implementation is compiled in: nothing to install at run time.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace agent {
namespace {

constexpr std::size_t kBufferBytes = 1 << 20;
// How long follow_file waits when it has caught up with the writer: pg_dump writes a few MB
// in that time, so reads stay large and wake-ups few.
constexpr std::chrono::milliseconds kFollowPause{20};

std::string hex(const unsigned char* data, std::size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0xf];
  }
  return out;
}

Status write_dump(int fd, const char* data, std::size_t size, const CancelToken& cancel) {
  const int error = write_all(fd, data, size, WriteTarget::until_cancelled(cancel));
  if (error == 0) return {};
  if (error == EINTR) return make_error(ErrorKind::interrupted, "interrupted while writing the dump");
  return make_error(ErrorKind::environment, std::string("cannot write the dump: ") + std::strerror(error),
                    error == ENOSPC ? "free disk space where the dump goes"
                                    : "check the output path (or the reader of standard output)");
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

// The running checksum of the dump, as "ALGORITHM:HEX" (the hex as sha256sum and xxh128sum
// print it), or "" for none.
class Checksum {
 public:
  explicit Checksum(ChecksumAlgorithm algorithm)
      : sha_(nullptr, EVP_MD_CTX_free), xxh_(nullptr, XXH3_freeState) {
    if (algorithm == ChecksumAlgorithm::sha256) {
      sha_.reset(EVP_MD_CTX_new());
      ok_ = sha_ && EVP_DigestInit_ex(sha_.get(), EVP_sha256(), nullptr) == 1;
    } else if (algorithm == ChecksumAlgorithm::xxh128) {
      xxh_.reset(XXH3_createState());
      ok_ = xxh_ && XXH3_128bits_reset(xxh_.get()) == XXH_OK;
    }
  }
  bool ok() const { return ok_; }
  bool wanted() const { return sha_ || xxh_; }
  void update(const char* data, std::size_t size) {
    if (sha_) EVP_DigestUpdate(sha_.get(), data, size);
    if (xxh_) XXH3_128bits_update(xxh_.get(), data, size);
  }
  std::string finish() {
    if (sha_) {
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int digest_size = 0;
      EVP_DigestFinal_ex(sha_.get(), digest, &digest_size);
      return "sha256:" + hex(digest, digest_size);
    }
    if (xxh_) {
      XXH128_canonical_t canonical;
      XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(xxh_.get()));
      return "xxh128:" + hex(canonical.digest, sizeof canonical.digest);
    }
    return "";
  }

 private:
  bool ok_ = true;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha_;
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> xxh_;
};

// One zstd frame, streamed: input of any size goes through one fixed output buffer
// (ZSTD_CStreamOutSize, 128 KiB) to `emit`. The context takes a few MiB at the levels allowed
// (1..19: level 9 about 16 MiB, level 19 about 90 MiB, as ZSTD_estimateCStreamSize says).
class ZstdStream {
 public:
  explicit ZstdStream(int level) : context_(ZSTD_createCCtx(), ZSTD_freeCCtx) {
    ok_ = context_ && !ZSTD_isError(ZSTD_CCtx_setParameter(context_.get(), ZSTD_c_compressionLevel, level)) &&
          !ZSTD_isError(ZSTD_CCtx_setParameter(context_.get(), ZSTD_c_checksumFlag, 1));
    output_.resize(ZSTD_CStreamOutSize());
  }
  bool ok() const { return ok_; }
  template <typename Emit>
  Status feed(const char* data, std::size_t size, ZSTD_EndDirective mode, Emit&& emit) {
    ZSTD_inBuffer in{data, size, 0};
    for (;;) {
      ZSTD_outBuffer out{output_.data(), output_.size(), 0};
      const std::size_t left = ZSTD_compressStream2(context_.get(), &out, &in, mode);
      if (ZSTD_isError(left))
        return make_error(ErrorKind::internal, std::string("zstd: ") + ZSTD_getErrorName(left));
      if (out.pos > 0)
        if (auto s = emit(output_.data(), out.pos); !s) return s;
      if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size) return {};
    }
  }

 private:
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> context_;
  std::vector<char> output_;
  bool ok_ = false;
};

// Calls the reporter at most every progress.interval.
class ProgressClock {
 public:
  explicit ProgressClock(const CopyProgress& progress) : progress_(progress) {}
  ProgressClock(const ProgressClock&) = delete;
  void maybe_report(std::uint64_t bytes) {
    const auto now = std::chrono::steady_clock::now();
    if (!progress_.report || now - last_ < progress_.interval) return;
    progress_.report(bytes, false);
    last_ = now;
  }

 private:
  const CopyProgress& progress_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Fewer, larger reads: a pipe holds 64 KiB by default. Best effort (the system limit may be
// lower).
void enlarge_pipe(int fd) {
  struct stat st {};
  if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) fcntl(fd, F_SETPIPE_SZ, static_cast<int>(kBufferBytes));
}

}  // namespace

struct DumpSink::State {
  State(int out, ChecksumAlgorithm algorithm, const CancelToken& token, CopyProgress reporter, int zstd_level)
      : fd(out),
        cancel(token),
        progress(std::move(reporter)),
        checksum(algorithm),
        write_behind(fd),
        clock(this->progress) {
    if (zstd_level > 0) zstd = std::make_unique<ZstdStream>(zstd_level);
  }
  int fd;
  const CancelToken& cancel;
  CopyProgress progress;
  Checksum checksum;
  WriteBehind write_behind;
  ProgressClock clock;
  std::vector<char> buffer;
  std::uint64_t bytes = 0;
  std::uint64_t raw_bytes = 0;  // given to the compressor
  std::unique_ptr<ZstdStream> zstd;

  char* scratch_buffer() {
    if (buffer.empty()) buffer.resize(kBufferBytes);
    return buffer.data();
  }
  void counted(const char* data, std::size_t size) {
    checksum.update(data, size);
    bytes += size;
    write_behind.wrote_up_to(bytes);
  }
  // Writes what the dump gave: as it is, or through the compressor.
  Status land(const char* data, std::size_t size, ZSTD_EndDirective mode = ZSTD_e_continue) {
    const auto emit = [this](const char* out, std::size_t n) -> Status {
      if (auto s = write_dump(fd, out, n, cancel); !s) return s;
      counted(out, n);
      return {};
    };
    if (!zstd) return emit(data, size);
    raw_bytes += size;
    return zstd->feed(data, size, mode, emit);
  }
};

DumpSink::DumpSink(int fd, ChecksumAlgorithm algorithm, const CancelToken& cancel, CopyProgress progress,
                   int zstd_level)
    : state_(std::make_unique<State>(fd, algorithm, cancel, std::move(progress), zstd_level)) {}

DumpSink::~DumpSink() = default;

bool DumpSink::ok() const {
  return state_->checksum.ok() && (!state_->zstd || state_->zstd->ok());
}

bool DumpSink::compressing() const {
  return state_->zstd != nullptr;
}

Status DumpSink::end_stream() {
  if (!state_->zstd) return {};
  return state_->land(nullptr, 0, ZSTD_e_end);
}

std::uint64_t DumpSink::bytes() const {
  return state_->bytes;
}

Status DumpSink::write(const char* data, std::size_t size) {
  if (auto s = state_->land(data, size); !s) return s;
  state_->clock.maybe_report(state_->bytes);
  return {};
}

Status DumpSink::pump(int from) {
  auto& st = *state_;
  char* buffer = st.scratch_buffer();
  enlarge_pipe(from);
  for (;;) {
    pollfd fds[2] = {{from, POLLIN, 0}, {st.cancel.fd(), POLLIN, 0}};
    const int rc = poll(fds, 2, static_cast<int>(st.progress.interval.count()));
    if (st.cancel.cancelled()) return make_error(ErrorKind::interrupted, "interrupted while dumping");
    if (rc < 0 && errno != EINTR)
      return make_error(ErrorKind::internal, std::string("poll: ") + std::strerror(errno));
    if (rc > 0 && fds[0].revents != 0) {
      bool eof = false;
      for (;;) {
        const ssize_t n = read(from, buffer, kBufferBytes);
        if (n > 0) {
          if (auto s = st.land(buffer, static_cast<std::size_t>(n)); !s) return s.error();
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
      if (eof) return {};
    }
    st.clock.maybe_report(st.bytes);
  }
}

Status DumpSink::follow(const std::function<bool()>& writer_done) {
  auto& st = *state_;
  if (st.zstd)
    return make_error(ErrorKind::internal, "a compressed dump cannot follow a file its writer writes");
  // Brings the count up to what the file holds now: reads the new bytes back for the checksum
  // or, without one, only asks the file's size.
  const auto catch_up = [&](bool writer_ended) -> Status {
    if (!st.checksum.wanted()) {
      struct stat file {};
      if (fstat(st.fd, &file) != 0)
        return make_error(ErrorKind::environment,
                          std::string("cannot stat the dump: ") + std::strerror(errno),
                          "check the disk where the dump goes");
      st.bytes = static_cast<std::uint64_t>(file.st_size);
      st.write_behind.wrote_up_to(st.bytes);
      return {};
    }
    char* buffer = st.scratch_buffer();
    for (;;) {
      const ssize_t n = pread(st.fd, buffer, kBufferBytes, static_cast<off_t>(st.bytes));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        return make_error(ErrorKind::environment,
                          std::string("cannot read the dump back: ") + std::strerror(errno),
                          "check the disk where the dump goes");
      if (n == 0) return {};
      st.counted(buffer, static_cast<std::size_t>(n));
      // A short read means the writer is behind: wait for more rather than ask again at once.
      if (!writer_ended && static_cast<std::size_t>(n) < kBufferBytes) return {};
    }
  };
  for (;;) {
    // Asked before reading: once the writer has ended, everything it wrote is in the file.
    const bool done = writer_done();
    if (auto s = catch_up(done); !s) return s.error();
    st.clock.maybe_report(st.bytes);
    if (done) return {};
    pollfd cancel_fd{st.cancel.fd(), POLLIN, 0};
    poll(&cancel_fd, 1, static_cast<int>(kFollowPause.count()));
    if (st.cancel.cancelled()) return make_error(ErrorKind::interrupted, "interrupted while dumping");
  }
}

CopyStats DumpSink::finish() {
  CopyStats stats;
  stats.bytes = state_->bytes;
  stats.raw_bytes = state_->zstd ? state_->raw_bytes : state_->bytes;
  stats.checksum = state_->checksum.finish();
  if (state_->progress.report) state_->progress.report(stats.bytes, true);
  return stats;
}

std::optional<ChecksumAlgorithm> parse_checksum_algorithm(const std::string& name) {
  if (name == "xxh128") return ChecksumAlgorithm::xxh128;
  if (name == "sha256") return ChecksumAlgorithm::sha256;
  if (name == "none") return ChecksumAlgorithm::none;
  return std::nullopt;
}

Result<DirectoryStats> seal_dump_directory(const std::string& directory, ChecksumAlgorithm algorithm,
                                           const CancelToken& cancel) {
  std::vector<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  if (ec)
    return make_error(ErrorKind::environment,
                      "cannot list the dump directory " + directory + ": " + ec.message());
  std::sort(names.begin(), names.end());
  DirectoryStats stats;
  for (const auto& name : names) {
    const std::string path = directory + "/" + name;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return make_error(ErrorKind::environment, "cannot open " + path + ": " + std::strerror(errno));
    DumpSink sink(fd, algorithm, cancel, CopyProgress{});
    auto read = sink.follow([] { return true; });
    const bool synced = fsync(fd) == 0;
    close(fd);
    if (!read) return read.error();
    if (!synced)
      return make_error(ErrorKind::environment, "cannot flush " + path + ": " + std::strerror(errno));
    const auto file = sink.finish();
    stats.bytes += file.bytes;
    stats.files.push_back(DirectoryFile{name, file.bytes, file.checksum});
  }
  const int dir_fd = open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    fsync(dir_fd);
    close(dir_fd);
  }
  return stats;
}

CopyProgress dump_progress_reporter() {
  const bool terminal = isatty(STDERR_FILENO) == 1;
  auto start = std::chrono::steady_clock::now();
  LogThrottle progress_line(start);
  CopyProgress progress;
  progress.interval = std::chrono::milliseconds(500);
  progress.report = [terminal, start, progress_line](std::uint64_t bytes, bool final) mutable {
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - start).count();
    const double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
    const double rate = seconds > 0 ? mib / seconds : 0;
    if (terminal) {
      std::fprintf(stderr, "\r  dumped %.1f MiB (%.1f MiB/s)%s", mib, rate, final ? "\n" : "   ");
      std::fflush(stderr);
    } else if (!final && progress_line.due(now)) {
      log::get("dump")->info("dumped {:.1f} MiB so far ({:.1f} MiB/s)", mib, rate);
    }
  };
  return progress;
}

}  // namespace agent
