#include "daemon/agent_daemon.hpp"

#include <boost/asio/post.hpp>

#include "core/files.hpp"
#include "core/log.hpp"
#include "core/version.hpp"
#include "time/target_time.hpp"

namespace agent {

namespace {
constexpr std::size_t kRecentResults = 20;

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
      heartbeat_timer_(io_) {}

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
  if (auto s = ensure_private_directory(config_.state_dir); !s) return s;

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
    auto handled = HandledValues::load(config_.state_dir + "/handled-annotations.json");
    if (!handled) return handled.error();
    handled_.emplace(std::move(*handled));
    annotation_ = std::make_unique<AnnotationTrigger>(
        io_, config_.manual.annotations_file, config_.manual.annotation,
        *parse_backup_type(config_.manual.type), *handled_, [this](BackupRequest r) { enqueue(r); });
  }

  control_ = std::make_unique<ControlServer>(io_, config_.control.socket, *this);
  if (auto s = control_->start(); !s) return s;
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
  return {};
}

int AgentDaemon::run() {
  if (auto s = start(); !s) {
    log::get("agent")->error("{}", s.error().describe());
    return exit_code_for(s.error().kind);
  }
  io_.run();
  log::get("agent")->info("stopped");
  return kExitSuccess;
}

void AgentDaemon::enqueue(const BackupRequest& request, std::optional<ControlReply> waiter,
                          bool wait_for_result) {
  auto logger = log::get("queue");
  if (stopping_) {
    logger->warn("{} ignored: the agent is shutting down", request.reason);
    count_skip("shutting-down");
    if (waiter) (*waiter)({{"event", "refused"}, {"reason", "the agent is shutting down"}}, true);
    return;
  }
  const AdmissionResult admission = queue_.offer(request);
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
    CancelToken* cancel = nullptr;
    {
      std::unique_lock lock(mutex_);
      wake_worker_.wait(lock, [this] { return worker_exit_ || job_for_worker_.has_value(); });
      if (worker_exit_) return;
      job = *job_for_worker_;
      job_for_worker_.reset();
      job_cancel_ = std::make_unique<CancelToken>();
      cancel = job_cancel_.get();
    }
    SystemClock clock;
    BackupServices services{*runner_, *connector_, clock, *cancel};
    BackupResult result = run_backup(config_, job, services);
    {
      std::lock_guard lock(mutex_);
      job_cancel_.reset();
    }
    boost::asio::post(io_,
                      [this, result = std::move(result)]() mutable { on_job_finished(std::move(result)); });
  }
}

void AgentDaemon::on_job_finished(BackupResult result) {
  queue_.finish_running();
  running_since_.reset();
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
    std::lock_guard lock(mutex_);
    if (job_cancel_) job_cancel_->cancel(signal_number);
    return;
  }
  stopping_ = true;
  logger->info("signal {}: draining (no new jobs; a running job gets {} s)", signal_number,
               config_.run.grace_seconds);
  // A dump's temporary server is stopped at once: it is a copy, nothing is lost.
  if (dump_cancel_) dump_cancel_->cancel(signal_number);
  for (auto& schedule : schedules_) schedule->stop();
  if (annotation_) annotation_->stop();
  if (control_) control_->stop();
  signals_.async_wait([this](const boost::system::error_code& ec, int again) {
    if (!ec) on_signal(again);
  });
  if (http_) http_->stop();
  if (!queue_.running()) return finish_shutdown_if_idle();
  grace_timer_.expires_after(std::chrono::seconds(config_.run.grace_seconds));
  grace_timer_.async_wait([this, logger](const boost::system::error_code& ec) {
    if (ec) return;
    logger->warn("grace period over: stopping the running job");
    std::lock_guard lock(mutex_);
    if (job_cancel_) job_cancel_->cancel(SIGTERM);
  });
}

void AgentDaemon::finish_shutdown_if_idle() {
  if (queue_.running() || dump_running_) return;
  grace_timer_.cancel();
  heartbeat_timer_.cancel();
  if (collector_) collector_->stop();
  for (auto& [id, replies] : waiters_)
    for (auto& reply : replies)
      reply({{"event", "abandoned"}, {"reason", "the agent stopped before the job ran"}}, true);
  waiters_.clear();
  io_.stop();
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
  if (handled_) {
    annotation = {
        {"file", config_.manual.annotations_file},
        {"key", config_.manual.annotation},
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
          {"annotation", annotation}};
}

void AgentDaemon::backup(BackupType type, bool wait, ControlReply reply) {
  enqueue(BackupRequest{type, Trigger::manual, std::string("agent backup --type ") + backup_type_name(type),
                        clock_.now()},
          reply, wait);
}

}  // namespace agent

namespace agent {

void AgentDaemon::dump(const DumpArguments& arguments, ControlReply reply) {
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
  dump_running_ = DumpRecord{id, format_iso_utc(job->target.instant), job->output, clock_.now(), nullptr};
  log::get("dump")->info("dump job {}: target {}, output {}", id, dump_running_->target, job->output);
  reply({{"event", "accepted"}, {"job_id", id}}, false);
  if (dump_thread_.joinable()) dump_thread_.join();
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
    auto summary = run_dump(job, services);
    boost::asio::post(io_, [this, summary = std::move(summary), reply]() mutable {
      on_dump_finished(std::move(summary), reply);
    });
  });
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

// The loop proves it still turns; /healthz fails when these beats stop.
void AgentDaemon::beat() {
  last_heartbeat_ = std::chrono::steady_clock::now();
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
  state.now = std::chrono::steady_clock::now();
  state.scrape = [this] { return metrics_->scrape(clock_.now()); };
  return route(method, target, state);
}

}  // namespace agent
