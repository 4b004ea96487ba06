#include "pipelines/stream_copy.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

namespace agent {
namespace {

TEST(StreamCopy, CopiesAndHashes) {
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
  auto stats = copy_stream(in[0], out[1], CancelToken::never(), progress);
  writer.join();
  ASSERT_TRUE(stats.ok()) << stats.error().describe();
  EXPECT_EQ(stats->bytes, 3u);
  EXPECT_EQ(reported, 3u);
  // SHA-256("abc") from FIPS 180-2.
  EXPECT_EQ(stats->sha256_hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  char buffer[4] = {};
  ASSERT_EQ(read(out[0], buffer, 3), 3);
  EXPECT_STREQ(buffer, "abc");
  for (int fd : {in[0], out[0], out[1]}) close(fd);
}

TEST(StreamCopy, CancelStopsAWaitingCopy) {
  int in[2];
  ASSERT_EQ(pipe2(in, O_NONBLOCK), 0);
  const int null_fd = open("/dev/null", O_WRONLY);
  CancelToken cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel.cancel(SIGTERM);
  });
  auto stats = copy_stream(in[0], null_fd, cancel, CopyProgress{});
  canceller.join();
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().kind, ErrorKind::interrupted);
  for (int fd : {in[0], in[1], null_fd}) close(fd);
}

}  // namespace
}  // namespace agent
