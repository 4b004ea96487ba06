// The control socket against a scripted handler: real Unix socket, real io_context.
#include "daemon/control_server.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcntl.h>
#include <boost/asio/io_context.hpp>

#include <stdexcept>
#include <thread>

#include "daemon/control_protocol.hpp"

namespace agent {
namespace {

class ScriptedHandler final : public ControlHandler {
 public:
  nlohmann::json status() override { return {{"queue", nlohmann::json::array()}}; }
  void backup(const BackupCommand& command, ControlReply reply) override {
    if (throw_on_backup) throw std::runtime_error("scripted failure");
    requested.push_back(command.type);
    reply(BackupAcceptedReply{"queued", 7, ""}, !command.wait);
    if (command.wait) pending = reply;
  }
  void dump(const DumpCommand& command, ControlReply reply) override {
    dumps.push_back(command.arguments);
    reply(DumpFinishedReply{DumpWritten{"/out.sql", "/out.sql.manifest.json", 1, "", "set", 1, 0}}, true);
  }
  void dump_stop(ControlReply reply) override {
    ++dump_stops;
    reply(RefusedReply{ReplyError{"no copy is kept running", "", 5}}, true);
  }
  void drill(const DrillCommand& command, ControlReply reply) override {
    drills.push_back(command.arguments);
    reply(DrillAcceptedReply{8, ""}, false);
    reply(DrillFinishedReply{ReplyError{"the drill could not run", "", 6}}, true);
  }
  std::vector<DrillArguments> drills;
  int dump_stops = 0;
  bool throw_on_backup = false;
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
    auto connected = connect_control_socket(path_);
    EXPECT_TRUE(connected.ok() && *connected);
    if (!connected || !*connected) return {};
    const int fd = **connected;
    EXPECT_EQ(write(fd, raw.data(), raw.size()), static_cast<ssize_t>(raw.size()));
    std::vector<nlohmann::json> replies;
    std::string buffer;
    for (;;) {
      auto line = read_json_line(fd, buffer, std::chrono::seconds(5));
      EXPECT_TRUE(line.ok()) << (line ? "" : line.error().message);
      if (!line || !*line) break;
      replies.push_back(**line);
    }
    close(fd);
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
      BackupReport report;
      report.outcome = "succeeded";
      (*handler_.pending)(BackupFinishedReply{report}, true);
    });
  });
  const auto replies = exchange("{\"command\":\"backup\",\"type\":\"incr\",\"wait\":true}\n");
  finisher.join();
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0]["event"], "backup-accepted");
  EXPECT_EQ(replies[1]["event"], "backup-finished");
  EXPECT_EQ(replies[1]["result"]["outcome"], "succeeded");
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

TEST_F(ControlServerTest, DrillRequestsReachTheHandlerWithTheirReplies) {
  const auto replies =
      exchange(R"({"command":"drill","target":"2024-11-04 09:40:00-08:00","databases":["api"]})"
               "\n");
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0]["event"], "drill-accepted");
  EXPECT_EQ(replies[1]["event"], "drill-finished");
  EXPECT_EQ(replies[1]["exit_code"], 6);
  ASSERT_EQ(handler_.drills.size(), 1u);
  EXPECT_EQ(handler_.drills[0].target, "2024-11-04 09:40:00-08:00");
  EXPECT_EQ(handler_.drills[0].databases, std::vector<std::string>{"api"});
}

// Every field with every wrong JSON type, and lines that are not requests at all: each is
// refused with a reply naming the problem, the handler never sees them, and the server goes on.
TEST_F(ControlServerTest, WrongTypedFieldsAreRefusedAndTheServerGoesOn) {
  const std::vector<std::string> wrong_values = {"null", "[]",    "[1]", "{}",        "true",
                                                 "1.5",  "\"x\"", "-1",  "4294972296"};
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"backup", "type"},    {"backup", "wait"},   {"dump", "target"}, {"dump", "database"},
      {"dump", "output"},    {"dump", "scratch"},  {"dump", "set"},    {"dump", "port"},
      {"dump", "overwrite"}, {"status", "command"}};
  int refused = 0;
  for (const auto& [command, field] : fields) {
    for (const auto& value : wrong_values) {
      nlohmann::json request = {{"command", command}};
      if (command == "dump" && field != "target") request["target"] = "2024-11-04 09:40:00-08:00";
      request[field] = nlohmann::json::parse(value);
      // A string is right for the string fields and `"x"` is a valid-looking but wrong type;
      // skip the combinations that are well-typed.
      const bool is_string_field = field == "target" || field == "database" || field == "output" ||
                                   field == "scratch" || field == "set";
      if (is_string_field && value == "\"x\"") continue;
      const bool is_flag = field == "wait" || field == "overwrite";
      if (is_flag && value == "true") continue;
      const auto replies = exchange(request.dump() + "\n");
      ASSERT_EQ(replies.size(), 1u) << request.dump();
      EXPECT_FALSE(replies[0].value("ok", true)) << request.dump();
      EXPECT_FALSE(replies[0].value("error", "").empty()) << request.dump();
      ++refused;
    }
  }
  EXPECT_GT(refused, 80);
  for (const std::string& raw :
       std::vector<std::string>{"[]\n", "null\n", "\"status\"\n", "{\"command\":\"status\",\"x\":1}\n",
                                "{\"command\":\"backup\",\"wait\":\"yes\"}\n", "{}\n", "\n",
                                std::string(kControlMaxRequestBytes + 10, 'x') + "\n"}) {
    const auto replies = exchange(raw);
    ASSERT_EQ(replies.size(), 1u) << raw.substr(0, 80);
    EXPECT_FALSE(replies[0].value("ok", true)) << raw.substr(0, 80);
  }
  EXPECT_TRUE(handler_.requested.empty());
  EXPECT_TRUE(handler_.dumps.empty());
  EXPECT_TRUE(exchange("{\"command\":\"status\"}\n").at(0).value("ok", false));
}

TEST_F(ControlServerTest, AHandlerThatThrowsFailsOnlyItsRequest) {
  handler_.throw_on_backup = true;
  auto replies = exchange("{\"command\":\"backup\"}\n");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(replies[0].value("ok", true));
  EXPECT_NE(replies[0].value("error", "").find("scripted failure"), std::string::npos);
  handler_.throw_on_backup = false;
  replies = exchange("{\"command\":\"backup\",\"type\":\"incr\"}\n");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].value("event", ""), "backup-accepted");
}

// A burst of connections that never say anything: the server keeps at most kMaxSessions,
// dropping the oldest idle ones, so a real client still gets its answer.
TEST_F(ControlServerTest, ABurstOfSilentConnectionsDoesNotLockOutClients) {
  std::vector<int> silent;
  for (int i = 0; i < 500; ++i) {
    auto connected = connect_control_socket(path_, std::chrono::seconds(5));
    ASSERT_TRUE(connected.ok()) << connected.error().message;
    ASSERT_TRUE(*connected);
    silent.push_back(**connected);
  }
  const auto replies = exchange("{\"command\":\"status\"}\n");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].value("ok", false));
  std::size_t sessions = 0;
  boost::asio::post(io_, [&] { sessions = server_->sessions(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_LE(sessions, ControlServer::kMaxSessions);
  for (int fd : silent) close(fd);
}

TEST_F(ControlServerTest, StaleSocketIsReplacedAndOtherFilesAreNot) {
  // The running server's socket, once it is gone, is stale: a new server takes its place.
  boost::asio::io_context other_io;
  ScriptedHandler other_handler;
  const std::string stale = dir_ + "/stale.sock";
  {
    boost::asio::local::stream_protocol::acceptor dead(other_io,
                                                       boost::asio::local::stream_protocol::endpoint(stale));
  }  // closed without unlinking: what a killed agent leaves
  struct stat st {};
  ASSERT_EQ(lstat(stale.c_str(), &st), 0);
  {
    ControlServer replacement(other_io, stale, other_handler);
    EXPECT_TRUE(replacement.start().ok());
  }
  EXPECT_NE(lstat(stale.c_str(), &st), 0) << "stop() removes its own socket";
  const std::string plain = dir_ + "/plain-file";
  close(open(plain.c_str(), O_CREAT | O_WRONLY, 0600));
  ControlServer refused(other_io, plain, other_handler);
  const auto started = refused.start();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message.find("is not a socket"), std::string::npos);
  EXPECT_EQ(lstat(plain.c_str(), &st), 0) << "a file that is not a socket was removed";
  unlink(plain.c_str());
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
