#pragma once
// A job is a list of steps. Steps run in order until one fails or the job is cancelled;
// then the teardown of every step that started runs, in reverse order, whatever happened.
// Each step is logged as it starts and ends, with its duration (event.duration); a failure
// names its step. While a step runs, every record of the thread, and of the programs it
// starts, carries the step's name (job.step).
#include <chrono>
#include <exception>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/cancel.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

namespace agent {

struct StepTiming {
  std::string step;
  double seconds = 0;
};

template <typename Context>
struct Step {
  std::string name;
  std::function<Status(Context&)> execute;
  std::function<void(Context&)> teardown;  // optional; must not throw
};

// Sees each step start ("started") and end ("done" or "failed"), e.g. to stream progress to a
// client of the control socket.
using StepObserver = std::function<void(const std::string& step, const std::string& state, double seconds)>;

namespace detail {
// A step that throws (a bug, std::bad_alloc, a library's exception) fails like one that
// returned an error, so the teardowns still run; nothing escapes run_steps.
template <typename Context>
Status execute_step(const Step<Context>& step, Context& context) {
  try {
    return step.execute(context);
  } catch (const std::exception& e) {
    return make_error(ErrorKind::internal, std::string("unexpected exception: ") + e.what(),
                      "this is a bug in the agent; please report it with the log");
  } catch (...) {
    return make_error(ErrorKind::internal, "unexpected exception of unknown type",
                      "this is a bug in the agent; please report it with the log");
  }
}
}  // namespace detail

// Context must have `std::vector<StepTiming> timings`. A step that throws is a failed step, a
// teardown that throws is logged and the other teardowns still run.
template <typename Context>
Status run_steps(std::span<const Step<Context>> steps, Context& context, const CancelToken& cancel,
                 spdlog::logger& logger, const StepObserver& observer = {}) {
  using Steady = std::chrono::steady_clock;
  std::size_t started = 0;
  Status outcome;
  for (const auto& step : steps) {
    if (cancel.cancelled()) {
      outcome = make_error(ErrorKind::interrupted, "interrupted before " + step.name,
                           "nothing more was started; the scratch server is stopped");
      break;
    }
    log::ScopedStep in_step(step.name);
    logger.info("{}: started", step.name);
    if (observer) observer(step.name, "started", 0);
    const auto begin = Steady::now();
    ++started;
    Status status = detail::execute_step(step, context);
    const auto took = Steady::now() - begin;
    const double seconds = std::chrono::duration<double>(took).count();
    log::Fields timing;
    timing.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(took);
    context.timings.push_back(StepTiming{step.name, seconds});
    if (!status) {
      Error error = status.error();
      if (cancel.cancelled() && error.kind != ErrorKind::interrupted)
        error = make_error(ErrorKind::interrupted, "interrupted during " + step.name,
                           "the job was stopped by a signal; nothing was left under its final name");
      outcome = error.with_context(step.name);
      log::write(logger, spdlog::level::err, fmt::format("{}: failed after {:.2f} s", step.name, seconds),
                 timing);
      if (observer) observer(step.name, "failed", seconds);
      break;
    }
    log::write(logger, spdlog::level::info, fmt::format("{}: done in {:.2f} s", step.name, seconds), timing);
    if (observer) observer(step.name, "done", seconds);
  }
  for (std::size_t i = started; i-- > 0;) {
    if (!steps[i].teardown) continue;
    log::ScopedStep in_step(steps[i].name);
    const auto begin = Steady::now();
    try {
      steps[i].teardown(context);
    } catch (const std::exception& e) {
      logger.error("{}: teardown failed with an unexpected exception: {}", steps[i].name, e.what());
    } catch (...) {
      logger.error("{}: teardown failed with an unexpected exception", steps[i].name);
    }
    const auto took = Steady::now() - begin;
    log::Fields timing;
    timing.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(took);
    log::write(logger, spdlog::level::debug,
               fmt::format("{}: teardown done in {:.2f} s", steps[i].name,
                           std::chrono::duration<double>(took).count()),
               timing);
  }
  return outcome;
}

}  // namespace agent
