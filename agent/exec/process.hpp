#pragma once
// The process seam. Programs are started from argv vectors, never through a shell. Each
// child runs in its own process group (so cancelling ends the whole group), gets a death
// signal when the agent dies, reads /dev/null, and has its output streamed into the log
// under the program's tag: a record per line, at the level the program printed
// (exec/child_lines.hpp), with the lines that continue it (an indented HINT) in the same record.
#include <signal.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/common.h>

#include "core/cancel.hpp"
#include "core/error.hpp"

namespace agent {

enum class StdoutMode {
  log,      // stdout lines go to the log like stderr
  capture,  // stdout is kept in ProcessResult::stdout_text (small outputs such as `info` JSON)
  pipe,     // the caller reads RunningProcess::stdout_fd() (large outputs such as a dump)
  file,     // stdout is ProcessSpec::stdout_file itself: the child writes there, no copy
};

struct ProcessSpec {
  std::vector<std::string> argv;                         // argv[0]: a path, or a name looked up in PATH
  std::string tag;                                       // log component, e.g. "pgbackrest"
  std::vector<std::pair<std::string, std::string>> env;  // set on top of the agent's environment
  StdoutMode stdout_mode = StdoutMode::log;
  int stdout_file = -1;                  // StdoutMode::file: an open descriptor the caller keeps
  int nice = 0;                          // added niceness (0..19), inherited by what it starts
  std::string stdin_path = "/dev/null";  // what the child reads
  std::size_t capture_limit = 64 * 1024 * 1024;
  std::chrono::milliseconds timeout{0};        // run(): 0 means no deadline
  std::chrono::milliseconds kill_grace{5000};  // SIGTERM to SIGKILL, on cancel or timeout
  int death_signal = SIGTERM;                  // what the child gets if the agent dies first
  // The level of lines that name none (pgBackRest's ERROR, PostgreSQL's FATAL, pg_dump's
  // "error:" and the like name theirs: exec/child_lines.hpp).
  spdlog::level::level_enum log_level = spdlog::level::info;
  // When set, picks the level of each line that starts a record instead (chatty programs, or
  // lines whose level words mislead). Lines that continue a record keep its level.
  std::function<spdlog::level::level_enum(std::string_view line)> level_for_line;
  // Sees every output line (stderr, and stdout in log mode) before it is logged. Runs on the
  // process's reader thread.
  std::function<void(std::string_view line)> on_line;
};

struct ProcessResult {
  int exit_code = -1;   // when the process exited normally
  int term_signal = 0;  // when a signal ended it
  bool timed_out = false;
  bool cancelled = false;
  std::string stdout_text;              // StdoutMode::capture
  std::vector<std::string> last_lines;  // the tail of its output, for error messages

  bool succeeded() const { return exit_code == 0 && !timed_out && !cancelled; }
  // "exited with code 75", "was killed by signal 9", "timed out", "was cancelled".
  std::string describe() const;
  // The last lines that look like errors (or simply the last lines), one string.
  std::string error_excerpt(std::size_t max_lines = 3) const;
};

// A started child process.
class RunningProcess {
 public:
  virtual ~RunningProcess() = default;
  virtual int pid() const = 0;
  // StdoutMode::pipe: the read end of the child's stdout (non-blocking); -1 otherwise.
  virtual int stdout_fd() const = 0;
  // The result if the process has ended (and its output was read), without waiting.
  virtual std::optional<ProcessResult> poll() = 0;
  // Waits until it ends, `cancel` fires, or `timeout` passes (0: no limit). Returns the
  // result, or nothing if it is still running.
  virtual std::optional<ProcessResult> wait(const CancelToken& cancel, std::chrono::milliseconds timeout) = 0;
  // Sends `signal_number` to the process group.
  virtual void signal_group(int signal_number) = 0;
  // Sends `first_signal` to the process, waits up to `grace`, then SIGKILLs its whole
  // group, and reaps it. Never leaves the child, or anything it started, behind.
  virtual ProcessResult stop(int first_signal, std::chrono::milliseconds grace) = 0;
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // Runs to completion. On timeout or cancellation the group gets SIGTERM, then SIGKILL
  // after spec.kill_grace; the result says which happened.
  virtual Result<ProcessResult> run(const ProcessSpec& spec, const CancelToken& cancel) = 0;
  virtual Result<std::unique_ptr<RunningProcess>> start(const ProcessSpec& spec) = 0;
};

// The real runner (fork + execve).
std::unique_ptr<ProcessRunner> make_posix_process_runner();

// "pg_dump -h /x -p 5533 ..." quoted for display in logs (never executed).
std::string display_command(const std::vector<std::string>& argv);

}  // namespace agent
