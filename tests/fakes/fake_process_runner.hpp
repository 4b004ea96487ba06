#pragma once
// A scripted ProcessRunner: the test lists the exact argv it expects, in order, and what each
// run answers; a run nobody expected fails the test. Some runs may repeat at any time (the
// metrics collector's `pgbackrest info`): those are allowed, not expected. A scripted run can
// hold until the test releases it, or until it is cancelled, to stand for a long job.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "exec/process.hpp"

namespace agent::testing {

class FakeProcessRunner final : public ProcessRunner {
 public:
  enum class Hold {
    none,            // answers at once
    until_released,  // until release() (cancellation ends it early, as a SIGTERM would)
    ignoring_cancel  // until release(), whatever the cancel token says (a wedged child)
  };

  void expect(std::vector<std::string> argv, ProcessResult result, Hold hold = Hold::none) {
    std::lock_guard lock(mutex_);
    expected_.push_back({std::move(argv), std::move(result), hold});
  }
  // Any number of runs of `argv` give `result`; a later allow of the same argv replaces it.
  void allow(std::vector<std::string> argv, ProcessResult result) {
    std::lock_guard lock(mutex_);
    allowed_.insert(allowed_.begin(), {std::move(argv), std::move(result), Hold::none});
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

  Result<ProcessResult> run(const ProcessSpec& spec, const CancelToken& cancel) override {
    std::unique_lock lock(mutex_);
    for (const auto& run : allowed_)
      if (run.argv == spec.argv) {
        ++allowed_runs_[spec.argv];
        return run.result;
      }
    const auto compared = expected_.empty() ? spec.argv : as_expected(spec.argv, expected_.front().argv);
    if (expected_.empty() || expected_.front().argv != compared) {
      ADD_FAILURE() << "unexpected run: " << display_command(spec.argv)
                    << (expected_.empty() ? std::string(" (nothing more was expected)")
                                          : "\n  expected: " + display_command(expected_.front().argv));
      return make_error(ErrorKind::internal, "unexpected run of " + display_command(spec.argv));
    }
    auto run = std::move(expected_.front());
    expected_.pop_front();
    started_.push_back(compared);
    running_ = true;
    changed_.notify_all();
    if (run.hold != Hold::none) {
      released_ = false;
      while (!released_ && !(run.hold == Hold::until_released && cancel.cancelled())) {
        lock.unlock();
        cancel.wait_for(std::chrono::milliseconds(5));
        lock.lock();
      }
      if (!released_) {
        run.result = ProcessResult{};
        run.result.cancelled = true;
        run.result.term_signal = SIGTERM;
      }
    }
    running_ = false;
    changed_.notify_all();
    return run.result;
  }

  Result<std::unique_ptr<RunningProcess>> start(const ProcessSpec& spec) override {
    ADD_FAILURE() << "unexpected start: " << display_command(spec.argv);
    return make_error(ErrorKind::internal, "unexpected start");
  }

  // Waits (up to 10 s) until a scripted run is in progress.
  bool wait_running() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [this] { return running_; });
  }
  std::vector<std::vector<std::string>> started() const {
    std::lock_guard lock(mutex_);
    return started_;
  }
  // How many times an allowed `argv` ran.
  std::size_t runs_of(const std::vector<std::string>& argv) const {
    std::lock_guard lock(mutex_);
    const auto it = allowed_runs_.find(argv);
    return it == allowed_runs_.end() ? 0 : it->second;
  }
  bool all_used() const {
    std::lock_guard lock(mutex_);
    return expected_.empty();
  }

 private:
  // A backup's --annotation=... arguments (its audit trail, tests/unit/backup_annotations_test.cpp)
  // are left out of the comparison, and of started(), when the expected argv names none: the
  // tests about the queue script the command without them. An expected argv with annotations
  // is compared whole.
  static std::vector<std::string> as_expected(const std::vector<std::string>& argv,
                                              const std::vector<std::string>& expected) {
    const auto annotation = [](const std::string& arg) { return arg.rfind("--annotation=", 0) == 0; };
    if (std::any_of(expected.begin(), expected.end(), annotation)) return argv;
    std::vector<std::string> kept;
    std::copy_if(argv.begin(), argv.end(), std::back_inserter(kept),
                 [&](const auto& a) { return !annotation(a); });
    return kept;
  }

  struct Scripted {
    std::vector<std::string> argv;
    ProcessResult result;
    Hold hold;
  };
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Scripted> expected_;
  std::vector<Scripted> allowed_;
  std::map<std::vector<std::string>, std::size_t> allowed_runs_;
  std::vector<std::vector<std::string>> started_;
  bool released_ = false;
  bool running_ = false;
};

inline ProcessResult exited(int code, std::string stdout_text = "", std::vector<std::string> lines = {}) {
  ProcessResult result;
  result.exit_code = code;
  result.stdout_text = std::move(stdout_text);
  result.last_lines = std::move(lines);
  return result;
}

}  // namespace agent::testing
