#include "daemon/agent_daemon.hpp"

#include <cstdio>
#include <cstdlib>

#include "core/files.hpp"
#include "core/log.hpp"
#include "core/version.hpp"
#include "daemon/control_protocol.hpp"
#include "daemon/status_view.hpp"
#include "http/router.hpp"
#include "jobs/schedule_interval.hpp"
#include "pipelines/pgbackrest_access.hpp"

namespace agent {

namespace {
// The hard stop of a process whose job would not stop: children get their death signal.
void exit_process_now(int exit_code) {
  spdlog::shutdown();
  std::_Exit(exit_code);
}
}  // namespace

AgentDaemon::AgentDaemon(AgentConfig config, DaemonSeams seams)
    : config_(std::make_shared<const AgentConfig>(std::move(config))),
      signals_(io_),
      seams_(std::move(seams)) {
  if (!seams_.runner) seams_.runner = (own_runner_ = make_posix_process_runner()).get();
  if (!seams_.connector) seams_.connector = (own_connector_ = make_pqxx_connector()).get();
  if (!seams_.make_copier) seams_.make_copier = [] { return make_libpq_copy_connector(); };
  if (!seams_.clock) seams_.clock = (own_clock_ = std::make_unique<SystemClock>()).get();
  if (!seams_.timers) seams_.timers = (own_timers_ = make_asio_timers(io_)).get();
  if (!seams_.exit_now) seams_.exit_now = exit_process_now;
  metrics_ = std::make_unique<AgentMetrics>(config_->stanza, config_->metrics.crunchy_compat);
  heartbeat_timer_ = seams_.timers->make_timer();
}

AgentDaemon::~AgentDaemon() {
  jobs_.reset();  // stops and joins the job threads while everything they use is still here
  {
    std::lock_guard lock(watchdog_mutex_);
    watchdog_cancelled_ = true;
  }
  watchdog_wake_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

Status AgentDaemon::start() {
  open_state();
  const auto exit_now = seams_.exit_now;
  jobs_ = std::make_unique<JobRunner>(
      io_, config_,
      JobServices{*seams_.runner, *seams_.connector, seams_.make_copier, *seams_.clock, *seams_.timers,
                  [this, exit_now](int code) {
                    if (control_) control_->stop();
                    exit_now(code);
                  },
                  [this](const BackupResult& result) {
                    if (!history_) return;
                    if (auto s = history_->add(recent_result_json(result)); !s)
                      log::get("agent")->warn("job history: {}", s.error().message);
                  }},
      *metrics_, journal_ ? &*journal_ : nullptr);
  auto triggers = open_triggers(config_);
  if (!triggers) return triggers.error();
  triggers_ = std::move(*triggers);
  if (!state_problem_.empty() && config_->control.socket.empty()) {
    log::get("agent")->error(
        "the control socket is off: its default place is in state_dir ({}); set control.socket "
        "to use it anyway",
        state_problem_);
    metrics_->set_component_ok("control_socket", false);
  } else {
    control_ = std::make_unique<ControlServer>(io_, control_socket_path(*config_), *this);
    if (auto s = control_->start(); !s) return s;
  }
  if (!config_->http.listen.empty()) {
    http_ = std::make_unique<HttpServer>(
        io_, config_->http.listen,
        [this](std::string_view method, std::string_view target) { return answer_http(method, target); });
    if (auto s = http_->start(); !s) return s;
  }
  collector_ = std::make_unique<RepositoryCollector>(*config_, *seams_.runner, *seams_.connector, *metrics_);
  collector_->start();
  beat();
  if (auto s = triggers_->start(); !s) return s;
  if (seams_.handle_signals) {
    signals_.add(SIGTERM);
    signals_.add(SIGINT);
    signals_.add(SIGHUP);
    signals_.async_wait([this](const boost::system::error_code& ec, int signal_number) {
      if (!ec) on_signal(signal_number);
    });
  }
  if (!seams_.config_file.empty() && seams_.reload_config) {
    config_watch_ = std::make_unique<ConfigFileWatch>(*seams_.timers, seams_.config_file,
                                                      [this] { reload("the config file changed"); });
    config_watch_->start();
  }
  started_at_ = seams_.clock->now();
  log::get("agent")->info("agent {} running for stanza '{}'", kAgentVersion, config_->stanza);
  jobs_->rerun_leftovers();
  return {};
}

// state_dir holds what must survive a restart. When it is unusable the agent runs without
// what depends on it (the annotation trigger, durable requests) and says so.
void AgentDaemon::open_state() {
  auto logger = log::get("agent");
  metrics_->set_component_ok("state_dir", true);
  if (auto s = ensure_private_directory(config_->state_dir); !s) {
    state_problem_ = s.error().message;
    log::Fields hint;
    hint.hint = "give state_dir a directory the agent's user can create and write";
    log::write(
        *logger, spdlog::level::err,
        fmt::format("state_dir {} is unusable ({}); running without the annotation trigger and durable "
                    "requests",
                    config_->state_dir, state_problem_),
        hint);
    metrics_->set_component_ok("state_dir", false);
    return;
  }
  // Finished jobs are shown after a restart; without the file only this run's are.
  if (auto history = JobHistory::open(config_->state_dir + "/history.json"); !history) {
    log::error(*logger, history.error(), "the job history is not kept");
  } else {
    if (!history->recovered_from().empty()) logger->error("{}", history->recovered_from());
    history_.emplace(std::move(*history));
  }
  auto journal = RequestJournal::open(config_->state_dir + "/requests.json");
  if (!journal) {
    log::error(*logger, journal.error(), "requests are not durable");
    metrics_->set_component_ok("request_journal", false);
    return;
  }
  if (!journal->recovered_from().empty()) logger->error("{}", journal->recovered_from());
  journal_.emplace(std::move(*journal));
  metrics_->set_component_ok("request_journal", true);
}

int AgentDaemon::run() {
  if (auto s = start(); !s) {
    const int code = exit_code_for(s.error().kind);
    log::Fields exit;
    exit.exit_code = code;
    log::error(*log::get("agent"), s.error(), {}, spdlog::level::err, exit);
    return code;
  }
  // The loop's exception boundary: a handler that throws fails only itself.
  for (;;) {
    try {
      io_.run();
      break;
    } catch (const std::exception& e) {
      log::get("agent")->error("an event handler failed with an unexpected exception: {}; going on",
                               e.what());
    } catch (...) {
      log::get("agent")->error("an event handler failed with an unexpected exception; going on");
    }
  }
  log::get("agent")->info("stopped");
  return kExitSuccess;
}

void AgentDaemon::on_signal(int signal_number) {
  signals_.async_wait([this](const boost::system::error_code& ec, int again) {
    if (!ec) on_signal(again);
  });
  if (signal_number == SIGHUP)
    reload("SIGHUP");
  else
    request_stop(signal_number);
}

void AgentDaemon::request_stop(int signal_number) {
  auto logger = log::get("agent");
  if (stopping_) {
    logger->warn("second signal {}: stopping the running job now", signal_number);
    jobs_->stop_now("a second signal");
    return;
  }
  stopping_ = true;
  logger->info("signal {}: draining (no new jobs; a running job gets {} s)", signal_number,
               config_->run.grace_seconds);
  // Whatever happens below (a join, a write to stalled storage), the process ends in time.
  arm_shutdown_watchdog(std::chrono::seconds(config_->run.grace_seconds) + JobRunner::kHardStopAfter +
                        std::chrono::seconds(5));
  triggers_->stop();
  if (config_watch_) config_watch_->stop();
  // The control socket stays open while draining: clients are told "shutting down" instead of
  // finding no agent and running a backup of their own beside the one still running.
  if (http_) http_->stop();
  jobs_->drain(std::chrono::seconds(config_->run.grace_seconds), [this] { finish_shutdown(); });
}

void AgentDaemon::arm_shutdown_watchdog(std::chrono::seconds deadline) {
  try {
    watchdog_ = std::thread([this, deadline, exit_now = seams_.exit_now] {
      std::unique_lock lock(watchdog_mutex_);
      if (watchdog_wake_.wait_for(lock, deadline, [this] { return watchdog_cancelled_; })) return;
      // Not through the sink: the thread that is stuck may hold its lock.
      log::Fields exit;
      exit.exit_code = exit_code_for(ErrorKind::interrupted);
      exit.error_type = error_kind_name(ErrorKind::interrupted);
      log::write_unlocked("agent", spdlog::level::err,
                          fmt::format("shutdown did not finish within {} s; exiting now", deadline.count()),
                          exit);
      exit_now(exit_code_for(ErrorKind::interrupted));
    });
  } catch (const std::exception& e) {
    log::get("agent")->warn("no shutdown watchdog: {}", e.what());
  }
}

void AgentDaemon::finish_shutdown() {
  heartbeat_timer_->cancel();
  if (control_) control_->stop();
  if (collector_) collector_->stop();
  if (seams_.handle_signals) signals_.cancel();
  io_.stop();
}

Result<std::unique_ptr<Triggers>> AgentDaemon::open_triggers(std::shared_ptr<const AgentConfig> config) {
  // Asked only when there are schedules to refuse: it runs `pgbackrest version`.
  const std::string backup_problem =
      config->schedules.full.empty() && config->schedules.diff.empty() && config->schedules.incr.empty()
          ? ""
          : backup_placement_problem(*config, *seams_.runner, CancelToken::never());
  auto triggers = std::make_unique<Triggers>(
      io_, std::move(config), *seams_.clock, *seams_.timers,
      [this](BackupRequest request) { jobs_->enqueue(request); },
      [this](DrillRequest request) { jobs_->enqueue_drill(request); });
  if (auto s = triggers->open(state_problem_, backup_problem); !s) return s.error();
  return triggers;
}

void AgentDaemon::reload(const std::string& why) {
  auto logger = log::get("agent");
  if (stopping_) return;
  if (!seams_.reload_config) {
    logger->warn("{}: this agent has no config file to read again", why);
    return;
  }
  const auto refuse = [&](const std::string& reason) {
    logger->error("{}: the config was not reloaded: {}; the running config stays", why, reason);
    metrics_->record_config_reload(false, seams_.clock->now());
  };
  ConfigLoad load = seams_.reload_config();
  if (!load.issues.empty()) return refuse(config_error(load.issues).message);
  if (const auto fixed = restart_only_changes(*config_, load.config); !fixed.empty())
    return refuse("these settings change only with a restart: " + fixed);
  auto next = std::make_shared<const AgentConfig>(std::move(load.config));
  // Built before anything is replaced: a new schedule that cannot run leaves the old ones.
  auto triggers = open_triggers(next);
  if (!triggers) return refuse(triggers.error().message);

  triggers_->stop();
  collector_.reset();  // stops its thread, which reads the config being replaced
  config_ = next;
  jobs_->set_config(config_);
  collector_ = std::make_unique<RepositoryCollector>(*config_, *seams_.runner, *seams_.connector, *metrics_);
  collector_->start();
  triggers_ = std::move(*triggers);
  if (auto s = triggers_->start(); !s) log::error(*logger, s.error(), why + ": a trigger did not start");
  metrics_->record_config_reload(true, seams_.clock->now());
  logger->info("{}: config reloaded", why);
}

nlohmann::json AgentDaemon::status() {
  return status_json(StatusSources{*config_, *jobs_, *triggers_, journal_ ? &*journal_ : nullptr,
                                   state_problem_, started_at_, metrics_.get(),
                                   history_ ? &*history_ : nullptr});
}

void AgentDaemon::backup(const BackupCommand& command, ControlReply reply) {
  jobs_->enqueue(BackupRequest{command.type, Trigger::manual,
                               std::string("agent backup --type ") + backup_type_name(command.type) +
                                   (command.repo > 0 ? " --repo " + std::to_string(command.repo) : ""),
                               seams_.clock->now(), command.repo},
                 reply, command.wait);
}

void AgentDaemon::dump(const DumpCommand& command, ControlReply reply) {
  jobs_->dump(command, std::move(reply));
}

void AgentDaemon::dump_stop(ControlReply reply) {
  jobs_->stop_kept_dump(std::move(reply));
}

void AgentDaemon::drill(const DrillCommand& command, ControlReply reply) {
  jobs_->drill(command, std::move(reply));
}

// The trigger's state is pulled, not pushed: read on every beat and every scrape.
void AgentDaemon::refresh_component_metrics() {
  if (const auto trigger = triggers_->annotation_status())
    metrics_->set_component_ok("annotation_trigger", trigger->state == TriggerState::watching);
  metrics_->set_component_ok("schedules", triggers_->schedules_refused().empty());
}

void AgentDaemon::refresh_schedule_metrics() {
  const auto now = seams_.clock->now();
  // Schedules without a repository back up into the default one: pgbackrest.repo, else the
  // lowest-numbered repository pgBackRest lists.
  int default_repo = config_->pgbackrest.repo;
  if (default_repo <= 0) {
    const auto repos = metrics_->repositories();
    default_repo = repos.empty() ? 1 : repos.front().repo;
  }
  if (intervals_for_ == triggers_.get() && intervals_default_repo_ == default_repo &&
      now - intervals_at_ < std::chrono::hours(1))
    return;
  intervals_for_ = triggers_.get();
  intervals_default_repo_ = default_repo;
  intervals_at_ = now;
  metrics_->set_min_window(std::chrono::hours(config_->alerts.min_window_hours));
  std::vector<ScheduledBackup> schedules;
  for (const auto& schedule : triggers_->schedules())
    schedules.push_back(
        {schedule->type(), schedule->repo() > 0 ? schedule->repo() : default_repo, &schedule->cron()});
  const date::time_zone* zone = nullptr;
  try {
    zone = date::locate_zone(config_->schedules.timezone.empty() ? "UTC" : config_->schedules.timezone);
  } catch (const std::exception&) {
    // The config check refuses an unknown zone; without one there are no schedules to measure.
  }
  metrics_->set_expected_intervals(
      zone != nullptr ? expected_intervals(schedules, *zone, std::chrono::floor<std::chrono::seconds>(now))
                      : std::map<std::pair<int, std::string>, std::chrono::seconds>{});
}

// The loop proves it still turns; /healthz fails when these beats stop.
void AgentDaemon::beat() {
  last_heartbeat_ = std::chrono::steady_clock::now();
  refresh_component_metrics();
  refresh_schedule_metrics();
  heartbeat_timer_->start(std::chrono::seconds(5), [this] { beat(); });
}

HttpAnswer AgentDaemon::answer_http(std::string_view method, std::string_view target) {
  RouteState state;
  state.health.config_loaded = true;
  state.health.last_loop_heartbeat = last_heartbeat_;
  state.health.repository_readable = collector_->repository_readable();
  state.health.repository_error = collector_->repository_error();
  state.health.jobs = jobs_->running_jobs();
  state.now = std::chrono::steady_clock::now();
  if (!state_problem_.empty()) state.health.degraded.push_back("state_dir: " + state_problem_);
  for (auto& part : triggers_->degraded()) state.health.degraded.push_back(std::move(part));
  state.scrape = [this] {
    refresh_component_metrics();
    return metrics_->scrape(seams_.clock->now());
  };
  return route(method, target, state);
}

}  // namespace agent
