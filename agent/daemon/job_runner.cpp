#include "daemon/job_runner.hpp"

#include "core/log.hpp"
#include "core/log_throttle.hpp"
#include "daemon/json_fields.hpp"
#include "pipelines/backup_pipeline.hpp"
#include "time/target_time.hpp"

namespace agent {

namespace {
constexpr std::size_t kRecentResults = 20;
constexpr std::size_t kAbandonedShown = 20;

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

// job.type and job.id for a record the loop logs about a job (the job's own thread sets them
// for everything it logs).
log::Fields job_fields(const char* type, std::uint64_t id) {
  log::Fields fields;
  fields.job_type = type;
  fields.job_id = std::to_string(id);
  return fields;
}

// What an `agent drill` client hears at the end: the summary of a drill that ran (passed, or
// failed with what it found), or the error that kept it from running.
DrillFinishedReply drill_finished_reply(const DrillReport& report) {
  if (report.result != "passed" && report.result != "failed")
    return DrillFinishedReply{reply_error(
        report.error.value_or(make_error(ErrorKind::internal, "the drill ended without a result")))};
  return DrillFinishedReply{DrillSummary{
      report.id, report.result, drill_exit_code(report), report.manifest_path, report.copy.backup_label,
      report.copy.backup_repo, report.target, report.copy.gap_seconds, report.total_seconds,
      report.objects_checked(), report.objects_failed(), shortened(report.first_failure(), 1000)}};
}

// A result for a job whose pipeline threw: a bug, never a reason for the daemon to end.
BackupResult failed_by_exception(const QueuedBackup& job, const std::string& what) {
  BackupResult result;
  result.job_id = job.id;
  result.request = job.request;
  result.outcome = BackupOutcome::failed;
  result.message = "the backup job failed with an unexpected exception: " + what;
  result.started = std::chrono::system_clock::now();
  log::write(*log::get("backup"), spdlog::level::err, fmt::format("job {}: {}", job.id, result.message),
             job_fields("backup", job.id));
  return result;
}

}  // namespace

JobRunner::JobRunner(boost::asio::io_context& io, std::shared_ptr<const AgentConfig> config,
                     JobServices services, AgentMetrics& metrics, RequestJournal* journal)
    : io_(io),
      config_(std::move(config)),
      services_(std::move(services)),
      metrics_(metrics),
      journal_(journal),
      queue_(static_cast<std::size_t>(config_->run.queue_capacity)),
      backup_slot_(io, "backup"),
      scratch_slot_(io, "scratch"),
      grace_timer_(services_.timers.make_timer()),
      hard_stop_timer_(services_.timers.make_timer()) {
  update_queue_metrics();
}

void JobRunner::rerun_leftovers() {
  if (!journal_) return;
  auto logger = log::get("queue");
  auto leftovers = journal_->take_leftovers();
  if (!leftovers) {
    log::error(*logger, leftovers.error(), "cannot read what the previous run left");
    return;
  }
  if (!leftovers->save_problem.empty()) logger->warn("request journal: {}", leftovers->save_problem);
  for (const auto& entry : leftovers->abandoned) {
    log::Fields hint;
    hint.hint = "take the backup with `agent backup`, and look for out-of-memory kills";
    log::write(
        *logger, spdlog::level::err,
        fmt::format("request {} abandoned: {} (requested {}) was started {} times and never ended; the "
                    "agent was stopped or killed each time",
                    entry.id, entry.request.reason, iso(entry.request.requested_at), entry.attempts),
        hint);
    count_skip("abandoned");
    abandoned_.push_front({{"request", entry.id},
                           {"type", backup_type_name(entry.request.type)},
                           {"trigger", trigger_name(entry.request.trigger)},
                           {"reason", entry.request.reason},
                           {"requested_at", iso(entry.request.requested_at)},
                           {"attempts", entry.attempts},
                           {"abandoned_at", iso(services_.clock.now())}});
    if (abandoned_.size() > kAbandonedShown) abandoned_.pop_back();
  }
  for (const auto& entry : leftovers->rerun) {
    logger->warn("request {} ({}) did not end before the agent stopped; queued again", entry.id,
                 entry.request.reason);
    enqueue(entry.request, std::nullopt, false, entry.id);
  }
}

void JobRunner::enqueue(const BackupRequest& asked, std::optional<ControlReply> waiter, bool wait_for_result,
                        std::optional<std::uint64_t> journal_id) {
  auto logger = log::get("queue");
  // The default repository is the config's at the time of the request.
  BackupRequest request = asked;
  if (request.repo == 0) request.repo = config_->pgbackrest.repo;
  if (stopping_ && journal_id) return;  // stays in the journal for the next run
  if (stopping_) {
    logger->warn("{} ignored: the agent is shutting down", request.reason);
    count_skip("shutting-down");
    if (waiter)
      (*waiter)(RefusedReply{reply_error(make_error(ErrorKind::interrupted, "the agent is shutting down",
                                                    "ask again when the agent is back"))},
                true);
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
      log::write(*logger, spdlog::level::info,
                 fmt::format("job {}: {} backup queued ({}), into {}", admission.job_id,
                             backup_type_name(request.type), request.reason, repo_name(request.repo)),
                 job_fields("backup", admission.job_id));
      break;
    case Admission::superseded:
      log::write(*logger, spdlog::level::info,
                 fmt::format("job {}: {} backup queued ({}), into {}; {}", admission.job_id,
                             backup_type_name(request.type), request.reason, repo_name(request.repo),
                             admission.reason),
                 job_fields("backup", admission.job_id));
      count_skip("superseded", admission.superseded_ids.size());
      for (auto id : admission.superseded_ids) {  // their waiters now wait for the larger job
        auto moved = waiters_.extract(id);
        if (moved.empty()) continue;
        auto& target = waiters_[admission.job_id];
        target.insert(target.end(), moved.mapped().begin(), moved.mapped().end());
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
    (*waiter)(BackupAcceptedReply{admission_name(admission.admission), admission.job_id, admission.reason},
              last);
    if (!last) waiters_[admission.job_id].push_back(*waiter);
  }
  start_next_job();
  update_queue_metrics();
}

void JobRunner::start_next_job() {
  if (stopping_ || backup_slot_.busy()) return;
  if (start_next_annotation()) return;
  auto job = queue_.start_next();
  if (!job) return;
  if (journal_) {
    for (auto id : journal_ids_by_job_[job->id])
      if (auto s = journal_->started(id); !s)
        log::get("queue")->warn("request journal: {}", s.error().message);
  }
  const QueuedBackup queued = *job;
  auto started = backup_slot_.start<BackupResult>(
      [this, queued, config = config_](const CancelToken& cancel) {
        BackupServices services{services_.runner, services_.connector, services_.clock, cancel};
        services.on_progress = [this] { backup_slot_.mark_progress(); };
        return run_backup(*config, queued, services);
      },
      [queued](const std::string& what) { return failed_by_exception(queued, what); },
      [this](BackupResult result) { on_backup_finished(std::move(result)); });
  if (!started) {
    // No thread for it now: it fails like a job would, and the queue goes on.
    auto result = failed_by_exception(queued, started.error().message);
    boost::asio::post(
        io_, [this, result = std::move(result)]() mutable { on_backup_finished(std::move(result)); });
    return;
  }
  running_since_ = services_.clock.now();
  metrics_.begin_backup_progress(queued.request.repo > 0 ? queued.request.repo : config_->pgbackrest.repo);
  update_queue_metrics();
}

// A drill's result onto its set, when the backup slot is free and no drill reads the
// repository; it goes before the next queued backup (it takes seconds).
bool JobRunner::start_next_annotation() {
  if (annotations_.empty() || queue_.drill_reads_repository()) return false;
  const DrillAnnotation annotation = annotations_.front();
  annotations_.pop_front();
  const int timeout_seconds = config_->pgbackrest.timeout_seconds;
  auto started = backup_slot_.start<Status>(
      [this, annotation, timeout_seconds](const CancelToken& cancel) -> Status {
        log::ScopedJob in_job("drill", annotation.drill_id);
        return annotate_backup_set(services_.runner, annotation, timeout_seconds, cancel);
      },
      [](const std::string& what) -> Status {
        return make_error(ErrorKind::internal,
                          "pgbackrest annotate failed with an unexpected exception: " + what);
      },
      [this, annotation](Status status) { on_annotation_finished(annotation, status); });
  if (!started) {
    log_annotation_outcome(annotation, started.error());
    return false;
  }
  annotating_ = annotation;
  return true;
}

void JobRunner::on_annotation_finished(const DrillAnnotation& annotation, const Status& status) {
  annotating_.reset();
  log_annotation_outcome(annotation, status);
  if (stopping_) return finish_if_idle();
  start_next_job();
  start_next_drill();
  update_queue_metrics();
}

void JobRunner::on_backup_finished(BackupResult result) {
  queue_.finish_running();
  running_since_.reset();
  metrics_.end_backup_progress();
  const bool run_again = job_stopped_by_shutdown_ && result.cancelled;
  job_stopped_by_shutdown_ = false;
  if (run_again) {
    // Stopped by us, not failed on its own: its requests run again after the restart.
    log::write(*log::get("queue"), spdlog::level::info,
               fmt::format("job {} was stopped by the shutdown; its request runs again after the restart",
                           result.job_id),
               job_fields("backup", result.job_id));
    journal_ids_by_job_.erase(result.job_id);
    answer_waiters(
        result.job_id,
        AbandonedReply{"the agent stopped the backup to shut down; it runs again when the agent is back"});
  } else {
    journal_finished(result.job_id);
  }
  if (result.outcome == BackupOutcome::skipped) count_skip(result.skip_reason_code);
  metrics_.record_backup(result, services_.clock.now());
  if (result.info) metrics_.record_repository_read(*result.info, services_.clock.now(), result.info_seconds);
  answer_waiters(result.job_id, BackupFinishedReply{backup_report(result)});
  if (services_.on_finished) services_.on_finished(result);
  recent_.push_front(std::move(result));
  if (recent_.size() > kRecentResults) recent_.pop_back();
  update_queue_metrics();
  if (stopping_) return finish_if_idle();
  start_next_job();
  start_next_drill();
}

void JobRunner::answer_waiters(std::uint64_t job_id, const ControlReplyMessage& message) {
  auto waiters = waiters_.extract(job_id);
  if (waiters.empty()) return;
  for (auto& reply : waiters.mapped()) reply(message, true);
}

// Why another job cannot have the scratch slot while a dump has it.
Error JobRunner::scratch_busy_with_dump() const {
  if (dump_running_->kept)
    return make_error(ErrorKind::environment,
                      "the paused copy of dump job " + std::to_string(dump_running_->id) +
                          " is kept running for inspection until " + dump_running_->kept->until,
                      "stop it with `agent dump --stop` (`agent status` shows how to connect to it), or wait "
                      "until then");
  return make_error(ErrorKind::environment,
                    "a dump is already running (job " + std::to_string(dump_running_->id) + ")",
                    "wait for it to finish (agent status)");
}

void JobRunner::dump(const DumpCommand& command, ControlReply reply) {
  const auto refuse = [&reply](const Error& error) { reply(RefusedReply{reply_error(error)}, true); };
  if (stopping_) return refuse(make_error(ErrorKind::interrupted, "the agent is shutting down"));
  if (dump_running_) return refuse(scratch_busy_with_dump());
  if (drill_running_)
    return refuse(make_error(ErrorKind::environment,
                             "a restore drill is using the scratch directory (job " +
                                 std::to_string(drill_running_->id) + ", step " + drill_running_->step + ")",
                             "wait for it to finish (agent status), then ask again"));
  auto job = build_dump_job(*config_, command.arguments);
  if (!job) return refuse(job.error());
  if (job->to_stdout())
    return refuse(
        make_error(ErrorKind::usage, "the running agent cannot write a dump to your standard output",
                   "give --output a file, or run `agent dump --output -` (it runs in your process)"));

  DumpRecord record{next_dump_id_, format_iso_utc(job->target.instant), job->output, services_.clock.now(),
                    nullptr};
  record.keep_running = job->keep_running.count() > 0;
  record.stop_keeping = std::make_shared<CancelToken>();
  auto started = scratch_slot_.start<Result<DumpSummary>>(
      [this, job = std::move(*job), reply, id = next_dump_id_,
       stop_keeping = record.stop_keeping](const CancelToken& cancel) -> Result<DumpSummary> {
        log::ScopedJob in_job("dump", std::to_string(id));
        auto copier = services_.make_copier();
        DumpServices services{services_.runner, services_.connector, *copier, services_.clock, cancel, {}};
        services.stop_keeping = stop_keeping.get();
        services.on_kept = [this, id, reply](const KeptCopy& kept) {
          boost::asio::post(io_, [this, id, reply, kept] { on_dump_kept(id, kept, reply); });
        };
        // Progress goes to the client from the loop thread, which owns the connection.
        // The client hears of the restore's progress as often as the dump's log does.
        services.on_restore_progress = [this, reply,
                                        throttle =
                                            std::make_shared<LogThrottle>(std::chrono::steady_clock::now())](
                                           std::uint64_t done, std::uint64_t total) {
          metrics_.record_restore_progress("dump", done, total);
          if (done == total || throttle->due(std::chrono::steady_clock::now()))
            boost::asio::post(io_, [reply, done, total] { reply(DumpProgressReply{done, total}, false); });
        };
        services.on_step = [this, reply](const std::string& step, const std::string& state, double seconds) {
          scratch_slot_.mark_progress();
          if (step == "restore" && state != "started") metrics_.end_restore_progress();
          boost::asio::post(io_, [reply, step, state, seconds] {
            reply(StepReply{"dump", step, state, seconds}, false);
          });
        };
        return run_dump(job, services);
      },
      [](const std::string& what) -> Result<DumpSummary> {
        return make_error(ErrorKind::internal, "the dump failed with an unexpected exception: " + what,
                          "this is a bug in the agent; the agent goes on running");
      },
      [this, reply](Result<DumpSummary> summary) { on_dump_finished(std::move(summary), reply); });
  if (!started) return refuse(started.error());
  ++next_dump_id_;
  dump_running_ = std::move(record);
  log::write(*log::get("dump"), spdlog::level::info,
             fmt::format("dump job {}: target {}, output {}", dump_running_->id, dump_running_->target,
                         dump_running_->output),
             job_fields("dump", dump_running_->id));
  reply(DumpAcceptedReply{dump_running_->id}, false);
}

// The dump is written and its copy is up: the client hears how to connect and may go; the
// job holds the scratch slot until the copy is stopped.
void JobRunner::on_dump_kept(std::uint64_t id, const KeptCopy& kept, const ControlReply& reply) {
  if (!dump_running_ || dump_running_->id != id) return;
  const auto iso = [](std::chrono::system_clock::time_point t) {
    return format_iso_utc(std::chrono::floor<Microseconds>(t));
  };
  dump_running_->kept_at = services_.clock.now();
  dump_running_->kept = DumpKeptReply{kept.socket_dir, kept.port,       kept.user,      kept.database,
                                      kept.pod,        iso(kept.since), iso(kept.until)};
  reply(*dump_running_->kept, false);
}

void JobRunner::stop_kept_dump(ControlReply reply) {
  const auto refuse = [&reply](const Error& error) { reply(RefusedReply{reply_error(error)}, true); };
  if (!dump_running_ || !dump_running_->keep_running)
    return refuse(make_error(ErrorKind::environment, "no dump's copy is kept running in this agent",
                             "`agent dump --keep-running` keeps one; `agent status` shows what runs"));
  if (!dump_running_->kept)
    return refuse(make_error(ErrorKind::environment,
                             "dump job " + std::to_string(dump_running_->id) +
                                 " has not finished its dump yet; its copy is kept once the dump is written",
                             "wait until `agent status` shows the kept copy, then stop it"));
  log::write(*log::get("dump"), spdlog::level::info,
             fmt::format("dump job {}: stopping the kept copy (agent dump --stop)", dump_running_->id),
             job_fields("dump", dump_running_->id));
  dump_running_->stop_keeping->cancel();
  dump_running_->stop_waiters.push_back(std::move(reply));
}

void JobRunner::on_dump_finished(Result<DumpSummary> summary, ControlReply reply) {
  metrics_.end_restore_progress();  // however the job ended
  DumpFinishedReply finished{ReplyError{}};
  if (summary) {
    finished.outcome =
        DumpWritten{summary->output,       summary->manifest_path, summary->bytes,      summary->checksum,
                    summary->backup_label, summary->repo,          summary->gap_seconds};
    double seconds = 0;
    // The dump's own time: a kept copy's inspection is not part of it.
    for (const auto& timing : summary->timings)
      if (timing.step != "keep-running") seconds += timing.seconds;
    metrics_.record_dump(DumpResult{dump_running_->kept_at.value_or(services_.clock.now()), seconds,
                                    summary->bytes, summary->gap_seconds});
  } else {
    log::error(*log::get("dump"), summary.error(), "dump job " + std::to_string(dump_running_->id),
               spdlog::level::err, job_fields("dump", dump_running_->id));
    metrics_.record_dump_failed(services_.clock.now());
    finished.outcome = reply_error(summary.error());
  }
  dump_running_->outcome = control_reply_json(finished);
  const auto stop_waiters = std::move(dump_running_->stop_waiters);
  dump_running_->stop_waiters.clear();
  dump_running_->stop_keeping.reset();
  dump_running_->kept.reset();
  dump_last_ = std::move(dump_running_);
  dump_running_.reset();
  reply(finished, true);
  for (const auto& waiter : stop_waiters) waiter(finished, true);
  if (stopping_) return finish_if_idle();
  start_next_drill();
}

void JobRunner::enqueue_drill(const DrillRequest& request) {
  auto logger = log::get("queue");
  if (stopping_) {
    logger->warn("{} ignored: the agent is shutting down", request.reason);
    count_skip("shutting-down");
    return;
  }
  const AdmissionResult admission = queue_.offer_drill(request);
  if (admission.admission == Admission::merged) {
    logger->info("{} skipped: {}", request.reason, admission.reason);
    count_skip("merged");
    return;
  }
  log::write(*logger, spdlog::level::info,
             fmt::format("job {}: restore drill queued ({}){}", admission.job_id, request.reason,
                         queue_.running() || !queue_.pending().empty()
                             ? "; it waits behind the backups"
                             : (scratch_slot_.busy() ? "; it waits for the scratch directory" : "")),
             job_fields("drill", admission.job_id));
  start_next_drill();
}

void JobRunner::drill(const DrillCommand& command, ControlReply reply) {
  const auto refuse = [&reply](const Error& error) { reply(RefusedReply{reply_error(error)}, true); };
  if (stopping_) return refuse(make_error(ErrorKind::interrupted, "the agent is shutting down"));
  // Another drill's arguments would not be this one's: no merging, unlike the schedule.
  if (const auto& queued = queue_.drill_pending())
    return refuse(make_error(ErrorKind::environment,
                             "a restore drill is already queued (job " + std::to_string(queued->id) + ")",
                             "wait for it (agent status), then ask again"));
  if (drill_running_)
    return refuse(make_error(ErrorKind::environment,
                             "a restore drill is already running (job " + std::to_string(drill_running_->id) +
                                 ", step " + drill_running_->step + ")",
                             "wait for it to finish (agent status), then ask again"));
  if (dump_running_) return refuse(scratch_busy_with_dump());
  if (auto job = build_drill_job(*config_, command.arguments,
                                 std::chrono::floor<Microseconds>(services_.clock.now()));
      !job)
    return refuse(job.error());

  const DrillRequest request{Trigger::manual, "agent drill", services_.clock.now()};
  const AdmissionResult admission = queue_.offer_drill(request);
  const std::string waits = queue_.running() || !queue_.pending().empty() || backup_slot_in_use()
                                ? "it waits behind the backups"
                                : "";
  log::write(*log::get("queue"), spdlog::level::info,
             fmt::format("job {}: restore drill queued (agent drill){}", admission.job_id,
                         waits.empty() ? "" : "; " + waits),
             job_fields("drill", admission.job_id));
  drill_clients_[admission.job_id] = DrillClient{command.arguments, reply};
  reply(DrillAcceptedReply{admission.job_id, waits}, false);
  start_next_drill();
}

void JobRunner::start_next_drill() {
  // Behind the backups' line, annotations included (they write the repository's backup.info).
  if (stopping_ || annotating_ || !annotations_.empty()) return;
  auto drill = queue_.start_drill(scratch_slot_.busy() || dump_running_.has_value());
  if (!drill) return;
  const QueuedDrill queued = *drill;
  // An `agent drill` client's arguments; a scheduled drill is `agent drill --latest`.
  DrillArguments arguments;
  arguments.latest = true;
  if (const auto client = drill_clients_.find(queued.id); client != drill_clients_.end())
    arguments = client->second.arguments;
  auto started = scratch_slot_.start<DrillReport>(
      [this, queued, arguments, config = config_](const CancelToken& cancel) -> DrillReport {
        log::ScopedJob in_job("drill", std::to_string(queued.id));
        auto copier = services_.make_copier();
        DumpServices services{services_.runner, services_.connector, *copier, services_.clock, cancel, {}};
        services.on_restore_progress = [this](std::uint64_t done, std::uint64_t total) {
          metrics_.record_restore_progress("drill", done, total);
        };
        services.on_step = [this](const std::string& step, const std::string& state, double seconds) {
          scratch_slot_.mark_progress();
          if (step == "restore" && state != "started") metrics_.end_restore_progress();
          boost::asio::post(io_, [this, step, state, seconds] { on_drill_step(step, state, seconds); });
        };
        auto job =
            build_drill_job(*config, arguments, std::chrono::floor<Microseconds>(services_.clock.now()));
        if (!job) {
          DrillReport report;
          report.result = "error";
          report.error = job.error();
          report.trigger = trigger_name(queued.request.trigger);
          return report;
        }
        job->trigger = trigger_name(queued.request.trigger);
        return run_drill(*job, services);
      },
      [](const std::string& what) {
        DrillReport report;
        report.result = "error";
        report.error =
            make_error(ErrorKind::internal, "the drill failed with an unexpected exception: " + what,
                       "this is a bug in the agent; the agent goes on running");
        return report;
      },
      [this](DrillReport report) { on_drill_finished(report); });
  if (!started) {
    log::error(*log::get("drill"), started.error(),
               "drill job " + std::to_string(queued.id) + " could not start", spdlog::level::err,
               job_fields("drill", queued.id));
    queue_.finish_drill();
    if (auto client = drill_clients_.extract(queued.id))
      client.mapped().reply(DrillFinishedReply{reply_error(started.error())}, true);
    return;
  }
  drill_running_ = DrillRecord{queued.id, queued.request.reason, services_.clock.now(), "check"};
  log::write(*log::get("drill"), spdlog::level::info,
             fmt::format("drill job {} started ({})", queued.id, queued.request.reason),
             job_fields("drill", queued.id));
}

// Once the drill reads only its paused copy (its checks, the copy's shutdown, pg_checksums),
// the backups that waited start beside it.
void JobRunner::on_drill_step(const std::string& step, const std::string& state, double seconds) {
  if (!drill_running_) return;
  if (const auto client = drill_clients_.find(drill_running_->id); client != drill_clients_.end())
    client->second.reply(StepReply{"drill", step, state, seconds}, false);
  if (state == "started") drill_running_->step = step;
  if (step == "checks" && state == "started" && queue_.drill_reads_repository()) {
    queue_.drill_released_repository();
    start_next_job();
    update_queue_metrics();
  }
}

void JobRunner::on_drill_finished(const DrillReport& report) {
  metrics_.end_restore_progress();  // however the job ended
  const std::uint64_t id = drill_running_ ? drill_running_->id : 0;
  if (report.error && report.id.empty())  // it never ran: run_drill logs its own outcome
    log::error(*log::get("drill"), *report.error, "drill job " + std::to_string(id), spdlog::level::err,
               job_fields("drill", id));
  log::write(*log::get("drill"), report.result == "passed" ? spdlog::level::info : spdlog::level::err,
             fmt::format("drill job {} ended: {}", id, report.result), job_fields("drill", id));
  if (auto client = drill_clients_.extract(id)) client.mapped().reply(drill_finished_reply(report), true);
  queue_.finish_drill();
  drill_running_.reset();
  if (stopping_) {
    if (auto annotation = drill_annotation(*config_, report))
      log::get("drill")->warn(
          "drill {}: its result is not recorded on backup set {}: the agent is shutting down",
          annotation->drill_id, annotation->label);
    return finish_if_idle();
  }
  if (auto annotation = drill_annotation(*config_, report)) annotations_.push_back(std::move(*annotation));
  if (auto note = narrowed_drill_note(*config_, report)) log::get("drill")->info("{}", *note);
  start_next_job();
  start_next_drill();
  update_queue_metrics();
}

void JobRunner::drain(std::chrono::seconds grace, std::function<void()> on_idle) {
  if (stopping_) return;
  stopping_ = true;
  on_idle_ = std::move(on_idle);
  // A dump's or drill's temporary server is stopped at once: it is a copy, nothing is lost. A
  // backup running beside it keeps its grace period (stop_now, once that is over, also arms
  // the hard stop for the copy).
  if (dump_running_ || drill_running_) {
    if (backup_slot_in_use())
      scratch_slot_.cancel(SIGTERM);
    else
      stop_now("shutting down");
  }
  if (!annotations_.empty())
    log::get("drill")->warn(
        "{} drill result(s) not recorded on their backup sets: the agent is shutting down",
        annotations_.size());
  annotations_.clear();
  if (!backup_slot_in_use() && !dump_running_ && !drill_running_) return finish_if_idle();
  if (!backup_slot_in_use()) return;
  grace_timer_->start(grace, [this] {
    log::get("agent")->warn("grace period over: stopping the running job");
    stop_now("the grace period is over");
  });
}

void JobRunner::stop_now(const char* why) {
  if (queue_.running() && !backup_slot_.finished()) job_stopped_by_shutdown_ = true;
  backup_slot_.cancel(SIGTERM);
  scratch_slot_.cancel(SIGTERM);
  if ((!backup_slot_in_use() && !dump_running_ && !drill_running_) || hard_stop_armed_) return;
  hard_stop_armed_ = true;
  log::get("agent")->info("{}: the running job has {} s to stop", why, kHardStopAfter.count());
  hard_stop_timer_->start(kHardStopAfter, [this] { exit_if_still_busy(); });
}

// A job blocked where cancellation cannot reach (a connection attempt to a server that does
// not answer) must not keep the pod from stopping: the agent exits, its children get their
// death signal, and the journal runs the request again after the restart.
void JobRunner::exit_if_still_busy() {
  const bool backup_busy = backup_slot_in_use() && !backup_slot_.finished();
  const bool dump_busy = (dump_running_ || drill_running_) && !scratch_slot_.finished();
  if (!backup_busy && !dump_busy) return;  // its end is already on its way to the loop
  log::get("agent")->error("the running job did not stop within {} s of being told to; exiting now",
                           kHardStopAfter.count());
  services_.exit_now(exit_code_for(ErrorKind::interrupted));
}

void JobRunner::finish_if_idle() {
  if (backup_slot_in_use() || dump_running_ || drill_running_ || !on_idle_) return;
  grace_timer_->cancel();
  hard_stop_timer_->cancel();
  for (auto& [id, replies] : waiters_)
    for (auto& reply : replies)
      reply(AbandonedReply{journal_ ? "the agent stopped before the job ran; it runs when the agent is back"
                                    : "the agent stopped before the job ran"},
            true);
  waiters_.clear();
  for (auto& [id, client] : drill_clients_)  // queued drills that never started
    client.reply(AbandonedReply{"the agent stopped before the drill ran; ask again when it is back"}, true);
  drill_clients_.clear();
  auto on_idle = std::move(on_idle_);
  on_idle_ = nullptr;
  on_idle();
}

void JobRunner::journal_finished(std::uint64_t job_id) {
  auto ids = journal_ids_by_job_.extract(job_id);
  if (ids.empty() || !journal_) return;
  for (auto id : ids.mapped())
    if (auto s = journal_->finished(id); !s)
      log::get("queue")->warn("request journal: {}", s.error().message);
}

void JobRunner::count_skip(const std::string& reason, std::uint64_t count) {
  if (count == 0) return;
  skipped_[reason] += count;
  metrics_.record_skip(reason, count);
}

void JobRunner::update_queue_metrics() {
  const auto& running = queue_.running();
  metrics_.set_queue(queue_.pending().size(),
                     running ? std::optional<BackupType>(running->request.type) : std::nullopt);
}

// A backup that shows no sign of life past run.stuck_seconds fails liveness: a restart ends
// it, and the request journal runs it again. Dumps are not watched: a long pg_dump step prints
// nothing, and its own deadlines belong to the dump.
std::vector<probes::RunningJob> JobRunner::running_jobs() const {
  std::vector<probes::RunningJob> jobs;
  if (const auto& job = queue_.running())
    jobs.push_back(probes::RunningJob{
        "backup job " + std::to_string(job->id) + " (" + backup_type_name(job->request.type) + ")",
        backup_slot_.last_progress(), std::chrono::seconds(config_->run.stuck_seconds)});
  return jobs;
}

}  // namespace agent
