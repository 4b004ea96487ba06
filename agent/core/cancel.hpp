#pragma once
// Cancellation that a signal handler can trigger: a flag plus a self-pipe, so blocking
// waits (poll on child pipes, sleeps) wake up at once when SIGINT or SIGTERM arrives.
#include <atomic>
#include <chrono>

namespace agent {

class CancelToken {
 public:
  CancelToken();
  ~CancelToken();
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  // Async-signal-safe.
  void cancel(int signal_number = 0) noexcept;
  bool cancelled() const noexcept { return cancelled_.load(); }
  int signal_number() const noexcept { return signal_.load(); }
  // Readable once cancelled; for poll().
  int fd() const noexcept { return pipe_[0]; }
  // Waits up to `duration`; returns true if cancelled (before or during the wait).
  bool wait_for(std::chrono::milliseconds duration) const;

  // A token that never fires, for teardown work that must not be interrupted.
  static const CancelToken& never();

 private:
  std::atomic<bool> cancelled_{false};
  std::atomic<int> signal_{0};
  int pipe_[2] = {-1, -1};
};

// Routes SIGINT, SIGTERM and SIGHUP to `token` (first signal cancels; the process then
// drains through teardown). SIGPIPE is ignored so a closed stdout becomes an EPIPE error.
void cancel_on_termination_signals(CancelToken& token);

}  // namespace agent
