#include "core/files.hpp"
#include "core/log_throttle.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>

namespace agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class FilesReadRegular : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/files-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(dir_ / name, std::ios::binary) << content;
  }

  // The read on another thread, so that a read that blocks fails the test instead of hanging
  // it; a blocked open of a FIFO is released by opening its write end.
  FileRead read_within_deadline(const std::string& file, std::size_t max_bytes) {
    auto result =
        std::async(std::launch::async, [&] { return read_regular_file_nonblocking(file, max_bytes); });
    if (result.wait_for(5s) == std::future_status::timeout) {
      const int writer = open(file.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (writer >= 0) close(writer);
      ADD_FAILURE() << "reading " << file << " blocked for 5 s";
    }
    return result.get();
  }

  fs::path dir_;
};

TEST_F(FilesReadRegular, ReadsARegularFileWhole) {
  write("a", std::string("key=\"v\"\n\0\xff", 10));
  const auto read = read_regular_file_nonblocking(path("a"), 1024);
  ASSERT_TRUE(read.ok()) << read.problem;
  EXPECT_EQ(read.content, std::string("key=\"v\"\n\0\xff", 10));
  EXPECT_TRUE(read.problem.empty());
}

TEST_F(FilesReadRegular, EmptyFileIsEmptyContent) {
  write("empty", "");
  const auto read = read_regular_file_nonblocking(path("empty"), 1024);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read.content, "");
}

TEST_F(FilesReadRegular, ExactlyTheLimitIsFineOneMoreIsTooLarge) {
  write("limit", std::string(100, 'x'));
  EXPECT_EQ(read_regular_file_nonblocking(path("limit"), 100).content, std::string(100, 'x'));
  const auto read = read_regular_file_nonblocking(path("limit"), 99);
  EXPECT_EQ(read.outcome, FileRead::Outcome::too_large);
  EXPECT_TRUE(read.content.empty());
  EXPECT_NE(read.problem.find(path("limit")), std::string::npos) << read.problem;
}

TEST_F(FilesReadRegular, MissingFileAndDanglingSymlink) {
  auto read = read_regular_file_nonblocking(path("nothing"), 100);
  EXPECT_EQ(read.outcome, FileRead::Outcome::missing);
  EXPECT_EQ(read.error_number, ENOENT);
  fs::create_symlink(path("nothing"), path("link"));
  read = read_regular_file_nonblocking(path("link"), 100);
  EXPECT_EQ(read.outcome, FileRead::Outcome::missing);
}

TEST_F(FilesReadRegular, FollowsSymlinks) {
  write("target", "through the link");
  fs::create_directory_symlink(dir_, path("..data"));
  fs::create_symlink("..data/target", path("visible"));
  const auto read = read_regular_file_nonblocking(path("visible"), 100);
  ASSERT_TRUE(read.ok()) << read.problem;
  EXPECT_EQ(read.content, "through the link");
}

TEST_F(FilesReadRegular, FifoWithoutWriterIsRefusedAtOnce) {
  ASSERT_EQ(mkfifo(path("fifo").c_str(), 0600), 0);
  const auto started = std::chrono::steady_clock::now();
  const auto read = read_within_deadline(path("fifo"), 100);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_EQ(read.outcome, FileRead::Outcome::not_regular);
  EXPECT_EQ(read.problem, path("fifo") + " is a FIFO (named pipe), not a regular file");
}

TEST_F(FilesReadRegular, DirectoryIsRefused) {
  fs::create_directory(path("dir"));
  const auto read = read_regular_file_nonblocking(path("dir"), 100);
  EXPECT_EQ(read.outcome, FileRead::Outcome::not_regular);
  EXPECT_EQ(read.problem, path("dir") + " is a directory, not a regular file");
}

TEST_F(FilesReadRegular, SocketIsRefusedAndNamed) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string socket_path = path("sock");
  ASSERT_LT(socket_path.size(), sizeof address.sun_path);
  std::copy(socket_path.begin(), socket_path.end(), address.sun_path);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  const auto read = read_within_deadline(socket_path, 100);
  close(fd);
  EXPECT_EQ(read.outcome, FileRead::Outcome::not_regular);
  EXPECT_EQ(read.problem, socket_path + " is a socket, not a regular file");
}

TEST_F(FilesReadRegular, CharacterDeviceIsRefused) {
  const auto read = read_within_deadline("/dev/null", 100);
  EXPECT_EQ(read.outcome, FileRead::Outcome::not_regular);
  EXPECT_EQ(read.problem, "/dev/null is a character device, not a regular file");
}

TEST_F(FilesReadRegular, HugeSparseFileCostsNothing) {
  {
    const int fd = open(path("huge").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, 100LL * 1024 * 1024), 0);
    close(fd);
  }
  const auto started = std::chrono::steady_clock::now();
  const auto read = read_regular_file_nonblocking(path("huge"), 256 * 1024);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_EQ(read.outcome, FileRead::Outcome::too_large);
  EXPECT_EQ(read.problem, path("huge") + " is 104857600 bytes, larger than the 262144 bytes allowed");
  EXPECT_EQ(read.content.capacity() < 1024 * 1024, true);
}

TEST_F(FilesReadRegular, FileThatSaysItIsEmptyIsStillReadUpToTheLimit) {
  // Files in /proc report a size of 0 and have content.
  auto read = read_regular_file_nonblocking("/proc/self/status", 1024 * 1024);
  ASSERT_TRUE(read.ok()) << read.problem;
  EXPECT_NE(read.content.find("Name:"), std::string::npos);
  read = read_regular_file_nonblocking("/proc/self/status", 10);
  EXPECT_EQ(read.outcome, FileRead::Outcome::too_large);
  EXPECT_EQ(read.problem, "/proc/self/status is more than 10 bytes, larger than the 10 bytes allowed");
}

TEST_F(FilesReadRegular, UnreadableFileFails) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads every file";
  write("secret", "x");
  ASSERT_EQ(chmod(path("secret").c_str(), 0), 0);
  const auto read = read_regular_file_nonblocking(path("secret"), 100);
  EXPECT_EQ(read.outcome, FileRead::Outcome::failed);
  EXPECT_EQ(read.error_number, EACCES);
  EXPECT_NE(read.problem.find("cannot open " + path("secret")), std::string::npos) << read.problem;
}

TEST(FilesTypeName, EachKind) {
  EXPECT_EQ(file_type_name(S_IFREG | 0644), "a regular file");
  EXPECT_EQ(file_type_name(S_IFDIR | 0755), "a directory");
  EXPECT_EQ(file_type_name(S_IFIFO | 0600), "a FIFO (named pipe)");
  EXPECT_EQ(file_type_name(S_IFSOCK), "a socket");
  EXPECT_EQ(file_type_name(S_IFCHR), "a character device");
  EXPECT_EQ(file_type_name(S_IFBLK), "a block device");
}

TEST(WriteAll, WritesEverythingAtTheOffsetOrThePositionAndReportsErrno) {
  char pattern[] = "/tmp/agent-write-all-XXXXXX";
  const int fd = mkstemp(pattern);
  ASSERT_GE(fd, 0);
  unlink(pattern);
  const std::string big(1 << 20, 'x');
  EXPECT_EQ(write_all(fd, big.data(), big.size()), 0);
  EXPECT_EQ(write_all(fd, "ab", 2, WriteTarget::at(3)), 0);
  EXPECT_EQ(lseek(fd, 0, SEEK_CUR), static_cast<off_t>(big.size())) << "pwrite moved the position";
  char head[6] = {};
  ASSERT_EQ(pread(fd, head, 5, 0), 5);
  EXPECT_STREQ(head, "xxxab");
  close(fd);
  EXPECT_EQ(write_all(fd, "a", 1), EBADF);
}

TEST(WriteAll, AGonePeerIsEpipeNotSigpipe) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  close(pair[1]);
  EXPECT_EQ(write_all(pair[0], "hello", 5, WriteTarget::to_socket()), EPIPE);  // the test lives on
  close(pair[0]);
}

TEST(LogThrottle, OneLinePerIntervalCountedFromTheLastLine) {
  const std::chrono::steady_clock::time_point start{};
  LogThrottle throttle(start, 10s);
  EXPECT_FALSE(throttle.due(start + 9s));
  EXPECT_TRUE(throttle.due(start + 10s));
  EXPECT_FALSE(throttle.due(start + 19s));
  EXPECT_TRUE(throttle.due(start + 25s));
  EXPECT_FALSE(throttle.due(start + 34s));
  EXPECT_TRUE(throttle.due(start + 35s));
}

}  // namespace
}  // namespace agent
