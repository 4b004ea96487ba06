#pragma once
// Everything that asks for a backup on its own: the cron schedules and the annotation watcher;
// and schedules.drill, which asks for a restore drill
// (and, later, a config reload). Triggers only build a BackupRequest and hand it to `enqueue`;
// they never run anything. Loop thread only.
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "daemon/loop_timers.hpp"
#include "daemon/schedule_timer.hpp"
#include "jobs/annotation_trigger.hpp"
#include "jobs/handled_values.hpp"

namespace agent {

class Triggers {
 public:
  Triggers(boost::asio::io_context& io, std::shared_ptr<const AgentConfig> config, Clock& clock,
           LoopTimers& timers, std::function<void(BackupRequest)> enqueue,
           std::function<void(DrillRequest)> enqueue_drill = nullptr);
  // Builds the schedules and the annotation watcher. `state_problem`: why state_dir cannot be
  // used ("" when it can); the annotation trigger is then disabled and says so.
  // `backup_problem`: why backups cannot run from here ("" when they can); the schedules are
  // then refused, once, with the reason, rather than failing on every tick.
  Status open(const std::string& state_problem, const std::string& backup_problem = "");
  Status start();
  void stop();

  const std::vector<std::unique_ptr<ScheduleTimer>>& schedules() const { return schedules_; }
  const std::string& schedules_refused() const { return schedules_refused_; }
  // schedules.drill; null when it is not set.
  const ScheduleTimer* drill_schedule() const { return drill_schedule_.get(); }
  // Nothing when no annotations file is configured.
  std::optional<AnnotationTriggerStatus> annotation_status() const;
  const HandledValues* handled_values() const { return handled_ ? &*handled_ : nullptr; }
  // "annotation_trigger: disabled: ..." when a trigger is off or in trouble.
  std::vector<std::string> degraded() const;

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<const AgentConfig> config_;
  Clock& clock_;
  LoopTimers& timers_;
  std::function<void(BackupRequest)> enqueue_;
  std::function<void(DrillRequest)> enqueue_drill_;
  std::vector<std::unique_ptr<ScheduleTimer>> schedules_;
  std::unique_ptr<ScheduleTimer> drill_schedule_;
  std::string schedules_refused_;  // why the configured schedules do not run
  std::optional<HandledValues> handled_;
  std::unique_ptr<AnnotationTrigger> annotation_;
};

}  // namespace agent
