#pragma once
// Reading the config file again while `agent run` runs (SIGHUP, or the file changed on disk as
// the kubelet swaps a ConfigMap's `..data` link), so that a change needs no restart of the pod
// and so none of PostgreSQL.
//
// What can change live: schedules, the annotation trigger, thresholds and timeouts, what the
// next backup or dump uses. What cannot (the agent's identity and sockets): those settings
// make the reload refused as a whole, with their names; the running config stays.
#include <sys/types.h>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include "config/config.hpp"
#include "core/error.hpp"
#include "daemon/loop_timers.hpp"

namespace agent {

// The settings that differ between `running` and `next` and take effect only at a restart
// ("stanza, http.listen"); empty when `next` can replace `running` live.
std::string restart_only_changes(const AgentConfig& running, const AgentConfig& next);

// Looks at the config file every `interval` and calls `changed` when it is another file than
// before (device, inode, size or modification time of what the path resolves to). Loop thread.
class ConfigFileWatch {
 public:
  static constexpr std::chrono::seconds kInterval{10};

  ConfigFileWatch(LoopTimers& timers, std::string path, std::function<void()> changed,
                  std::chrono::milliseconds interval = kInterval);
  void start();
  void stop();

 private:
  using Identity = std::tuple<dev_t, ino_t, off_t, std::int64_t>;
  std::optional<Identity> identity() const;
  void arm();

  std::unique_ptr<LoopTimer> timer_;
  std::string path_;
  std::function<void()> changed_;
  std::chrono::milliseconds interval_;
  std::optional<Identity> seen_;
  bool stopped_ = false;
};

}  // namespace agent
