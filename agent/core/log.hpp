#pragma once
// Logging: readable text for people, or one JSON object per line in the Elastic Common Schema
// (log.format: json) for Elasticsearch and Kibana. Every logger is named after its component
// ("dump", "pgbackrest", "postgres", ...): the text line's [tag] and the JSON line's log.logger,
// so child output stays attributable. A record is one event: an error and its hint, or a
// child's ERROR line and the indented lines that continue it, are one record, not several.
// The field list and why: agent/core/README.md.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace agent::log {

enum class Format { text, json };

// The ECS version whose field names the JSON lines use.
inline constexpr std::string_view kEcsVersion = "8.11.0";

// The structured part of a record besides its message; empty members are left out.
struct Fields {
  std::optional<std::chrono::nanoseconds> duration;  // event.duration
  std::optional<int> exit_code;                      // process.exit_code: the agent's, on its last record
  std::string error_type;                            // error.type: the Error's kind, e.g. "external-tool"
  std::string error_message;                         // error.message
  std::string hint;                                  // error.hint: what to do
  std::string job_type;                              // job.type ("backup", "dump"), when not the thread's
  std::string job_id;                                // job.id, likewise
  std::string step;                                  // job.step, likewise
};

// One record as the formatters see it.
struct Record {
  std::chrono::system_clock::time_point time;
  spdlog::level::level_enum level = spdlog::level::info;
  std::string_view logger;
  std::string_view message;
  std::string_view job_type;  // "" when none
  std::string_view job_id;    // "" when none
  std::string_view step;      // "" when none
  const Fields* fields = nullptr;
  int pid = 0;
};

// The JSON line of a record, without the newline. Always valid JSON: control characters are
// escaped and bytes that are not UTF-8 become U+FFFD, whatever a child program printed.
std::string format_json(const Record& record);
// The text of a record: every line of the message, then "HINT: ..." and "exit code N (kind)",
// each line with the time (with its UTC offset), level and [logger] in front; control characters
// other than tab shown as \xNN. No final newline. When given, *level_begin and *level_end
// receive where the first line's level word is (for colour on a terminal).
std::string format_text(const Record& record, std::size_t* level_begin = nullptr,
                        std::size_t* level_end = nullptr);
// "2024-11-04T09:40:00.123456-08:00" (iso) or "2024-11-04 09:40:00.123-08:00": the process's
// local time (TZ) with its offset from UTC.
std::string format_time(std::chrono::system_clock::time_point time, bool iso);
// debug, info, warn, error: the names log.level takes in the config.
std::string_view level_name(spdlog::level::level_enum level);

// The format a command logs in. `agent run` logs as configured. The other commands are typed
// by a person: on a terminal (stderr a tty) they log text whatever the config says, unless
// --log-format was given.
Format choose_format(Format configured, bool format_flag_given, bool interactive, bool stderr_is_terminal);

// Configures the process-wide sink (always stderr: stdout may carry a dump).
void setup(Format format, spdlog::level::level_enum level);
Format current_format();
std::shared_ptr<spdlog::logger> get(const std::string& component);

// A record with fields. Like logger.log: nothing is formatted below the logger's level.
void write(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view message,
           const Fields& fields);
// An Error as one record: "context: message" (or the message alone), its hint as error.hint,
// its kind as error.type. `fields` may add a duration, an exit code, a job.
void error(spdlog::logger& logger, const Error& error, std::string_view context = {},
           spdlog::level::level_enum level = spdlog::level::err, Fields fields = {});
// For a thread that must not wait for the sink's lock (a watchdog whose stuck thread may hold
// it): formats in the configured format and writes straight to stderr.
void write_unlocked(std::string_view component, spdlog::level::level_enum level, std::string_view message,
                    const Fields& fields = {});

// What a record is part of: a job and its step. Records logged on a thread carry the job and
// step of its context; the process runner hands the starting thread's context to the thread
// that reads the child's output, so a child's line names the job, and the step running when
// it was printed.
class JobContext;
std::shared_ptr<JobContext> current_context();

// Makes `context` the thread's context until destroyed (then the previous one again).
class ScopedContext {
 public:
  explicit ScopedContext(std::shared_ptr<JobContext> context);
  ~ScopedContext();
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;

 private:
  std::shared_ptr<JobContext> previous_;
};

// A new context for a job ("backup", "12") on this thread, until destroyed.
class ScopedJob {
 public:
  ScopedJob(std::string type, std::string id);
  ScopedJob(const ScopedJob&) = delete;
  ScopedJob& operator=(const ScopedJob&) = delete;

 private:
  ScopedContext scope_;
};

// Sets the step of the thread's context (making one if there is none) until destroyed.
class ScopedStep {
 public:
  explicit ScopedStep(std::string step);
  ~ScopedStep();
  ScopedStep(const ScopedStep&) = delete;
  ScopedStep& operator=(const ScopedStep&) = delete;

 private:
  std::shared_ptr<JobContext> context_;
  std::optional<ScopedContext> installed_;
  std::string previous_;
};

}  // namespace agent::log
