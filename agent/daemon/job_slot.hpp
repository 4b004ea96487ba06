#pragma once
// Where one of the daemon's jobs runs: one threading model for backups, dumps (and later
// drills). A job runs on a thread of its own with a cancel token; its result comes back to
// the event loop as a posted handler. The slot is the job thread's exception boundary: a job
// that throws ends with the result `on_exception` makes of it, and the daemon goes on.
//
// Loop thread: start, busy, cancel. Any thread: finished, mark_progress, last_progress.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/cancel.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

namespace agent {

class JobSlot {
 public:
  JobSlot(boost::asio::io_context& io, std::string kind);
  ~JobSlot();  // cancels a running job and waits for its thread
  JobSlot(const JobSlot&) = delete;
  JobSlot& operator=(const JobSlot&) = delete;

  // Runs `work` on a new thread, then `on_done` with its result on the loop thread (the slot
  // is free again by then). An error, with nothing started, when the slot is busy or a token
  // or thread cannot be had (out of descriptors or threads).
  template <class Outcome>
  Status start(std::function<Outcome(const CancelToken&)> work,
               std::function<Outcome(const std::string& what)> on_exception,
               std::function<void(Outcome)> on_done) {
    return launch([work = std::move(work), on_exception = std::move(on_exception),
                   on_done = std::move(on_done)](const CancelToken& cancel) mutable {
      std::optional<Outcome> outcome;
      try {
        outcome.emplace(work(cancel));
      } catch (const std::exception& e) {
        outcome.emplace(on_exception(e.what()));
      } catch (...) {
        outcome.emplace(on_exception("of unknown type"));
      }
      return std::function<void()>([on_done = std::move(on_done), outcome = std::move(outcome)]() mutable {
        on_done(std::move(*outcome));
      });
    });
  }

  // A job is running, or its result has not reached the loop yet.
  bool busy() const { return busy_; }
  // The running job's work is over (its result is on its way): a hard stop must not cut it.
  bool finished() const { return finished_.load(); }
  // Asks the running job to stop (its token fires with `signal_number`).
  void cancel(int signal_number = 0);
  // Called at each sign of life of the running job, from any thread.
  void mark_progress();
  std::chrono::steady_clock::time_point last_progress() const;

 private:
  using Body = std::function<std::function<void()>(const CancelToken&)>;
  Status launch(Body body);
  void run(Body& body);

  boost::asio::io_context& io_;
  std::string kind_;
  bool busy_ = false;  // loop thread
  std::atomic<bool> finished_{true};
  std::atomic<std::int64_t> progress_ns_{0};
  mutable std::mutex mutex_;             // guards cancel_ (the loop cancels, the thread resets)
  std::unique_ptr<CancelToken> cancel_;  // the running job's
  std::thread thread_;
};

}  // namespace agent
