#include "daemon/config_reload.hpp"

#include <sys/stat.h>

namespace agent {

std::string restart_only_changes(const AgentConfig& running, const AgentConfig& next) {
  std::string changed;
  const auto note = [&changed](bool differs, const char* key) {
    if (!differs) return;
    if (!changed.empty()) changed += ", ";
    changed += key;
  };
  note(running.stanza != next.stanza, "stanza");
  note(running.state_dir != next.state_dir, "state_dir");
  note(running.control.socket != next.control.socket, "control.socket");
  note(running.http.listen != next.http.listen, "http.listen");
  note(running.log.format != next.log.format, "log.format");
  note(running.log.level != next.log.level, "log.level");
  note(running.metrics.crunchy_compat != next.metrics.crunchy_compat, "metrics.crunchy_compat");
  note(running.run.queue_capacity != next.run.queue_capacity, "run.queue_capacity");
  return changed;
}

ConfigFileWatch::ConfigFileWatch(LoopTimers& timers, std::string path, std::function<void()> changed,
                                 std::chrono::milliseconds interval)
    : timer_(timers.make_timer()),
      path_(std::move(path)),
      changed_(std::move(changed)),
      interval_(interval) {}

void ConfigFileWatch::start() {
  stopped_ = false;
  seen_ = identity();
  arm();
}

void ConfigFileWatch::stop() {
  stopped_ = true;
  timer_->cancel();
}

std::optional<ConfigFileWatch::Identity> ConfigFileWatch::identity() const {
  struct stat st {};
  if (stat(path_.c_str(), &st) != 0) return std::nullopt;  // gone for a moment: nothing to read
  const std::int64_t mtime_ns =
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  return Identity{st.st_dev, st.st_ino, st.st_size, mtime_ns};
}

void ConfigFileWatch::arm() {
  if (stopped_) return;
  timer_->start(interval_, [this] {
    const auto now = identity();
    if (now && now != seen_) {
      seen_ = now;
      changed_();
    }
    arm();
  });
}

}  // namespace agent
