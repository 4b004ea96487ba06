#include "daemon/job_slot.hpp"

namespace agent {

namespace {
std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

JobSlot::JobSlot(boost::asio::io_context& io, std::string kind) : io_(io), kind_(std::move(kind)) {}

JobSlot::~JobSlot() {
  cancel(SIGTERM);
  if (thread_.joinable()) thread_.join();
}

Status JobSlot::launch(Body body) {
  if (busy_) return make_error(ErrorKind::environment, "a " + kind_ + " job is already running");
  // The previous job's thread has posted its result and is ending (or has ended).
  if (thread_.joinable()) thread_.join();
  try {
    {
      std::lock_guard lock(mutex_);
      cancel_ = std::make_unique<CancelToken>();
    }
    finished_ = false;
    mark_progress();
    thread_ = std::thread([this, body = std::move(body)]() mutable { run(body); });
  } catch (const std::exception& e) {
    finished_ = true;
    std::lock_guard lock(mutex_);
    cancel_.reset();
    return make_error(ErrorKind::environment, "cannot start the " + kind_ + " job: " + e.what(),
                      "the agent is out of file descriptors or threads; try again later");
  }
  busy_ = true;
  return {};
}

void JobSlot::run(Body& body) {
  std::function<void()> deliver;
  {
    // The token lives until the thread is done with it; cancel() may race with the reset.
    std::unique_lock lock(mutex_);
    const CancelToken& token = *cancel_;
    lock.unlock();
    deliver = body(token);
    lock.lock();
    cancel_.reset();
  }
  finished_ = true;
  try {
    boost::asio::post(io_, [this, deliver = std::move(deliver)] {
      busy_ = false;
      deliver();
    });
  } catch (const std::exception& e) {
    log::get("agent")->error("the {} job's result is lost: {}", kind_, e.what());
  }
}

void JobSlot::cancel(int signal_number) {
  std::lock_guard lock(mutex_);
  if (cancel_) cancel_->cancel(signal_number);
}

void JobSlot::mark_progress() {
  progress_ns_ = steady_ns();
}

std::chrono::steady_clock::time_point JobSlot::last_progress() const {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(progress_ns_.load()));
}

}  // namespace agent
