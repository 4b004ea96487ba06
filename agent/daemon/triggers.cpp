#include "daemon/triggers.hpp"

#include "core/log.hpp"

namespace agent {

Triggers::Triggers(boost::asio::io_context& io, std::shared_ptr<const AgentConfig> config, Clock& clock,
                   LoopTimers& timers, std::function<void(BackupRequest)> enqueue,
                   std::function<void(DrillRequest)> enqueue_drill)
    : io_(io),
      config_(std::move(config)),
      clock_(clock),
      timers_(timers),
      enqueue_(std::move(enqueue)),
      enqueue_drill_(std::move(enqueue_drill)) {}

Status Triggers::open(const std::string& state_problem, const std::string& backup_problem) {
  const date::time_zone* zone = nullptr;
  try {
    zone = date::locate_zone(config_->schedules.timezone);
  } catch (const std::exception&) {
    return make_error(ErrorKind::usage, "unknown time zone '" + config_->schedules.timezone + "'");
  }
  // The default repository's schedules, then each repository's (schedules.repoN), in key order.
  std::vector<std::pair<int, AgentConfig::RepoSchedules>> by_repo{
      {0, {config_->schedules.full, config_->schedules.diff, config_->schedules.incr}}};
  by_repo.insert(by_repo.end(), config_->schedules.repos.begin(), config_->schedules.repos.end());
  for (const auto& [repo, texts] : by_repo) {
    const std::pair<BackupType, const std::string*> schedules[] = {
        {BackupType::full, &texts.full}, {BackupType::diff, &texts.diff}, {BackupType::incr, &texts.incr}};
    for (const auto& [type, text] : schedules) {
      if (text->empty()) continue;
      auto cron = parse_cron(*text);
      if (!cron) return cron.error();
      schedules_.push_back(
          std::make_unique<ScheduleTimer>(timers_, clock_, type, *cron, *zone, enqueue_, repo));
    }
  }
  if (!schedules_.empty() && !backup_problem.empty()) {
    schedules_.clear();
    schedules_refused_ = backup_problem;
    log::get("agent")->error(
        "the backup schedules are refused: {}. HINT: give the agent pgBackRest 2.55 or later (the repository "
        "host's own version; PGO 5.8 and 6.0 ship 2.56.0), or leave the schedules to the operator",
        backup_problem);
  } else if (schedules_.empty()) {
    log::get("agent")->info("no schedules configured; backups run only on request");
  }

  // A drill restores into the scratch directory and takes no pgBackRest lock: a pgBackRest that
  // cannot back up from here still restores, so the drill schedule is not refused with them.
  if (!config_->schedules.drill.empty() && enqueue_drill_) {
    auto cron = parse_cron(config_->schedules.drill);
    if (!cron) return cron.error();
    drill_schedule_ = std::make_unique<ScheduleTimer>(timers_, clock_, *cron, *zone, enqueue_drill_);
  }

  if (!config_->manual.annotations_file.empty()) {
    // Without usable state the trigger could run an old value again: it is disabled (and says
    // so) until the state is usable, and looks again on every read, so a fix needs no restart.
    const std::string path = config_->state_dir + "/handled-annotations.json";
    handled_.emplace(state_problem.empty() ? HandledValues::open(path)
                                           : HandledValues::unusable(
                                                 path, make_error(ErrorKind::environment, state_problem,
                                                                  "create state_dir, writable by the agent's "
                                                                  "user, or set state_dir elsewhere")));
    // manual.repo: the repository of the annotation's backups (0: the default one).
    auto enqueue_into = [enqueue = enqueue_, repo = config_->manual.repo](BackupRequest request) {
      request.repo = repo;
      enqueue(std::move(request));
    };
    annotation_ = std::make_unique<AnnotationTrigger>(
        io_, config_->manual.annotations_file, config_->manual.annotation,
        *parse_backup_type(config_->manual.type), *handled_, enqueue_into);
  }
  return {};
}

Status Triggers::start() {
  for (auto& schedule : schedules_) schedule->start();
  if (drill_schedule_) drill_schedule_->start();
  if (annotation_) return annotation_->start();
  return {};
}

void Triggers::stop() {
  for (auto& schedule : schedules_) schedule->stop();
  if (drill_schedule_) drill_schedule_->stop();
  if (annotation_) annotation_->stop();
}

std::optional<AnnotationTriggerStatus> Triggers::annotation_status() const {
  if (!annotation_) return std::nullopt;
  return annotation_->status();
}

std::vector<std::string> Triggers::degraded() const {
  std::vector<std::string> parts;
  if (!schedules_refused_.empty()) parts.push_back("schedules: refused: " + schedules_refused_);
  if (const auto trigger = annotation_status();
      trigger && (trigger->state == TriggerState::disabled || !trigger->problem.empty()))
    parts.push_back(std::string("annotation_trigger: ") + trigger_state_name(trigger->state) +
                    (trigger->problem.empty() ? "" : ": " + trigger->problem));
  return parts;
}

}  // namespace agent
