// The log's record shape: ECS names in JSON, one record for an error and its hint, the time
// with its UTC offset in both formats, valid JSON whatever the message holds, and which format
// a command chooses on a terminal.
#include "core/log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <vector>

namespace agent {
namespace {

using namespace std::chrono_literals;

// What the process writes to stderr (where the log goes) while it lives.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    saved_ = dup(STDERR_FILENO);
    file_ = std::tmpfile();
    dup2(fileno(file_), STDERR_FILENO);
  }
  ~StderrCapture() { restore(); }
  std::string text() {
    restore();
    std::string out;
    std::rewind(file_);
    char buffer[4096];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, file_)) > 0) out.append(buffer, n);
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    saved_ = -1;
  }
  int saved_ = -1;
  std::FILE* file_ = nullptr;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Sets TZ for one test and puts the old value back.
class ZoneFor {
 public:
  explicit ZoneFor(const char* zone) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    setenv("TZ", zone, 1);
    tzset();
  }
  ~ZoneFor() {
    if (old_)
      setenv("TZ", old_->c_str(), 1);
    else
      unsetenv("TZ");
    tzset();
  }

 private:
  std::optional<std::string> old_;
};

class Log : public ::testing::Test {
 protected:
  void TearDown() override { log::setup(log::Format::text, spdlog::level::info); }
};

// 2024-11-04T17:40:00.123456Z
const auto kInstant = std::chrono::system_clock::time_point(std::chrono::seconds(1730742000)) + 123456us;

TEST_F(Log, JsonLineHasTheEcsNamesAndTheStructuredFields) {
  ZoneFor zone("UTC");
  log::Fields fields;
  fields.duration = 1500ms;
  fields.exit_code = 6;
  fields.error_type = "external-tool";
  fields.error_message = "pgbackrest restore exited with code 75";
  fields.hint = "choose a later target";
  const log::Record record{
      kInstant, spdlog::level::err, "dump", "restore: failed", "dump", "7", "restore", &fields, 4242};
  const std::string line = log::format_json(record);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto json = nlohmann::ordered_json::parse(line);
  EXPECT_EQ(json["@timestamp"], "2024-11-04T17:40:00.123456+00:00");
  EXPECT_EQ(json["log.level"], "error");
  EXPECT_EQ(json["message"], "restore: failed");
  EXPECT_EQ(json["log.logger"], "dump");
  EXPECT_EQ(json["ecs.version"], "8.11.0");
  EXPECT_EQ(json["process.pid"], 4242);
  EXPECT_EQ(json["event.duration"], 1500000000);  // nanoseconds
  EXPECT_EQ(json["process.exit_code"], 6);
  EXPECT_EQ(json["error.type"], "external-tool");
  EXPECT_EQ(json["error.message"], "pgbackrest restore exited with code 75");
  EXPECT_EQ(json["error.hint"], "choose a later target");
  EXPECT_EQ(json["job.type"], "dump");
  EXPECT_EQ(json["job.id"], "7");
  EXPECT_EQ(json["job.step"], "restore");
  // ECS logging's order: a person reading the raw line sees these first.
  auto key = json.items().begin();
  EXPECT_EQ(key.key(), "@timestamp");
  EXPECT_EQ((++key).key(), "log.level");
  EXPECT_EQ((++key).key(), "message");
  // None of the old names.
  for (const char* old : {"ts", "level", "msg", "component"}) EXPECT_FALSE(json.contains(old)) << old;
}

TEST_F(Log, FieldsThatAreNotSetAreLeftOut) {
  const log::Record record{
      kInstant, spdlog::level::warn, "queue", "request journal: full", "", "", "", nullptr, 1};
  const auto json = nlohmann::json::parse(log::format_json(record));
  EXPECT_EQ(json["log.level"], "warn");
  for (const char* absent :
       {"job.id", "job.step", "job.type", "event.duration", "error.hint", "process.exit_code"})
    EXPECT_FALSE(json.contains(absent)) << absent;
}

TEST_F(Log, TimeCarriesTheOffsetOfTheLocalZone) {
  {
    ZoneFor zone("America/Vancouver");
    EXPECT_EQ(log::format_time(kInstant, true), "2024-11-04T09:40:00.123456-08:00");
    EXPECT_EQ(log::format_time(kInstant, false), "2024-11-04 09:40:00.123-08:00");
  }
  {
    ZoneFor zone("Asia/Kolkata");
    EXPECT_EQ(log::format_time(kInstant, true), "2024-11-04T23:10:00.123456+05:30");
  }
  {
    ZoneFor zone("UTC");
    EXPECT_EQ(log::format_time(kInstant, false), "2024-11-04 17:40:00.123+00:00");
  }
}

TEST_F(Log, JsonStaysValidWhateverTheMessageHolds) {
  // Control characters, a terminal escape, quotes, backslashes, a NUL, and bytes that are not
  // UTF-8 (a lone continuation byte, a truncated sequence, an overlong encoding, a surrogate).
  const std::string head = std::string("a\x01\x1b[31mred\r\n\t\"q\"\\") + std::string(1, '\0');
  const std::string nasty = head + "\x80 \xc3 \xc0\xaf \xed\xa0\x80 \xff" + "caf\xc3\xa9";
  log::Fields fields;
  fields.hint = "hint\xfe with \x7f";
  const log::Record record{kInstant,
                           spdlog::level::info,
                           "pg\xff"
                           "dump",
                           nasty,
                           "",
                           "",
                           "",
                           &fields,
                           1};
  const std::string line = log::format_json(record);
  EXPECT_EQ(line.find('\n'), std::string::npos) << "one record, one line";
  for (const char c : line) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << "raw control character";
  const auto json = nlohmann::json::parse(line);  // throws on invalid JSON or UTF-8
  const std::string message = json["message"];
  EXPECT_EQ(message.substr(0, head.size()), head);
  EXPECT_NE(message.find("\xef\xbf\xbd"), std::string::npos) << "invalid bytes become U+FFFD";
  EXPECT_NE(message.find("caf\xc3\xa9"), std::string::npos) << "valid UTF-8 stays";
  EXPECT_EQ(json["log.logger"],
            "pg\xef\xbf\xbd"
            "dump");
}

TEST_F(Log, TextShowsEveryLineWithTheTimeAndTheHintAndExitCodeOnTheirOwnLines) {
  ZoneFor zone("UTC");
  log::Fields fields;
  fields.hint = "start it with `agent run`";
  fields.exit_code = 5;
  fields.error_type = "environment";
  const log::Record record{
      kInstant, spdlog::level::err, "agent", "no agent is running\nsecond \x1b[2Jline", "", "", "", &fields,
      1};
  std::size_t begin = 0, end = 0;
  const std::string text = log::format_text(record, &begin, &end);
  const std::string prefix = "2024-11-04 17:40:00.123+00:00 error [agent] ";
  EXPECT_EQ(text, prefix + "no agent is running\n" + prefix + "second \\x1b[2Jline\n" + prefix +
                      "HINT: start it with `agent run`\n" + prefix + "exit code 5 (environment)");
  EXPECT_EQ(text.substr(begin, end - begin), "error");
  const log::Record info{kInstant, spdlog::level::info, "dump", "check: started", "", "", "", nullptr, 1};
  EXPECT_EQ(log::format_text(info), "2024-11-04 17:40:00.123+00:00 info  [dump] check: started");
}

TEST_F(Log, AnErrorAndItsHintAreOneRecord) {
  log::setup(log::Format::json, spdlog::level::info);
  StderrCapture capture;
  log::Fields exit;
  exit.exit_code = 5;
  log::error(*log::get("agent"),
             make_error(ErrorKind::environment, "no agent is running on /x/control.sock",
                        "start it with `agent run`"),
             {}, spdlog::level::err, exit);
  const auto lines = lines_of(capture.text());
  ASSERT_EQ(lines.size(), 1u);
  const auto json = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(json["message"], "no agent is running on /x/control.sock");
  EXPECT_EQ(json["error.message"], "no agent is running on /x/control.sock");
  EXPECT_EQ(json["error.hint"], "start it with `agent run`");
  EXPECT_EQ(json["error.type"], "environment");
  EXPECT_EQ(json["process.exit_code"], 5);
  EXPECT_EQ(json["log.level"], "error");
  EXPECT_EQ(json["process.pid"], static_cast<int>(getpid()));
}

TEST_F(Log, ContextAddsJobAndStepUntilItEnds) {
  log::setup(log::Format::json, spdlog::level::info);
  StderrCapture capture;
  auto logger = log::get("backup");
  {
    log::ScopedJob job("backup", "12");
    {
      log::ScopedStep step("backup");
      logger->info("inside the step");
    }
    logger->info("after the step");
  }
  logger->info("after the job");
  {
    log::ScopedStep step("check");  // a step without a job (agent dump in the caller's process)
    logger->info("a step alone");
  }
  const auto lines = lines_of(capture.text());
  ASSERT_EQ(lines.size(), 4u);
  const auto inside = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(inside["job.type"], "backup");
  EXPECT_EQ(inside["job.id"], "12");
  EXPECT_EQ(inside["job.step"], "backup");
  const auto after_step = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(after_step["job.id"], "12");
  EXPECT_FALSE(after_step.contains("job.step"));
  EXPECT_FALSE(nlohmann::json::parse(lines[2]).contains("job.id"));
  const auto alone = nlohmann::json::parse(lines[3]);
  EXPECT_EQ(alone["job.step"], "check");
  EXPECT_FALSE(alone.contains("job.id"));
}

TEST_F(Log, LevelsAreTheConfigsNames) {
  EXPECT_EQ(log::level_name(spdlog::level::debug), "debug");
  EXPECT_EQ(log::level_name(spdlog::level::info), "info");
  EXPECT_EQ(log::level_name(spdlog::level::warn), "warn");
  EXPECT_EQ(log::level_name(spdlog::level::err), "error");
  EXPECT_EQ(log::level_name(spdlog::level::critical), "critical");
}

TEST_F(Log, UnlockedWriteIsTheSameRecord) {
  log::setup(log::Format::json, spdlog::level::info);
  StderrCapture capture;
  log::Fields exit;
  exit.exit_code = 7;
  log::write_unlocked("agent", spdlog::level::err, "shutdown did not finish within 60 s; exiting now", exit);
  const auto lines = lines_of(capture.text());
  ASSERT_EQ(lines.size(), 1u);
  const auto json = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(json["log.logger"], "agent");
  EXPECT_EQ(json["process.exit_code"], 7);
}

TEST(LogFormat, InteractiveCommandsLogTextOnATerminalUnlessTheFlagSaysOtherwise) {
  using log::Format;
  // agent run: always as configured.
  EXPECT_EQ(log::choose_format(Format::json, false, false, true), Format::json);
  // agent dump, backup, status on a terminal: text, though the config says json.
  EXPECT_EQ(log::choose_format(Format::json, false, true, true), Format::text);
  // ... unless --log-format json was given.
  EXPECT_EQ(log::choose_format(Format::json, true, true, true), Format::json);
  // Through a pipe (oc exec without -t, a script): as configured.
  EXPECT_EQ(log::choose_format(Format::json, false, true, false), Format::json);
  EXPECT_EQ(log::choose_format(Format::text, false, true, false), Format::text);
}

}  // namespace
}  // namespace agent
