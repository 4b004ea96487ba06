#include "pipelines/dump_sink.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <zstd.h>
#include <atomic>
#include <string>
#include <thread>

#include <cstring>

namespace agent {
namespace {

// The two whole-dump paths of the sink: a pipe copied through the agent, and a file another
// process writes.
Result<CopyStats> copy_stream(int from, int to, ChecksumAlgorithm algorithm, const CancelToken& cancel,
                              const CopyProgress& progress) {
  DumpSink sink(to, algorithm, cancel, progress);
  if (!sink.ok()) return make_error(ErrorKind::internal, "cannot initialise the checksum");
  if (auto s = sink.pump(from); !s) return s.error();
  return sink.finish();
}

Result<CopyStats> follow_file(int fd, const std::function<bool()>& writer_done, ChecksumAlgorithm algorithm,
                              const CancelToken& cancel, const CopyProgress& progress) {
  DumpSink sink(fd, algorithm, cancel, progress);
  if (!sink.ok()) return make_error(ErrorKind::internal, "cannot initialise the checksum");
  if (auto s = sink.follow(writer_done); !s) return s.error();
  return sink.finish();
}

TEST(DumpSink, CopiesAndHashes) {
  int in[2], out[2];
  ASSERT_EQ(pipe2(in, O_NONBLOCK), 0);
  ASSERT_EQ(pipe(out), 0);
  std::thread writer([&] {
    const char text[] = "abc";
    fcntl(in[1], F_SETFL, 0);
    ASSERT_EQ(write(in[1], text, 3), 3);
    close(in[1]);
  });
  std::uint64_t reported = 0;
  CopyProgress progress;
  progress.report = [&](std::uint64_t bytes, bool) { reported = bytes; };
  auto stats = copy_stream(in[0], out[1], ChecksumAlgorithm::sha256, CancelToken::never(), progress);
  writer.join();
  ASSERT_TRUE(stats.ok()) << stats.error().describe();
  EXPECT_EQ(stats->bytes, 3u);
  EXPECT_EQ(reported, 3u);
  // SHA-256("abc") from FIPS 180-2.
  EXPECT_EQ(stats->checksum, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  char buffer[4] = {};
  ASSERT_EQ(read(out[0], buffer, 3), 3);
  EXPECT_STREQ(buffer, "abc");
  for (int fd : {in[0], out[0], out[1]}) close(fd);
}

TEST(DumpSink, CancelStopsAWaitingCopy) {
  int in[2];
  ASSERT_EQ(pipe2(in, O_NONBLOCK), 0);
  const int null_fd = open("/dev/null", O_WRONLY);
  CancelToken cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel.cancel(SIGTERM);
  });
  auto stats = copy_stream(in[0], null_fd, ChecksumAlgorithm::xxh128, cancel, CopyProgress{});
  canceller.join();
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().kind, ErrorKind::interrupted);
  for (int fd : {in[0], in[1], null_fd}) close(fd);
}

// A writer that appends in bursts with pauses, as pg_dump does, and then ends.
TEST(FollowFile, HashesEverythingTheWriterWroteWhileItWasWriting) {
  char path[] = "/tmp/agent-follow-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const int writer_fd = open(path, O_WRONLY | O_APPEND);
  ASSERT_GE(writer_fd, 0);
  std::atomic<bool> done{false};
  std::string all;
  std::thread writer([&] {
    for (int burst = 0; burst < 20; ++burst) {
      // Bursts larger and smaller than the follower's buffer (1 MiB).
      const std::string chunk(burst % 3 == 0 ? (3 << 20) + burst : 1000 + burst,
                              static_cast<char>('a' + burst));
      all += chunk;
      ASSERT_EQ(write(writer_fd, chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    done = true;
  });
  std::uint64_t reported = 0;
  CopyProgress progress;
  progress.interval = std::chrono::milliseconds(1);
  progress.report = [&](std::uint64_t bytes, bool) { reported = bytes; };
  auto stats = follow_file(
      fd, [&] { return done.load(); }, ChecksumAlgorithm::xxh128, CancelToken::never(), progress);
  writer.join();
  ASSERT_TRUE(stats.ok()) << stats.error().describe();
  EXPECT_EQ(stats->bytes, all.size());
  EXPECT_EQ(reported, all.size());
  // The same bytes hashed in one go through the pipe path.
  int in[2];
  ASSERT_EQ(pipe2(in, O_NONBLOCK), 0);
  const int null_fd = open("/dev/null", O_WRONLY);
  std::thread feeder([&] {
    fcntl(in[1], F_SETFL, 0);
    ASSERT_EQ(write(in[1], all.data(), all.size()), static_cast<ssize_t>(all.size()));
    close(in[1]);
  });
  auto piped = copy_stream(in[0], null_fd, ChecksumAlgorithm::xxh128, CancelToken::never(), CopyProgress{});
  feeder.join();
  ASSERT_TRUE(piped.ok());
  EXPECT_EQ(stats->checksum, piped->checksum);
  EXPECT_EQ(stats->checksum.rfind("xxh128:", 0), 0u);
  for (int f : {fd, writer_fd, in[0], null_fd}) close(f);
  unlink(path);
}

// Known values: SHA-256 from FIPS 180-2; XXH3-128 as `printf abc | xxh128sum` prints it.
TEST(FollowFile, ChecksumsOfAKnownText) {
  char path[] = "/tmp/agent-follow-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "abc", 3), 3);
  const auto checksum = [fd](ChecksumAlgorithm algorithm) {
    auto stats = follow_file(
        fd, [] { return true; }, algorithm, CancelToken::never(), CopyProgress{});
    EXPECT_TRUE(stats.ok());
    EXPECT_EQ(stats->bytes, 3u);
    return stats->checksum;
  };
  EXPECT_EQ(checksum(ChecksumAlgorithm::sha256),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(checksum(ChecksumAlgorithm::xxh128), "xxh128:06b05ab6733a618578af5f94892f3950");
  EXPECT_EQ(checksum(ChecksumAlgorithm::none), "");
  close(fd);
  unlink(path);
}

TEST(FollowFile, CancelStopsFollowingAWriterThatNeverEnds) {
  char path[] = "/tmp/agent-follow-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  CancelToken cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel.cancel(SIGTERM);
  });
  auto stats = follow_file(
      fd, [] { return false; }, ChecksumAlgorithm::xxh128, cancel, CopyProgress{});
  canceller.join();
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().kind, ErrorKind::interrupted);
  close(fd);
  unlink(path);
}

// The pieces of a split dump (a pg_dump writing the file itself, the agent's own rows, a
// pg_dump through a pipe) land one after the other and hash as one file.
TEST(DumpSink, PiecesFromEverySourceHashAsOneFile) {
  char path[] = "/tmp/agent-sink-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  DumpSink sink(fd, ChecksumAlgorithm::xxh128, CancelToken::never(), CopyProgress{});
  ASSERT_TRUE(sink.ok());
  // A child writing through a duplicate of the descriptor, as pg_dump's standard output.
  const int child_stdout = dup(fd);
  ASSERT_EQ(write(child_stdout, "a", 1), 1);
  ASSERT_TRUE(sink.follow([] { return true; }).ok());
  ASSERT_TRUE(sink.write("b", 1).ok());
  int in[2];
  ASSERT_EQ(pipe2(in, O_NONBLOCK), 0);
  ASSERT_EQ(write(in[1], "c", 1), 1);
  close(in[1]);
  ASSERT_TRUE(sink.pump(in[0]).ok());
  EXPECT_EQ(sink.bytes(), 3u);
  const auto stats = sink.finish();
  EXPECT_EQ(stats.checksum, "xxh128:06b05ab6733a618578af5f94892f3950");  // xxh128sum of "abc"
  char buffer[4] = {};
  ASSERT_EQ(pread(fd, buffer, 3, 0), 3);
  EXPECT_STREQ(buffer, "abc");
  for (int d : {in[0], child_stdout, fd}) close(d);
  unlink(path);
}

// --compress zstd: what lands is one zstd frame of the pieces in order, and the checksum and
// byte count are of the compressed bytes (what a copy of the file is checked against).
TEST(DumpSink, ZstdCompressesEveryPieceIntoOneFrameAndHashesWhatLands) {
  char path[] = "/tmp/agent-sink-zstd-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  DumpSink sink(fd, ChecksumAlgorithm::xxh128, CancelToken::never(), CopyProgress{}, 3);
  ASSERT_TRUE(sink.ok());
  EXPECT_TRUE(sink.compressing());
  EXPECT_FALSE(sink.follow([] { return true; }).ok()) << "a file written by another cannot be compressed";
  std::string expected;
  for (int i = 0; i < 20000; ++i) expected += "COPY row " + std::to_string(i) + "\n";
  ASSERT_TRUE(sink.write(expected.data(), expected.size() / 2).ok());
  int in[2];
  ASSERT_EQ(pipe2(in, O_NONBLOCK), 0);
  const std::string rest = expected.substr(expected.size() / 2);
  std::thread writer([&] {
    fcntl(in[1], F_SETFL, 0);
    ASSERT_EQ(write(in[1], rest.data(), rest.size()), static_cast<ssize_t>(rest.size()));
    close(in[1]);
  });
  ASSERT_TRUE(sink.pump(in[0]).ok());
  writer.join();
  close(in[0]);
  ASSERT_TRUE(sink.end_stream().ok());
  const auto stats = sink.finish();
  EXPECT_EQ(stats.raw_bytes, expected.size());
  EXPECT_LT(stats.bytes, expected.size() / 4);
  std::string compressed(stats.bytes, '\0');
  ASSERT_EQ(pread(fd, compressed.data(), compressed.size(), 0), static_cast<ssize_t>(compressed.size()));
  std::string restored(expected.size(), '\0');
  EXPECT_EQ(ZSTD_decompress(restored.data(), restored.size(), compressed.data(), compressed.size()),
            expected.size());
  EXPECT_EQ(restored, expected);
  DumpSink reread(fd, ChecksumAlgorithm::xxh128, CancelToken::never(), CopyProgress{});
  // A second sink over the finished file (follow from offset 0) sees the same checksum.
  ASSERT_TRUE(reread.follow([] { return true; }).ok());
  EXPECT_EQ(reread.finish().checksum, stats.checksum);
  close(fd);
  unlink(path);
}

TEST(DumpSink, ADumpDirectoryIsFlushedAndHashedFileByFile) {
  char dir[] = "/tmp/agent-sink-dir-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  for (const auto& [name, text] : {std::pair{"toc.dat", "abc"}, std::pair{"3342.dat.gz", "b"}}) {
    const std::string path = std::string(dir) + "/" + name;
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, text, strlen(text)), static_cast<ssize_t>(strlen(text)));
    close(fd);
  }
  auto sealed = seal_dump_directory(dir, ChecksumAlgorithm::xxh128, CancelToken::never());
  ASSERT_TRUE(sealed.ok()) << sealed.error().message;
  EXPECT_EQ(sealed->bytes, 4u);
  ASSERT_EQ(sealed->files.size(), 2u);
  EXPECT_EQ(sealed->files[0].name, "3342.dat.gz");
  EXPECT_EQ(sealed->files[1].name, "toc.dat");
  EXPECT_EQ(sealed->files[1].checksum, "xxh128:06b05ab6733a618578af5f94892f3950");
  for (const char* name : {"toc.dat", "3342.dat.gz"}) unlink((std::string(dir) + "/" + name).c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace agent
