// When a signal ends the integration test process, gtest prints nothing: the output just stops
// and ctest only says the suite failed. This reports the signal, who sent it (pid and command
// line from /proc) and, for a crash, the stack, then lets the default action end the process
// as before. Only async-signal-safe calls are made inside the handler.
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cstddef>
#include <initializer_list>

namespace agent::testing {
namespace {

void write_text(const char* text) {
  [[maybe_unused]] auto written = write(STDERR_FILENO, text, strlen(text));
}

// Writes the decimal digits of a non-negative number into `out` (at least 21 bytes).
void format_number(long value, char* out) {
  char reversed[24];
  std::size_t length = 0;
  do {
    reversed[length++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  for (std::size_t i = 0; i < length; ++i) out[i] = reversed[length - 1 - i];
  out[length] = '\0';
}

void write_number(long value) {
  char text[24];
  format_number(value < 0 ? 0 : value, text);
  write_text(text);
}

// The sender's command line, NUL separators shown as spaces.
void write_command_line(pid_t pid) {
  char path[64] = "/proc/";
  format_number(pid, path + strlen(path));
  strcat(path, "/cmdline");
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    write_text("(gone)");
    return;
  }
  char buffer[512];
  const ssize_t n = read(fd, buffer, sizeof buffer - 1);
  close(fd);
  if (n <= 0) return;
  for (ssize_t i = 0; i < n; ++i)
    if (buffer[i] == '\0') buffer[i] = ' ';
  buffer[n] = '\0';
  write_text(buffer);
}

void report_and_reraise(int signal_number, siginfo_t* info, void*) {
  write_text("\n*** integration_tests: ended by signal ");
  write_number(signal_number);
  write_text(" (");
  write_text(sigabbrev_np(signal_number) ? sigabbrev_np(signal_number) : "?");
  write_text(")");
  if (info != nullptr && info->si_code <= 0) {  // sent by a process, not raised by a fault
    write_text(" sent by pid ");
    write_number(info->si_pid);
    write_text(": ");
    write_command_line(info->si_pid);
  }
  write_text("\n");
  if (signal_number == SIGSEGV || signal_number == SIGBUS || signal_number == SIGFPE ||
      signal_number == SIGILL || signal_number == SIGABRT) {
    void* frames[64];
    backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
  }
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

struct FatalSignalReporter {
  FatalSignalReporter() {
    // backtrace() loads libgcc on first use, which is not safe inside a handler: do it now.
    void* warm_up[1];
    backtrace(warm_up, 1);
    struct sigaction action {};
    action.sa_sigaction = report_and_reraise;
    action.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    for (int signal_number : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGINT, SIGTERM, SIGHUP, SIGPIPE,
                              SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM})
      sigaction(signal_number, &action, nullptr);
  }
};

const FatalSignalReporter installed;

}  // namespace
}  // namespace agent::testing
