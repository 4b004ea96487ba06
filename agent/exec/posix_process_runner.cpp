// fork + execve with a process group, a parent-death signal, and a reader thread that turns
// the child's output into log records. The reader notices the child's exit through a pidfd,
// so a grandchild that keeps our pipe open (a server forked by the child) cannot hang us.
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/log.hpp"
#include "exec/child_lines.hpp"
#include "exec/process.hpp"
#include "exec/process_group.hpp"

extern char** environ;

namespace agent {

std::string ProcessResult::describe() const {
  if (cancelled) return "was cancelled";
  if (timed_out) return "timed out";
  if (term_signal != 0) return "was killed by signal " + std::to_string(term_signal);
  return "exited with code " + std::to_string(exit_code);
}

std::string ProcessResult::error_excerpt(std::size_t max_lines) const {
  std::vector<std::string> picked;
  for (auto it = last_lines.rbegin(); it != last_lines.rend() && picked.size() < max_lines; ++it) {
    if (it->find("ERROR") != std::string::npos || it->find("FATAL") != std::string::npos ||
        it->find("error:") != std::string::npos || it->find("PANIC") != std::string::npos)
      picked.push_back(*it);
  }
  if (picked.empty()) {
    for (auto it = last_lines.rbegin(); it != last_lines.rend() && picked.size() < max_lines; ++it)
      picked.push_back(*it);
  }
  std::string out;
  for (auto it = picked.rbegin(); it != picked.rend(); ++it) out += (out.empty() ? "" : " | ") + *it;
  return out;
}

std::string display_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !arg.empty() && arg.find_first_of(" \t\n'\"\\$`*?;&|<>()") == std::string::npos;
    if (plain) {
      out += arg;
    } else {
      out += '\'';
      for (char c : arg) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
      out += '\'';
    }
  }
  return out;
}

namespace {

constexpr std::size_t kTailLines = 20;
constexpr std::size_t kMaxLineLength = 8192;
// Lines that continue a record (pgBackRest's indented HINT, PostgreSQL's DETAIL) join it when
// they come within this long of it; pgBackRest writes each line of a message separately.
constexpr std::chrono::milliseconds kContinuationWait{50};
constexpr std::size_t kMaxRecordLines = 64;
constexpr std::size_t kMaxRecordLength = 64 * 1024;
// How long the members of an ended child's group get to stop after SIGKILL (one in
// uninterruptible sleep on a slow disk may need a moment); after that the runner goes on.
constexpr std::chrono::milliseconds kGroupStopLimit{5000};

Result<std::string> resolve_program(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    if (access(program.c_str(), X_OK) == 0) return program;
    return make_error(ErrorKind::environment, "cannot execute '" + program + "': " + std::strerror(errno),
                      "check the path in the configuration");
  }
  const char* path_env = std::getenv("PATH");
  std::string path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto end = std::min(path.find(':', start), path.size());
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + program;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(candidate.c_str(), X_OK) == 0)
      return candidate;
    start = end + 1;
  }
  return make_error(ErrorKind::environment, "cannot find program '" + program + "' in PATH",
                    "install it or configure its full path");
}

class PosixProcess final : public RunningProcess {
 public:
  PosixProcess(const ProcessSpec& spec, pid_t pid, int pidfd, int stdout_read, int stderr_read)
      : spec_(spec), pid_(pid), pidfd_(pidfd), stdout_read_(stdout_read), stderr_read_(stderr_read) {
    logger_ = log::get(spec_.tag.empty() ? "process" : spec_.tag);
    // The child's lines carry the job and step of the thread that started it.
    reader_ = std::thread([this, context = log::current_context()] {
      log::ScopedContext scope(context);
      read_until_exit();
    });
  }

  ~PosixProcess() override {
    // Never leave a child behind, whatever the owner did or forgot.
    if (!finished()) stop(SIGTERM, std::chrono::milliseconds(5000));
    if (reader_.joinable()) reader_.join();
    if (pidfd_ >= 0) close(pidfd_);
    if (stdout_read_ >= 0 && spec_.stdout_mode == StdoutMode::pipe) close(stdout_read_);
  }

  int pid() const override { return pid_; }
  int stdout_fd() const override { return spec_.stdout_mode == StdoutMode::pipe ? stdout_read_ : -1; }

  std::optional<ProcessResult> poll() override {
    std::lock_guard lock(mutex_);
    if (!done_) return std::nullopt;
    return result_;
  }

  std::optional<ProcessResult> wait(const CancelToken& cancel, std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(mutex_);
    while (!done_) {
      if (cancel.cancelled()) return std::nullopt;
      auto step = std::chrono::milliseconds(50);
      if (timeout.count() > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        step = std::min(step, left);
      }
      done_changed_.wait_for(lock, step);
    }
    return result_;
  }

  void signal_group(int signal_number) override {
    if (!finished()) kill(-pid_, signal_number);
  }

  ProcessResult stop(int first_signal, std::chrono::milliseconds grace) override {
    // The first signal goes to the leader only: a server or a tool shuts its own children
    // down in order (a postmaster would misread SIGINT sent to its checkpointer).
    if (!finished()) kill(pid_, first_signal);
    if (auto result = wait(CancelToken::never(), grace)) return *result;
    logger_->warn("pid {} did not stop within {} ms; killing its process group", pid_, grace.count());
    kill(-pid_, SIGKILL);
    return *wait(CancelToken::never(), std::chrono::milliseconds(0));
  }

 private:
  bool finished() {
    std::lock_guard lock(mutex_);
    return done_;
  }

  // The record being gathered from one stream: a line and the lines that continue it.
  struct Pending {
    std::string text;
    spdlog::level::level_enum level = spdlog::level::info;
    std::size_t lines = 0;                                // 0: nothing pending
    std::optional<spdlog::level::level_enum> last_level;  // of the record logged before
  };

  void flush(Pending& pending) {
    if (pending.lines == 0) return;
    logger_->log(pending.level, spdlog::string_view_t(pending.text.data(), pending.text.size()));
    pending.last_level = pending.level;
    pending.lines = 0;
    pending.text.clear();
  }

  void handle_line(std::string_view line, Pending& pending) {
    if (spec_.on_line) spec_.on_line(line);
    {
      std::lock_guard lock(mutex_);
      result_.last_lines.emplace_back(line);
      if (result_.last_lines.size() > kTailLines) result_.last_lines.erase(result_.last_lines.begin());
    }
    const ChildLine kind = classify_child_line(spec_.tag, line);
    if (kind.continues) {
      if (pending.lines > 0 && pending.lines < kMaxRecordLines &&
          pending.text.size() + line.size() < kMaxRecordLength) {
        pending.text.push_back('\n');
        pending.text.append(line);
        ++pending.lines;
        return;
      }
      // Too late or too long to join: its own record, at the level of the one it continues.
      const auto level =
          pending.lines > 0 ? pending.level : pending.last_level.value_or(level_of(line, kind));
      flush(pending);
      pending.text.assign(line);
      pending.level = level;
      pending.lines = 1;
      return;
    }
    flush(pending);
    pending.text.assign(line);
    pending.level = level_of(line, kind);
    pending.lines = 1;
  }

  spdlog::level::level_enum level_of(std::string_view line, const ChildLine& kind) const {
    return spec_.level_for_line ? spec_.level_for_line(line) : kind.level.value_or(spec_.log_level);
  }

  // Splits a stream into lines; returns false at EOF or error.
  bool drain(int fd, std::string& partial, Pending& pending, bool as_text_capture) {
    char buffer[65536];
    for (;;) {
      const ssize_t n = read(fd, buffer, sizeof buffer);
      if (n > 0) {
        if (as_text_capture) {
          std::lock_guard lock(mutex_);
          if (result_.stdout_text.size() + static_cast<std::size_t>(n) <= spec_.capture_limit)
            result_.stdout_text.append(buffer, static_cast<std::size_t>(n));
          continue;
        }
        partial.append(buffer, static_cast<std::size_t>(n));
        std::size_t newline;
        while ((newline = partial.find('\n')) != std::string::npos) {
          handle_line(std::string_view(partial).substr(0, newline), pending);
          partial.erase(0, newline + 1);
        }
        if (partial.size() > kMaxLineLength) {
          handle_line(partial, pending);
          partial.clear();
        }
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return true;
      return false;  // EOF or a real error
    }
  }

  void read_until_exit() {
    const bool read_stdout = spec_.stdout_mode != StdoutMode::pipe && stdout_read_ >= 0;
    const bool capture = spec_.stdout_mode == StdoutMode::capture;
    int out_fd = read_stdout ? stdout_read_ : -1;
    int err_fd = stderr_read_;
    std::string out_partial, err_partial;
    Pending out_pending, err_pending;
    bool exited = false;
    while (!exited || out_fd >= 0 || err_fd >= 0) {
      pollfd fds[3];
      nfds_t count = 0;
      if (!exited) fds[count++] = {pidfd_, POLLIN, 0};
      const nfds_t out_index = count;
      if (out_fd >= 0) fds[count++] = {out_fd, POLLIN, 0};
      const nfds_t err_index = count;
      if (err_fd >= 0) fds[count++] = {err_fd, POLLIN, 0};
      // After the exit, drain what is buffered but do not wait for descendants that
      // inherited the pipes. A gathered record waits a moment for its continuation lines.
      const bool gathering = out_pending.lines > 0 || err_pending.lines > 0;
      const int rc = ::poll(fds, count,
                            exited      ? 0
                            : gathering ? static_cast<int>(kContinuationWait.count())
                                        : -1);
      if (rc < 0 && errno == EINTR) continue;
      if (rc == 0 && exited) break;
      if (rc == 0) {
        flush(out_pending);
        flush(err_pending);
        continue;
      }
      if (!exited && (fds[0].revents & POLLIN)) exited = true;
      if (out_fd >= 0 && fds[out_index].revents != 0 && !drain(out_fd, out_partial, out_pending, capture)) {
        close(out_fd);
        out_fd = -1;
      }
      if (err_fd >= 0 && fds[err_index].revents != 0 && !drain(err_fd, err_partial, err_pending, false)) {
        close(err_fd);
        err_fd = -1;
      }
    }
    if (!out_partial.empty()) handle_line(out_partial, out_pending);
    if (!err_partial.empty()) handle_line(err_partial, err_pending);
    flush(out_pending);
    flush(err_pending);
    if (out_fd >= 0) close(out_fd);
    if (err_fd >= 0) close(err_fd);

    // The leader has exited but is not reaped yet, so its process group id cannot have been
    // reused: end whatever else of the group lingers, wait until it has stopped (the caller
    // may remove what it was writing), then reap.
    kill(-pid_, SIGKILL);
    if (const auto left = wait_for_group_to_stop(pid_, pid_, kGroupStopLimit); !left.empty())
      logger_->warn("{} process(es) of pid {}'s group still run {} ms after SIGKILL (first: pid {})",
                    left.size(), pid_, kGroupStopLimit.count(), left.front());
    siginfo_t info{};
    while (waitid(P_PIDFD, static_cast<id_t>(pidfd_), &info, WEXITED) < 0 && errno == EINTR) {
    }
    std::lock_guard lock(mutex_);
    if (info.si_code == CLD_EXITED)
      result_.exit_code = info.si_status;
    else
      result_.term_signal = info.si_status;
    done_ = true;
    done_changed_.notify_all();
  }

  ProcessSpec spec_;
  pid_t pid_;
  int pidfd_;
  int stdout_read_;
  int stderr_read_;
  std::shared_ptr<spdlog::logger> logger_;
  std::mutex mutex_;
  std::condition_variable done_changed_;
  bool done_ = false;
  ProcessResult result_;
  std::thread reader_;
};

class PosixProcessRunner final : public ProcessRunner {
 public:
  Result<std::unique_ptr<RunningProcess>> start(const ProcessSpec& spec) override {
    if (spec.argv.empty()) return make_error(ErrorKind::internal, "empty argv");
    if (spec.stdout_mode == StdoutMode::file && spec.stdout_file < 0)
      return make_error(ErrorKind::internal, "StdoutMode::file without a descriptor");
    auto program = resolve_program(spec.argv[0]);
    if (!program) return program.error();

    // Everything the child needs is prepared before fork: after it only async-signal-safe
    // calls are made.
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view entry(*e);
      const auto name = entry.substr(0, entry.find('='));
      const bool overridden =
          std::any_of(spec.env.begin(), spec.env.end(), [&](const auto& kv) { return kv.first == name; });
      if (!overridden) env_strings.emplace_back(entry);
    }
    for (const auto& [name, value] : spec.env) env_strings.push_back(name + "=" + value);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_copy = spec.argv;
    std::vector<char*> argv;
    for (auto& a : argv_copy) argv.push_back(a.data());
    argv.push_back(nullptr);

    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0)
      return make_error(ErrorKind::environment, std::string("pipe: ") + std::strerror(errno));
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
      close(out_pipe[0]);
      close(out_pipe[1]);
      return make_error(ErrorKind::environment, std::string("pipe: ") + std::strerror(errno));
    }
    const int dev_null = open(spec.stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (dev_null < 0) {
      const int saved = errno;
      for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
      return make_error(ErrorKind::environment,
                        "cannot open " + spec.stdin_path + ": " + std::strerror(saved));
    }
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
      const int saved = errno;
      for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], dev_null}) close(fd);
      return make_error(ErrorKind::environment, std::string("fork: ") + std::strerror(saved));
    }
    if (pid == 0) {
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, spec.death_signal);
      if (getppid() != parent) _exit(126);  // the agent died before prctl took effect
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      signal(SIGPIPE, SIG_DFL);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      signal(SIGHUP, SIG_DFL);
      // Lowering one's own priority is always allowed; at worst the child runs at the agent's.
      if (spec.nice > 0) setpriority(PRIO_PROCESS, 0, spec.nice);
      dup2(dev_null, STDIN_FILENO);
      dup2(spec.stdout_mode == StdoutMode::file ? spec.stdout_file : out_pipe[1], STDOUT_FILENO);
      dup2(err_pipe[1], STDERR_FILENO);
      close_range(3, ~0U, 0);
      execve(program->c_str(), argv.data(), envp.data());
      static const char message[] = "agent: execve failed\n";
      [[maybe_unused]] auto w = write(STDERR_FILENO, message, sizeof message - 1);
      _exit(127);
    }
    // Also set from the parent so a signal sent right after fork reaches the group.
    setpgid(pid, pid);
    close(out_pipe[1]);
    close(err_pipe[1]);
    close(dev_null);
    // glibc 2.36's <sys/pidfd.h> lacks C linkage for C++, so call the syscall directly.
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      close(out_pipe[0]);
      close(err_pipe[0]);
      return make_error(ErrorKind::environment, std::string("pidfd_open: ") + std::strerror(errno));
    }
    if (spec.stdout_mode == StdoutMode::file) {
      close(out_pipe[0]);  // the child writes to the file; nothing ever arrives here
      out_pipe[0] = -1;
    } else {
      fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
    }
    fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
    log::get(spec.tag.empty() ? "process" : spec.tag)
        ->debug("started pid {}: {}", pid, display_command(spec.argv));
    return std::unique_ptr<RunningProcess>(
        std::make_unique<PosixProcess>(spec, pid, pidfd, out_pipe[0], err_pipe[0]));
  }

  Result<ProcessResult> run(const ProcessSpec& spec, const CancelToken& cancel) override {
    auto started = start(spec);
    if (!started) return started.error();
    auto& process = *started.value();
    if (auto result = process.wait(cancel, spec.timeout)) return *result;
    const bool was_cancelled = cancel.cancelled();
    ProcessResult result = process.stop(SIGTERM, spec.kill_grace);
    result.cancelled = was_cancelled;
    result.timed_out = !was_cancelled;
    return result;
  }
};

}  // namespace

std::unique_ptr<ProcessRunner> make_posix_process_runner() {
  return std::make_unique<PosixProcessRunner>();
}

}  // namespace agent
