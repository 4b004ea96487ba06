#include "daemon/schedule_timer.hpp"

#include "core/log.hpp"
#include "time/target_time.hpp"

namespace agent {

namespace {
// Wall-clock jumps (NTP, a suspended VM) must not make a schedule late by hours: the timer
// sleeps at most this long before it looks at the wall clock again.
constexpr auto kMaxSleep = std::chrono::seconds(30);
}  // namespace

ScheduleTimer::ScheduleTimer(LoopTimers& timers, Clock& clock, BackupType type, CronExpression cron,
                             const date::time_zone& zone, std::function<void(BackupRequest)> enqueue,
                             int repo)
    : timer_(timers.make_timer()),
      clock_(clock),
      type_(type),
      repo_(repo),
      cron_(std::move(cron)),
      zone_(zone),
      enqueue_(std::move(enqueue)) {}

ScheduleTimer::ScheduleTimer(LoopTimers& timers, Clock& clock, CronExpression cron,
                             const date::time_zone& zone, std::function<void(DrillRequest)> enqueue_drill)
    : timer_(timers.make_timer()),
      clock_(clock),
      type_(BackupType::full),
      repo_(0),
      cron_(std::move(cron)),
      zone_(zone),
      enqueue_drill_(std::move(enqueue_drill)) {}

void ScheduleTimer::start() {
  next_ = next_fire(cron_, zone_, std::chrono::floor<std::chrono::seconds>(clock_.now()));
  if (next_ && drill())
    log::get("schedule")
        ->info("restore drills at '{}' ({}); next at {}", cron_.text, zone_.name(),
               format_iso_utc(SysMicros{*next_}));
  else if (next_)
    log::get("schedule")
        ->info("{} backups into {} at '{}' ({}); next at {}", backup_type_name(type_), repo_name(repo_),
               cron_.text, zone_.name(), format_iso_utc(SysMicros{*next_}));
  arm();
}

void ScheduleTimer::stop() {
  stopped_ = true;
  timer_->cancel();
}

void ScheduleTimer::arm() {
  if (stopped_ || !next_) return;
  const auto now = clock_.now();
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*next_ - now);
  if (wait < std::chrono::milliseconds(0)) wait = std::chrono::milliseconds(0);
  timer_->start(std::min<std::chrono::milliseconds>(wait, kMaxSleep), [this] { on_timer(); });
}

void ScheduleTimer::on_timer() {
  if (stopped_ || !next_) return;
  if (clock_.now() >= *next_) {
    const auto due = *next_;
    if (drill())
      enqueue_drill_(DrillRequest{Trigger::schedule, "schedule drill '" + cron_.text + "'", clock_.now()});
    else
      enqueue_(BackupRequest{type_, Trigger::schedule,
                             std::string("schedule ") + backup_type_name(type_) + " '" + cron_.text + "'" +
                                 (repo_ > 0 ? " into repo" + std::to_string(repo_) : ""),
                             clock_.now(), repo_});
    // From the time that fired, not from now: a slow enqueue never skips the next one.
    next_ = next_fire(cron_, zone_, due);
  }
  arm();
}

}  // namespace agent
