#include "core/cancel.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace agent {

CancelToken::CancelToken() {
  if (pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2 failed");
}

CancelToken::~CancelToken() {
  close(pipe_[0]);
  close(pipe_[1]);
}

void CancelToken::cancel(int signal_number) noexcept {
  if (signal_number != 0) signal_.store(signal_number);
  if (!cancelled_.exchange(true)) {
    const char byte = 1;
    // Nothing useful to do if the pipe is full: the flag is already set.
    [[maybe_unused]] auto written = write(pipe_[1], &byte, 1);
  }
}

bool CancelToken::wait_for(std::chrono::milliseconds duration) const {
  if (cancelled()) return true;
  pollfd pfd{pipe_[0], POLLIN, 0};
  int rc;
  do {
    rc = poll(&pfd, 1, static_cast<int>(duration.count()));
  } while (rc < 0 && errno == EINTR && !cancelled());
  return cancelled();
}

const CancelToken& CancelToken::never() {
  static const CancelToken token;
  return token;
}

namespace {
CancelToken* g_signal_token = nullptr;

extern "C" void on_termination_signal(int signal_number) {
  if (g_signal_token != nullptr) g_signal_token->cancel(signal_number);
}
}  // namespace

void cancel_on_termination_signals(CancelToken& token) {
  g_signal_token = &token;
  struct sigaction action {};
  action.sa_handler = on_termination_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR and look at the token
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGHUP, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace agent
