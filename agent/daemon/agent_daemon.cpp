#include "daemon/agent_daemon.hpp"

#include <boost/asio/post.hpp>
#include <cstdio>
#include <cstdlib>

#include "core/files.hpp"
#include "core/log.hpp"
#include "core/version.hpp"
#include "daemon/control_protocol.hpp"
#include "time/target_time.hpp"

namespace agent {

namespace {
constexpr std::size_t kRecentResults = 20;
constexpr std::size_t kAbandonedShown = 20;
// After the running job was told to stop (grace over, second signal): how long it may take
// before the agent exits anyway. Its children get their death signal when it does.
constexpr std::chrono::seconds kHardStopAfter{8};

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A result for a job whose pipeline threw: a bug, never a reason for the daemon to end.
BackupResult failed_by_exception(const QueuedBackup& job, const std::string& what) {
  BackupResult result;
  result.job_id = job.id;
  result.request = job.request;
  result.outcome = BackupOutcome::failed;
  result.message = "the backup job failed with an unexpected exception: " + what;
  result.started = std::chrono::system_clock::now();
  return result;
}

std::string iso(std::chrono::system_clock::time_point t) {
  return format_iso_utc(std::chrono::floor<Microseconds>(t));
}

const char* admission_name(Admission admission) {
  switch (admission) {
    case Admission::queued:
      return "queued";
    case Admission::merged:
      return "merged";
    case Admission::superseded:
      return "superseded";
    case Admission::refused:
      return "refused";
  }
  return "queued";
}

nlohmann::json request_json(std::uint64_t id, const BackupRequest& request) {
  return {{"job_id", id},
          {"type", backup_type_name(request.type)},
          {"trigger", trigger_name(request.trigger)},
          {"reason", request.reason},
          {"requested_at", iso(request.requested_at)}};
}
}  // namespace

nlohmann::json backup_result_json(const BackupResult& result) {
  auto json = request_json(result.job_id, result.request);
  json["outcome"] = backup_outcome_name(result.outcome);
  json["message"] = result.message;
  json["pgbackrest_exit_code"] = result.pgbackrest_exit_code;
  json["started_at"] = iso(result.started);
  json["seconds"] = result.seconds;
  return json;
}

AgentDaemon::AgentDaemon(AgentConfig config)
    : config_(std::move(config)),
      signals_(io_, SIGTERM, SIGINT),
      grace_timer_(io_),
      runner_(make_posix_process_runner()),
      connector_(make_pqxx_connector()),
      queue_(static_cast<std::size_t>(config_.run.queue_capacity)),
      metrics_(std::make_unique<AgentMetrics>(
          config_.stanza, config_.pgbackrest.repo > 0 ? std::to_string(config_.pgbackrest.repo) : "1",
          config_.metrics.crunchy_compat)),
      heartbeat_timer_(io_),
      hard_stop_timer_(io_) {}

AgentDaemon::~AgentDaemon() {
  {
    std::lock_guard lock(mutex_);
    worker_exit_ = true;
    if (job_cancel_) job_cancel_->cancel();
  }
  wake_worker_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (dump_cancel_) dump_cancel_->cancel();
  if (dump_thread_.joinable()) dump_thread_.join();
}

Status AgentDaemon::start() {
  auto logger = log::get("agent");
  open_state();

  const date::time_zone* zone = nullptr;
  try {
    zone = date::locate_zone(config_.schedules.timezone);
  } catch (const std::exception&) {
    return make_error(ErrorKind::usage, "unknown time zone '" + config_.schedules.timezone + "'");
  }
  const std::pair<BackupType, const std::string*> schedules[] = {{BackupType::full, &config_.schedules.full},
                                                                 {BackupType::diff, &config_.schedules.diff},
                                                                 {BackupType::incr, &config_.schedules.incr}};
  for (const auto& [type, text] : schedules) {
    if (text->empty()) continue;
    auto cron = parse_cron(*text);
    if (!cron) return cron.error();
    schedules_.push_back(std::make_unique<ScheduleTimer>(io_, clock_, type, *cron, *zone,
                                                         [this](BackupRequest r) { enqueue(r); }));
  }
  if (schedules_.empty()) logger->info("no schedules configured; backups run only on request");

  if (!config_.manual.annotations_file.empty()) {
    // Without usable state the trigger could run an old value again: it is disabled (and says
    // so) until the state is usable, and looks again on every read, so a fix needs no restart.
    const std::string path = config_.state_dir + "/handled-annotations.json";
    handled_.emplace(
        state_problem_.empty()
            ? HandledValues::open(path)
            : HandledValues::unusable(path, make_error(ErrorKind::environment, state_problem_,
                                                       "create state_dir, writable by the agent's "
                                                       "user, or set state_dir elsewhere")));
    annotation_ = std::make_unique<AnnotationTrigger>(
        io_, config_.manual.annotations_file, config_.manual.annotation,
        *parse_backup_type(config_.manual.type), *handled_, [this](BackupRequest r) { enqueue(r); });
  }

  const std::string socket_path = control_socket_path(config_);
  if (!state_problem_.empty() && config_.control.socket.empty()) {
    logger->error(
        "the control socket is off: its default place is in state_dir ({}); set control.socket "
        "to use it anyway",
        state_problem_);
    metrics_->set_component_ok("control_socket", false);
  } else {
    control_ = std::make_unique<ControlServer>(io_, socket_path, *this);
    if (auto s = control_->start(); !s) return s;
  }
  if (!config_.http.listen.empty()) {
    http_ = std::make_unique<HttpServer>(
        io_, config_.http.listen,
        [this](std::string_view method, std::string_view target) { return answer_http(method, target); });
    if (auto s = http_->start(); !s) return s;
  }
  collector_ = std::make_unique<RepositoryCollector>(config_, *runner_, *connector_, *metrics_);
  collector_->start();
  beat();
  for (auto& schedule : schedules_) schedule->start();
  if (annotation_) {
    if (auto s = annotation_->start(); !s) return s;
  }
  signals_.async_wait([this](const boost::system::error_code& ec, int signal_number) {
    if (!ec) on_signal(signal_number);
  });
  worker_ = std::thread([this] { worker_loop(); });
  started_at_ = clock_.now();
  logger->info("agent {} running for stanza '{}'", kAgentVersion, config_.stanza);
  rerun_leftover_requests();
  return {};
}

// state_dir holds what must survive a restart. When it is unusable the agent runs without
// what depends on it (the annotation trigger, durable requests) and says so.
void AgentDaemon::open_state() {
  auto logger = log::get("agent");
  metrics_->set_component_ok("state_dir", true);
  if (auto s = ensure_private_directory(config_.state_dir); !s) {
    state_problem_ = s.error().message;
    logger->error(
        "state_dir {} is unusable ({}); running without the annotation trigger and durable "
        "requests. HINT: give state_dir a directory the agent's user can create and write",
        config_.state_dir, state_problem_);
    metrics_->set_component_ok("state_dir", false);
    return;
  }
  auto journal = RequestJournal::open(config_.state_dir + "/requests.json");
  if (!journal) {
    logger->error("requests are not durable: {}", journal.error().describe());
    metrics_->set_component_ok("request_journal", false);
    return;
  }
  if (!journal->recovered_from().empty()) logger->error("{}", journal->recovered_from());
  journal_.emplace(std::move(*journal));
  metrics_->set_component_ok("request_journal", true);
}

void AgentDaemon::rerun_leftover_requests() {
  if (!journal_) return;
  auto logger = log::get("queue");
  auto leftovers = journal_->take_leftovers();
  if (!leftovers) {
    logger->error("cannot read what the previous run left: {}", leftovers.error().describe());
    return;
  }
  if (!leftovers->save_problem.empty()) logger->warn("request journal: {}", leftovers->save_problem);
  for (const auto& entry : leftovers->abandoned) {
    logger->error(
        "request {} abandoned: {} (requested {}) was started {} times and never ended; the agent "
        "was stopped or killed each time. HINT: take the backup with `agent backup`, and look for "
        "out-of-memory kills",
        entry.id, entry.request.reason, iso(entry.request.requested_at), entry.attempts);
    count_skip("abandoned");
    abandoned_.push_front({{"request", entry.id},
                           {"type", backup_type_name(entry.request.type)},
                           {"trigger", trigger_name(entry.request.trigger)},
                           {"reason", entry.request.reason},
                           {"requested_at", iso(entry.request.requested_at)},
                           {"attempts", entry.attempts},
                           {"abandoned_at", iso(clock_.now())}});
    if (abandoned_.size() > kAbandonedShown) abandoned_.pop_back();
  }
  for (const auto& entry : leftovers->rerun) {
    logger->warn("request {} ({}) did not end before the agent stopped; queued again", entry.id,
                 entry.request.reason);
    enqueue(entry.request, std::nullopt, false, entry.id);
  }
}

int AgentDaemon::run() {
  if (auto s = start(); !s) {
    log::get("agent")->error("{}", s.error().describe());
    return exit_code_for(s.error().kind);
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

void AgentDaemon::enqueue(const BackupRequest& request, std::optional<ControlReply> waiter,
                          bool wait_for_result, std::optional<std::uint64_t> journal_id) {
  auto logger = log::get("queue");
  if (stopping_ && journal_id) return;  // stays in the journal for the next run
  if (stopping_) {
    logger->warn("{} ignored: the agent is shutting down", request.reason);
    count_skip("shutting-down");
    if (waiter) (*waiter)({{"event", "refused"}, {"reason", "the agent is shutting down"}}, true);
    return;
  }
  // A triggered request is written down before it is queued, so that a restart cannot lose it.
  if (!journal_id && journal_ && request.trigger != Trigger::schedule) {
    if (auto recorded = journal_->record(request))
      journal_id = *recorded;
    else
      logger->warn("{}: not written to the request journal ({}); a restart before it ends would lose it",
                   request.reason, recorded.error().message);
  }
  const AdmissionResult admission = queue_.offer(request);
  if (journal_id) {
    if (admission.admission == Admission::refused) {
      if (auto s = journal_->finished(*journal_id); !s)
        logger->warn("request journal: {}", s.error().message);
    } else {
      journal_ids_by_job_[admission.job_id].push_back(*journal_id);
    }
  }
  for (auto id : admission.superseded_ids) {
    auto moved = journal_ids_by_job_.extract(id);
    if (moved.empty()) continue;
    auto& into = journal_ids_by_job_[admission.job_id];
    into.insert(into.end(), moved.mapped().begin(), moved.mapped().end());
  }
  switch (admission.admission) {
    case Admission::queued:
      logger->info("job {}: {} backup queued ({})", admission.job_id, backup_type_name(request.type),
                   request.reason);
      break;
    case Admission::superseded:
      logger->info("job {}: {} backup queued ({}); {}", admission.job_id, backup_type_name(request.type),
                   request.reason, admission.reason);
      count_skip("superseded", admission.superseded_ids.size());
      for (auto id : admission.superseded_ids) {  // their waiters now wait for the larger job
        auto& moved = waiters_[id];
        auto& target = waiters_[admission.job_id];
        target.insert(target.end(), moved.begin(), moved.end());
        waiters_.erase(id);
      }
      break;
    case Admission::merged:
      logger->info("{} skipped: {}", request.reason, admission.reason);
      count_skip("merged");
      break;
    case Admission::refused:
      logger->warn("{} refused: {}", request.reason, admission.reason);
      count_skip("queue-full");
      break;
  }
  if (waiter) {
    const bool last = !wait_for_result || admission.admission == Admission::refused;
    (*waiter)({{"event", "accepted"},
               {"admission", admission_name(admission.admission)},
               {"job_id", admission.job_id},
               {"reason", admission.reason}},
              last);
    if (!last) waiters_[admission.job_id].push_back(*waiter);
  }
  start_next_job();
  update_queue_metrics();
}

void AgentDaemon::start_next_job() {
  if (stopping_) return;
  auto job = queue_.start_next();
  if (!job) return;
  running_since_ = clock_.now();
  job_progress_ns_ = steady_ns();
  job_done_ = false;
  if (journal_) {
    for (auto id : journal_ids_by_job_[job->id])
      if (auto s = journal_->started(id); !s)
        log::get("queue")->warn("request journal: {}", s.error().message);
  }
  {
    std::lock_guard lock(mutex_);
    job_for_worker_ = *job;
  }
  update_queue_metrics();
  wake_worker_.notify_all();
}

void AgentDaemon::worker_loop() {
  for (;;) {
    QueuedBackup job;
    {
      std::unique_lock lock(mutex_);
      wake_worker_.wait(lock, [this] { return worker_exit_ || job_for_worker_.has_value(); });
      if (worker_exit_) return;
      job = *job_for_worker_;
      job_for_worker_.reset();
    }
    // The worker's exception boundary: a job that throws (or cannot even get its cancel token,
    // out of descriptors) fails; the worker goes on.
    BackupResult result;
    try {
      {
        std::lock_guard lock(mutex_);
        job_cancel_ = std::make_unique<CancelToken>();
      }
      SystemClock clock;
      BackupServices services{*runner_, *connector_, clock, *job_cancel_};
      services.on_progress = [this] { job_progress_ns_ = steady_ns(); };
      result = run_backup(config_, job, services);
    } catch (const std::exception& e) {
      result = failed_by_exception(job, e.what());
      log::get("backup")->error("job {}: {}", job.id, result.message);
    } catch (...) {
      result = failed_by_exception(job, "of unknown type");
      log::get("backup")->error("job {}: {}", job.id, result.message);
    }
    {
      std::lock_guard lock(mutex_);
      job_cancel_.reset();
    }
    // From here the job is over whatever the loop does next; the hard stop must not cut it.
    job_done_ = true;
    try {
      boost::asio::post(io_,
                        [this, result = std::move(result)]() mutable { on_job_finished(std::move(result)); });
    } catch (const std::exception& e) {
      log::get("backup")->error("job {}: its result is lost: {}", job.id, e.what());
    }
  }
}

void AgentDaemon::on_job_finished(BackupResult result) {
  queue_.finish_running();
  running_since_.reset();
  const bool run_again = job_stopped_by_shutdown_ && result.cancelled;
  job_stopped_by_shutdown_ = false;
  if (run_again) {
    // Stopped by us, not failed on its own: its requests run again after the restart.
    log::get("queue")->info("job {} was stopped by the shutdown; its request runs again after the restart",
                            result.job_id);
    journal_ids_by_job_.erase(result.job_id);
    if (auto it = waiters_.find(result.job_id); it != waiters_.end()) {
      for (auto& reply : it->second)
        reply({{"event", "abandoned"},
               {"reason", "the agent stopped the backup to shut down; it runs again when the agent is back"}},
              true);
      waiters_.erase(it);
    }
  } else {
    journal_finished(result.job_id);
  }
  if (result.outcome == BackupOutcome::skipped) count_skip(result.skip_reason_code);
  metrics_->record_backup(result, clock_.now());
  if (result.info) metrics_->record_repository_read(*result.info, clock_.now(), result.info_seconds);
  update_queue_metrics();
  const auto json = backup_result_json(result);
  if (auto it = waiters_.find(result.job_id); it != waiters_.end()) {
    for (auto& reply : it->second) reply({{"event", "finished"}, {"result", json}}, true);
    waiters_.erase(it);
  }
  recent_.push_front(std::move(result));
  if (recent_.size() > kRecentResults) recent_.pop_back();
  if (stopping_) return finish_shutdown_if_idle();
  start_next_job();
}

void AgentDaemon::on_signal(int signal_number) {
  auto logger = log::get("agent");
  if (stopping_) {
    logger->warn("second signal {}: stopping the running job now", signal_number);
    stop_job_now("a second signal");
    return;
  }
  stopping_ = true;
  logger->info("signal {}: draining (no new jobs; a running job gets {} s)", signal_number,
               config_.run.grace_seconds);
  // Whatever happens below (a join, a write to stalled storage), the process ends in time.
  const auto deadline =
      std::chrono::seconds(config_.run.grace_seconds) + kHardStopAfter + std::chrono::seconds(5);
  try {
    std::thread([deadline] {
      std::this_thread::sleep_for(deadline);
      std::fprintf(stderr, "agent: shutdown did not finish within %lld s; exiting now\n",
                   static_cast<long long>(deadline.count()));
      std::_Exit(exit_code_for(ErrorKind::interrupted));
    }).detach();
  } catch (const std::exception& e) {
    logger->warn("no shutdown watchdog: {}", e.what());
  }
  for (auto& schedule : schedules_) schedule->stop();
  if (annotation_) annotation_->stop();
  // The control socket stays open while draining: clients are told "shutting down" instead of
  // finding no agent and running a backup of their own beside the one still running.
  signals_.async_wait([this](const boost::system::error_code& ec, int again) {
    if (!ec) on_signal(again);
  });
  if (http_) http_->stop();
  // A dump's temporary server is stopped at once: it is a copy, nothing is lost.
  if (dump_running_) stop_job_now("shutting down");
  if (!queue_.running() && !dump_running_) return finish_shutdown_if_idle();
  if (!queue_.running()) return;
  grace_timer_.expires_after(std::chrono::seconds(config_.run.grace_seconds));
  grace_timer_.async_wait([this, logger](const boost::system::error_code& ec) {
    if (ec) return;
    logger->warn("grace period over: stopping the running job");
    stop_job_now("the grace period is over");
  });
}

void AgentDaemon::stop_job_now(const char* why) {
  if (queue_.running() && !job_done_) job_stopped_by_shutdown_ = true;
  {
    std::lock_guard lock(mutex_);
    if (job_cancel_) job_cancel_->cancel(SIGTERM);
  }
  if (dump_cancel_) dump_cancel_->cancel(SIGTERM);
  if ((!queue_.running() && !dump_running_) || hard_stop_armed_) return;
  hard_stop_armed_ = true;
  log::get("agent")->info("{}: the running job has {} s to stop", why, kHardStopAfter.count());
  hard_stop_timer_.expires_after(kHardStopAfter);
  hard_stop_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) exit_if_still_busy();
  });
}

// A job blocked where cancellation cannot reach (a connection attempt to a server that does
// not answer) must not keep the pod from stopping: the agent exits, its children get their
// death signal, and the journal runs the request again after the restart.
void AgentDaemon::exit_if_still_busy() {
  const bool backup_busy = queue_.running() && !job_done_;
  const bool dump_busy = dump_running_ && !dump_done_;
  if (!backup_busy && !dump_busy) return;  // its end is already on its way to the loop
  log::get("agent")->error("the running job did not stop within {} s of being told to; exiting now",
                           kHardStopAfter.count());
  if (control_) control_->stop();
  spdlog::shutdown();
  std::_Exit(exit_code_for(ErrorKind::interrupted));
}

void AgentDaemon::finish_shutdown_if_idle() {
  if (queue_.running() || dump_running_) return;
  grace_timer_.cancel();
  hard_stop_timer_.cancel();
  heartbeat_timer_.cancel();
  if (control_) control_->stop();
  if (collector_) collector_->stop();
  for (auto& [id, replies] : waiters_)
    for (auto& reply : replies)
      reply({{"event", "abandoned"},
             {"reason", journal_ ? "the agent stopped before the job ran; it runs when the agent is back"
                                 : "the agent stopped before the job ran"}},
            true);
  waiters_.clear();
  io_.stop();
}

void AgentDaemon::journal_finished(std::uint64_t job_id) {
  auto ids = journal_ids_by_job_.extract(job_id);
  if (ids.empty() || !journal_) return;
  for (auto id : ids.mapped())
    if (auto s = journal_->finished(id); !s)
      log::get("queue")->warn("request journal: {}", s.error().message);
}

nlohmann::json AgentDaemon::status() {
  nlohmann::json queue = nlohmann::json::array();
  for (const auto& job : queue_.pending()) queue.push_back(request_json(job.id, job.request));
  nlohmann::json running = nullptr;
  if (const auto& job = queue_.running()) {
    running = request_json(job->id, job->request);
    if (running_since_) running["started_at"] = iso(*running_since_);
  }
  nlohmann::json recent = nlohmann::json::array();
  for (const auto& result : recent_) recent.push_back(backup_result_json(result));
  nlohmann::json schedules = nlohmann::json::array();
  for (const auto& schedule : schedules_) {
    schedules.push_back(
        {{"type", backup_type_name(schedule->type())},
         {"cron", schedule->cron().text},
         {"timezone", config_.schedules.timezone},
         {"next", schedule->next() ? nlohmann::json(format_iso_utc(SysMicros{*schedule->next()}))
                                   : nlohmann::json(nullptr)}});
  }
  nlohmann::json annotation = nullptr;
  if (handled_ && annotation_) {
    const auto trigger = annotation_->status();
    const auto text_or_null = [](const std::string& text) {
      return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
    };
    annotation = {
        {"file", config_.manual.annotations_file},
        {"key", config_.manual.annotation},
        {"state", trigger_state_name(trigger.state)},
        {"problem", text_or_null(trigger.problem)},
        {"watch_problem", text_or_null(trigger.watch_problem)},
        {"notice", text_or_null(trigger.notice)},
        {"reads", trigger.reads},
        {"last_value", handled_->last_value() ? nlohmann::json(*handled_->last_value()) : nullptr},
        {"last_handled_at",
         handled_->last_handled_at() ? nlohmann::json(iso(*handled_->last_handled_at())) : nullptr}};
  }
  const auto dump_json = [](const std::optional<DumpRecord>& record) -> nlohmann::json {
    if (!record) return nullptr;
    return {{"job_id", record->id},
            {"target", record->target},
            {"output", record->output},
            {"started_at", iso(record->started)},
            {"outcome", record->outcome}};
  };
  return {{"agent_version", kAgentVersion},
          {"dump", {{"running", dump_json(dump_running_)}, {"last", dump_json(dump_last_)}}},
          {"stanza", config_.stanza},
          {"started_at", iso(started_at_)},
          {"stopping", stopping_},
          {"running", running},
          {"queue", queue},
          {"recent", recent},
          {"skipped", skipped_},
          {"schedules", schedules},
          {"annotation", annotation},
          {"state",
           {{"dir", config_.state_dir},
            {"problem", state_problem_.empty() ? nlohmann::json(nullptr) : nlohmann::json(state_problem_)},
            {"journaled_requests",
             journal_ ? nlohmann::json(journal_->requests().size()) : nlohmann::json(nullptr)},
            {"abandoned", nlohmann::json(abandoned_)}}}};
}

void AgentDaemon::backup(const BackupCommand& command, ControlReply reply) {
  enqueue(BackupRequest{command.type, Trigger::manual,
                        std::string("agent backup --type ") + backup_type_name(command.type), clock_.now()},
          reply, command.wait);
}

}  // namespace agent

namespace agent {

void AgentDaemon::dump(const DumpCommand& command, ControlReply reply) {
  const DumpArguments& arguments = command.arguments;
  const auto refuse = [&](const Error& error) {
    reply({{"ok", false},
           {"error", error.message},
           {"hint", error.hint},
           {"exit_code", exit_code_for(error.kind)}},
          true);
  };
  if (stopping_) return refuse(make_error(ErrorKind::interrupted, "the agent is shutting down"));
  if (dump_running_)
    return refuse(make_error(ErrorKind::environment,
                             "a dump is already running (job " + std::to_string(dump_running_->id) + ")",
                             "wait for it to finish (agent status)"));
  auto job = build_dump_job(config_, arguments);
  if (!job) return refuse(job.error());
  if (job->to_stdout())
    return refuse(
        make_error(ErrorKind::usage, "the running agent cannot write a dump to your standard output",
                   "give --output a file, or run `agent dump --output -` (it runs in your process)"));

  const std::uint64_t id = next_dump_id_++;
  if (dump_thread_.joinable()) dump_thread_.join();
  const auto job_target = job->target.instant;
  const std::string job_output = job->output;
  // The token and the thread first: when either cannot be had (out of descriptors or threads),
  // the request is refused and nothing is marked as running.
  dump_done_ = false;
  dump_cancel_ = std::make_unique<CancelToken>();
  dump_thread_ = std::thread([this, job = std::move(*job), reply, cancel = dump_cancel_.get()] {
    SystemClock clock;
    auto copier = make_libpq_copy_connector();
    DumpServices services{*runner_, *connector_, *copier, clock, *cancel, {}};
    // Progress goes to the client from the loop thread, which owns the connection.
    services.on_step = [this, reply](const std::string& step, const std::string& state, double seconds) {
      boost::asio::post(io_, [reply, step, state, seconds] {
        reply({{"event", "step"}, {"step", step}, {"state", state}, {"seconds", seconds}}, false);
      });
    };
    // The dump thread's exception boundary.
    Result<DumpSummary> summary =
        make_error(ErrorKind::internal, "the dump failed with an unexpected exception");
    try {
      summary = run_dump(job, services);
    } catch (const std::exception& e) {
      summary = make_error(ErrorKind::internal,
                           std::string("the dump failed with an unexpected exception: ") + e.what(),
                           "this is a bug in the agent; the agent goes on running");
    } catch (...) {
    }
    dump_done_ = true;
    try {
      boost::asio::post(io_, [this, summary = std::move(summary), reply]() mutable {
        on_dump_finished(std::move(summary), reply);
      });
    } catch (const std::exception& e) {
      log::get("dump")->error("the dump's result is lost: {}", e.what());
    }
  });
  dump_running_ = DumpRecord{id, format_iso_utc(job_target), job_output, clock_.now(), nullptr};
  log::get("dump")->info("dump job {}: target {}, output {}", id, dump_running_->target, job_output);
  reply({{"event", "accepted"}, {"job_id", id}}, false);
}

void AgentDaemon::on_dump_finished(Result<DumpSummary> summary, ControlReply reply) {
  if (dump_thread_.joinable()) dump_thread_.join();
  dump_cancel_.reset();
  nlohmann::json message;
  if (summary) {
    message = {{"event", "finished"},
               {"ok", true},
               {"summary",
                {{"output", summary->output},
                 {"manifest", summary->manifest_path},
                 {"bytes", summary->bytes},
                 {"checksum", summary->checksum},
                 {"backup_set", summary->backup_label},
                 {"gap_seconds", summary->gap_seconds}}}};
  } else {
    const auto& error = summary.error();
    log::get("dump")->error("dump job {}: {}", dump_running_->id, error.describe());
    message = {{"event", "finished"},
               {"ok", false},
               {"error", error.message},
               {"hint", error.hint},
               {"exit_code", exit_code_for(error.kind)}};
  }
  if (summary) {
    double seconds = 0;
    for (const auto& timing : summary->timings) seconds += timing.seconds;
    metrics_->record_dump(DumpMetrics{clock_.now(), seconds, summary->bytes, summary->gap_seconds});
  }
  dump_running_->outcome = message;
  dump_last_ = std::move(dump_running_);
  dump_running_.reset();
  reply(message, true);
  if (stopping_) finish_shutdown_if_idle();
}

}  // namespace agent

namespace agent {

void AgentDaemon::count_skip(const std::string& reason, std::uint64_t count) {
  if (count == 0) return;
  skipped_[reason] += count;
  metrics_->record_skip(reason, count);
}

void AgentDaemon::update_queue_metrics() {
  const auto& running = queue_.running();
  metrics_->set_queue(queue_.pending().size(),
                      running ? std::optional<BackupType>(running->request.type) : std::nullopt);
}

// The trigger's state is pulled, not pushed: read on every beat and every scrape.
void AgentDaemon::refresh_component_metrics() {
  if (!annotation_) return;
  const auto state = annotation_->status().state;
  metrics_->set_component_ok("annotation_trigger", state == TriggerState::watching);
}

// The loop proves it still turns; /healthz fails when these beats stop.
void AgentDaemon::beat() {
  last_heartbeat_ = std::chrono::steady_clock::now();
  refresh_component_metrics();
  heartbeat_timer_.expires_after(std::chrono::seconds(5));
  heartbeat_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) beat();
  });
}

HttpAnswer AgentDaemon::answer_http(std::string_view method, std::string_view target) {
  RouteState state;
  state.health.config_loaded = true;
  state.health.last_loop_heartbeat = last_heartbeat_;
  state.health.repository_readable = collector_->repository_readable();
  state.health.repository_error = collector_->repository_error();
  // A job that shows no sign of life past run.stuck_seconds fails liveness: a restart ends it,
  // and the request journal runs it again. Dumps are not watched: a long pg_dump step prints
  // nothing, and its own deadlines belong to the dump.
  if (const auto& job = queue_.running()) {
    const auto progress =
        std::chrono::steady_clock::time_point(std::chrono::nanoseconds(job_progress_ns_.load()));
    state.health.jobs.push_back(probes::RunningJob{
        "backup job " + std::to_string(job->id) + " (" + backup_type_name(job->request.type) + ")", progress,
        std::chrono::seconds(config_.run.stuck_seconds)});
  }
  state.now = std::chrono::steady_clock::now();
  if (!state_problem_.empty()) state.health.degraded.push_back("state_dir: " + state_problem_);
  if (annotation_) {
    const auto trigger = annotation_->status();
    if (trigger.state == TriggerState::disabled || !trigger.problem.empty())
      state.health.degraded.push_back(std::string("annotation_trigger: ") +
                                      trigger_state_name(trigger.state) +
                                      (trigger.problem.empty() ? "" : ": " + trigger.problem));
  }
  state.scrape = [this] {
    refresh_component_metrics();
    return metrics_->scrape(clock_.now());
  };
  return route(method, target, state);
}

}  // namespace agent
