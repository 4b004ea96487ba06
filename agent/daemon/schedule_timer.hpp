#pragma once
// One cron schedule on the event loop. It only enqueues: when its time comes it hands a
// BackupRequest to the callback and arms itself for the next time.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "core/clock.hpp"
#include "daemon/loop_timers.hpp"
#include "jobs/backup_request.hpp"
#include "jobs/cron.hpp"

namespace agent {

class ScheduleTimer {
 public:
  // `repo`: the repository its backups go to (0: the default one).
  ScheduleTimer(LoopTimers& timers, Clock& clock, BackupType type, CronExpression cron,
                const date::time_zone& zone, std::function<void(BackupRequest)> enqueue, int repo = 0);
  // schedules.drill: hands a DrillRequest to `enqueue_drill` instead.
  ScheduleTimer(LoopTimers& timers, Clock& clock, CronExpression cron, const date::time_zone& zone,
                std::function<void(DrillRequest)> enqueue_drill);
  void start();
  void stop();
  BackupType type() const { return type_; }  // of a backup schedule
  bool drill() const { return static_cast<bool>(enqueue_drill_); }
  int repo() const { return repo_; }
  const CronExpression& cron() const { return cron_; }
  std::optional<std::chrono::sys_seconds> next() const { return next_; }

 private:
  void arm();
  void on_timer();

  std::unique_ptr<LoopTimer> timer_;
  Clock& clock_;
  BackupType type_;
  int repo_;
  CronExpression cron_;
  const date::time_zone& zone_;
  std::function<void(BackupRequest)> enqueue_;
  std::function<void(DrillRequest)> enqueue_drill_;
  std::optional<std::chrono::sys_seconds> next_;
  bool stopped_ = false;
};

}  // namespace agent
