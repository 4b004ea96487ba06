// A person at a terminal reads text, a pipe gets what the config asks for: the real binary's
// `agent status` (no agent running, so it fails with a hint and exit code 5) with its stderr
// on a pseudo-terminal and on a pipe, under a config that says log.format: json.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "fakes/temp_directory.hpp"

namespace agent {
namespace {

struct AgentRun {
  int exit_code = -1;
  std::string stderr_text;
};

// Runs the agent with `args`; its stderr is a new pseudo-terminal when `on_terminal`, else a pipe.
AgentRun run_agent(const std::vector<std::string>& args, bool on_terminal) {
  int read_end = -1, write_end = -1;
  if (on_terminal) {
    if (openpty(&read_end, &write_end, nullptr, nullptr, nullptr) != 0) return {};
  } else {
    int fds[2];
    if (pipe(fds) != 0) return {};
    read_end = fds[0];
    write_end = fds[1];
  }
  std::vector<std::string> argv_text{AGENT_BINARY};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int null = open("/dev/null", O_RDWR);
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(write_end, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(write_end);
  AgentRun run;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(read_end, buffer, sizeof buffer);
    if (n > 0) {
      run.stderr_text.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // EOF on the pipe; EIO on the terminal once the child has closed it
  }
  close(read_end);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  // The terminal turns "\n" into "\r\n", and the level may be in colour (when TERM says so).
  std::erase(run.stderr_text, '\r');
  run.stderr_text = std::regex_replace(run.stderr_text, std::regex("\x1b\\[[0-9;]*m"), "");
  return run;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class InteractiveLogFormat : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = dir_.path + "/agent.yaml";
    std::ofstream(config_) << "state_dir: " << dir_.path << "/state\nlog:\n  format: json\n";
  }
  testing::TempDirectory dir_{"agent-log-format"};
  std::string config_;
};

TEST_F(InteractiveLogFormat, StatusOnATerminalIsText) {
  const AgentRun run = run_agent({"status", "--config", config_}, true);
  EXPECT_EQ(run.exit_code, 5) << run.stderr_text;
  const auto lines = lines_of(run.stderr_text);
  ASSERT_EQ(lines.size(), 3u) << run.stderr_text;
  for (const auto& line : lines) {
    EXPECT_NE(line.front(), '{') << line;
    EXPECT_NE(line.find(" error [agent] "), std::string::npos) << line;
  }
  EXPECT_NE(lines[0].find("no agent is running on " + dir_.path + "/state/control.sock"), std::string::npos);
  EXPECT_NE(lines[1].find("] HINT: start it with `agent run`"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("] exit code 5 (environment)"), std::string::npos) << lines[2];
}

TEST_F(InteractiveLogFormat, StatusThroughAPipeIsJsonAsConfigured) {
  const AgentRun run = run_agent({"status", "--config", config_}, false);
  EXPECT_EQ(run.exit_code, 5) << run.stderr_text;
  const auto lines = lines_of(run.stderr_text);
  ASSERT_EQ(lines.size(), 1u) << "the error, its hint and the exit code are one record:\n" << run.stderr_text;
  const auto json = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(json["log.level"], "error");
  EXPECT_EQ(json["log.logger"], "agent");
  EXPECT_NE(json["message"].get<std::string>().find("no agent is running"), std::string::npos);
  EXPECT_NE(json["error.hint"].get<std::string>().find("start it with `agent run`"), std::string::npos);
  EXPECT_EQ(json["process.exit_code"], 5);
  EXPECT_EQ(json["error.type"], "environment");
  EXPECT_TRUE(json.contains("@timestamp"));
  EXPECT_TRUE(json.contains("ecs.version"));
}

TEST_F(InteractiveLogFormat, TheFlagOverridesTheTerminal) {
  const AgentRun json_on_terminal = run_agent({"status", "--config", config_, "--log-format", "json"}, true);
  EXPECT_EQ(json_on_terminal.exit_code, 5);
  const auto lines = lines_of(json_on_terminal.stderr_text);
  ASSERT_EQ(lines.size(), 1u) << json_on_terminal.stderr_text;
  EXPECT_TRUE(nlohmann::json::parse(lines[0]).contains("error.hint"));

  const AgentRun text_on_pipe = run_agent({"status", "--config", config_, "--log-format", "text"}, false);
  EXPECT_EQ(text_on_pipe.exit_code, 5);
  EXPECT_EQ(lines_of(text_on_pipe.stderr_text).size(), 3u) << text_on_pipe.stderr_text;
}

}  // namespace
}  // namespace agent
