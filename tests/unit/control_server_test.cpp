// The control socket against a scripted handler: real Unix socket, real io_context.
#include "daemon/control_server.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <thread>

#include "daemon/control_protocol.hpp"

namespace agent {
namespace {

class ScriptedHandler final : public ControlHandler {
 public:
  nlohmann::json status() override { return {{"queue", nlohmann::json::array()}}; }
  void backup(BackupType type, bool wait, ControlReply reply) override {
    requested.push_back(type);
    reply({{"event", "accepted"}, {"admission", "queued"}, {"job_id", 7}}, !wait);
    if (wait) pending = reply;
  }
  void dump(const DumpArguments& arguments, ControlReply reply) override {
    dumps.push_back(arguments);
    reply({{"event", "finished"}, {"ok", true}}, true);
  }
  std::vector<BackupType> requested;
  std::vector<DumpArguments> dumps;
  std::optional<ControlReply> pending;
};

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/agent-control-XXXXXX";
    dir_ = mkdtemp(pattern);
    path_ = dir_ + "/agent.sock";
    server_ = std::make_unique<ControlServer>(io_, path_, handler_);
    ASSERT_TRUE(server_->start().ok());
    loop_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    io_.stop();
    loop_.join();
    server_->stop();  // removes the socket file
    EXPECT_EQ(rmdir(dir_.c_str()), 0);
  }
  // Sends one raw request line and returns every reply line until the agent closes.
  std::vector<nlohmann::json> exchange(const std::string& raw) {
    auto fd = connect_control_socket(path_);
    EXPECT_TRUE(fd.ok());
    if (!fd) return {};
    EXPECT_EQ(write(*fd, raw.data(), raw.size()), static_cast<ssize_t>(raw.size()));
    std::vector<nlohmann::json> replies;
    std::string buffer;
    for (;;) {
      auto line = read_json_line(*fd, buffer);
      if (!line || !*line) break;
      replies.push_back(**line);
    }
    close(*fd);
    return replies;
  }

  boost::asio::io_context io_;
  ScriptedHandler handler_;
  std::string dir_, path_;
  std::unique_ptr<ControlServer> server_;
  std::thread loop_;
};

TEST_F(ControlServerTest, SocketIsPrivate) {
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ControlServerTest, AnswersStatus) {
  const auto replies = exchange("{\"command\":\"status\"}\n");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0]["ok"].get<bool>());
  EXPECT_TRUE(replies[0]["status"].contains("queue"));
}

TEST_F(ControlServerTest, RefusesMalformedRequests) {
  for (const std::string raw : {"not json\n", "{\"command\": 5}\n", "{\"command\":\"reboot\"}\n",
                                "{\"command\":\"backup\",\"type\":\"--repo1-path=/x\"}\n"}) {
    const auto replies = exchange(raw);
    ASSERT_EQ(replies.size(), 1u) << raw;
    EXPECT_FALSE(replies[0]["ok"].get<bool>()) << raw;
    EXPECT_FALSE(replies[0]["error"].get<std::string>().empty());
  }
  EXPECT_TRUE(handler_.requested.empty());
}

TEST_F(ControlServerTest, BackupWithWaitStreamsTheResult) {
  std::thread finisher([this] {
    while (!handler_.pending) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    boost::asio::post(io_, [this] {
      (*handler_.pending)({{"event", "finished"}, {"result", {{"outcome", "succeeded"}}}}, true);
    });
  });
  const auto replies = exchange("{\"command\":\"backup\",\"type\":\"incr\",\"wait\":true}\n");
  finisher.join();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0]["event"], "accepted");
  EXPECT_EQ(replies[1]["event"], "finished");
  ASSERT_EQ(handler_.requested.size(), 1u);
  EXPECT_EQ(handler_.requested[0], BackupType::incr);
}

TEST_F(ControlServerTest, DumpRequestFieldsAreTyped) {
  auto replies =
      exchange(R"({"command":"dump","target":"2024-11-04 09:40:00-08:00","port":5533,"output":"/x.sql"})"
               "\n");
  ASSERT_EQ(replies.size(), 1u);
  ASSERT_EQ(handler_.dumps.size(), 1u);
  EXPECT_EQ(handler_.dumps[0].target, "2024-11-04 09:40:00-08:00");
  EXPECT_EQ(handler_.dumps[0].port, 5533);
  EXPECT_EQ(handler_.dumps[0].output, "/x.sql");
  replies = exchange(R"({"command":"dump","target":"t","port":"5533"})"
                     "\n");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(replies[0]["ok"].get<bool>());
  EXPECT_EQ(handler_.dumps.size(), 1u);
}

TEST_F(ControlServerTest, SecondServerOnTheSamePathIsRefused) {
  boost::asio::io_context other_io;
  ScriptedHandler other_handler;
  ControlServer other(other_io, path_, other_handler);
  const auto started = other.start();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message.find("another agent is already running"), std::string::npos);
}

}  // namespace
}  // namespace agent
