#include "pipelines/backup_pipeline.hpp"

#include <algorithm>

#include "core/log.hpp"
#include "core/version.hpp"
#include "exec/commands.hpp"
#include "pipelines/pgbackrest_access.hpp"
#include "pipelines/pipeline.hpp"

namespace agent {

BackupAnnotations backup_annotations(const BackupRequest& request) {
  // An annotation's value comes from the pod's annotations: no control characters in the
  // repository's info, and a bound on its size, not cut inside a UTF-8 character.
  constexpr std::size_t kMaxRequestBytes = 256;
  std::size_t length = std::min(request.reason.size(), kMaxRequestBytes);
  if (length < request.reason.size())
    while (length > 0 && (static_cast<unsigned char>(request.reason[length]) & 0xC0) == 0x80) --length;
  std::string shown = request.reason.substr(0, length);
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  BackupAnnotations annotations{{"agent-trigger", trigger_name(request.trigger)}};
  if (!shown.empty()) annotations.emplace_back("agent-request", shown);
  annotations.emplace_back("agent-version", kAgentVersion);
  return annotations;
}

namespace {

// The repository a request backs up into: its own, else pgbackrest.repo; 0: pgBackRest's default.
int backup_repo(const AgentConfig& config, const BackupRequest& request) {
  return request.repo > 0 ? request.repo : config.pgbackrest.repo;
}

// pgBackRest's LockAcquireError: another process holds the stanza's backup lock.
constexpr int kPgBackRestLockHeld = 50;

// A process's last lines as one text, for a pattern that may span them.
std::string joined_lines(const ProcessResult& result) {
  std::string text;
  for (const auto& line : result.last_lines) text += line + "\n";
  return text;
}

struct BackupContext {
  const AgentConfig& config;
  const QueuedBackup& job;
  BackupServices& services;
  BackupResult& result;
  std::vector<StepTiming> timings;
};

// Before pgBackRest writes anything: its config is there, the repository answers (a repository
// host of another pgBackRest version refuses the greeting, named as such), and the local
// pgBackRest is not older than the newest that wrote the repository's backups: a backup is
// written on top of them (an incremental reads its prior's manifest).
Status check_step(BackupContext& c) {
  if (auto s = check_pgbackrest_config_files(c.config); !s) return s;
  auto version = read_pgbackrest_version(c.config, c.services.runner, c.services.cancel);
  if (!version) return version.error();
  auto info = read_stanza_info(c.config, c.services.runner, c.services.cancel);
  if (!info) return info.error();
  // A repository pgBackRest does not know would fail in pgBackRest's own option check; said here
  // with the ones it knows.
  if (const int repo = backup_repo(c.config, c.job.request); repo > 0) {
    const auto repos = repositories(*info);
    if (std::none_of(repos.begin(), repos.end(), [&](const RepoStatus& r) { return r.key == repo; }))
      return make_error(
          ErrorKind::usage,
          "repo" + std::to_string(repo) + " is not configured for stanza '" + info->name +
              "' (pgbackrest info lists " + repository_names(repos) + ")",
          "choose one of those with --repo (or schedules.repoN / manual.repo / pgbackrest.repo), "
          "or add repo" +
              std::to_string(repo) + " to pgBackRest's config");
  }
  for (const auto& backup : info->backups)
    if (auto refusal = older_than_writer_refusal(*version, backup, "back up on top of")) return *refusal;
  return {};
}

Status backup_step(BackupContext& c) {
  ProcessSpec spec;
  spec.argv = pgbackrest_backup_argv(pgbackrest_target(c.config, backup_repo(c.config, c.job.request)),
                                     backup_type_name(c.job.request.type), backup_annotations(c.job.request));
  spec.tag = "pgbackrest";
  spec.timeout = std::chrono::seconds(c.config.pgbackrest.backup_timeout_seconds);
  // pgBackRest stops a backup within a second of SIGTERM; the agent's own shutdown has to fit
  // the pod's termination grace.
  spec.kill_grace = std::chrono::seconds(5);
  spec.nice = c.config.pgbackrest.backup_nice;
  // Each file copied prints a DETAIL line (logged at debug, exec/child_lines.cpp): a sign of
  // life for the stuck-job check, even in a backup that takes hours. ERROR and WARN lines keep
  // their level.
  if (c.services.on_progress) spec.on_line = [&c](std::string_view) { c.services.on_progress(); };
  auto result = c.services.runner.run(spec, c.services.cancel);
  // Another process holds the stanza's backup lock (the operator's own schedule, a backup by
  // hand): wait for it rather than fail, within pgbackrest.lock_wait_seconds.
  std::chrono::seconds waited{0};
  std::chrono::seconds pause{15};
  const std::chrono::seconds budget{c.config.pgbackrest.lock_wait_seconds};
  while (result && result->exit_code == kPgBackRestLockHeld && !result->cancelled &&
         waited + pause <= budget) {
    ++c.result.lock_waits;
    log::get("backup")->warn(
        "job {}: another process holds the stanza's backup lock ({}); trying again in {} s", c.job.id,
        result->error_excerpt(1), pause.count());
    if (!c.services.clock.sleep_for(pause, c.services.cancel))
      return make_error(ErrorKind::interrupted, "stopped while waiting for the backup lock");
    waited += pause;
    pause = std::min(pause * 2, std::chrono::seconds(120));
    result = c.services.runner.run(spec, c.services.cancel);
  }
  if (!result) return result.error();
  c.result.pgbackrest_exit_code = result->exit_code;
  if (result->cancelled) return make_error(ErrorKind::interrupted, "pgbackrest backup was stopped");
  if (!result->succeeded()) {
    if (auto refusal = version_mismatch_refusal(joined_lines(*result))) return *refusal;
    const std::string excerpt = result->error_excerpt();
    // pgBackRest before 2.55 backs up only where the repository is (PGO's repository host).
    const bool needs_repository_host =
        excerpt.find("backup command must be run on the repository host") != std::string::npos;
    return make_error(ErrorKind::external_tool, "pgbackrest backup " + result->describe() + ": " + excerpt,
                      needs_repository_host
                          ? "pgBackRest before 2.55 backs up only on the repository host; from the database "
                            "pod, pgbackrest.bin must be the repository host's own version (2.55 or later; "
                            "PGO 5.8 and 6.0 ship 2.56.0)"
                          : "read the pgbackrest lines above in the log");
  }
  return {};
}

}  // namespace

Result<StanzaInfo> read_stanza_info(const AgentConfig& config, ProcessRunner& runner,
                                    const CancelToken& cancel) {
  ProcessSpec spec;
  spec.argv = pgbackrest_info_argv(pgbackrest_target(config, 0));
  spec.tag = "pgbackrest";
  spec.stdout_mode = StdoutMode::capture;
  spec.timeout = std::chrono::seconds(config.pgbackrest.timeout_seconds);
  auto result = runner.run(spec, cancel);
  if (!result) return result.error();
  if (!result->succeeded()) {
    if (auto refusal = version_mismatch_refusal(joined_lines(*result))) return *refusal;
    return make_error(ErrorKind::external_tool,
                      "pgbackrest info " + result->describe() + ": " + result->error_excerpt());
  }
  auto stanzas = parse_info_json(result->stdout_text);
  if (!stanzas) return stanzas.error();
  for (auto& stanza : *stanzas) {
    if (stanza.name != config.stanza) continue;
    if (auto readable = check_stanza_readable(stanza); !readable) return readable.error();
    return stanza;
  }
  return make_error(ErrorKind::usage, "pgbackrest info does not know stanza '" + config.stanza + "'");
}

BackupResult run_backup(const AgentConfig& config, const QueuedBackup& job, BackupServices& services) {
  // Every record of the job, pgBackRest's lines included, carries job.type and job.id.
  log::ScopedJob in_job("backup", std::to_string(job.id));
  auto logger = log::get("backup");
  BackupResult result;
  result.job_id = job.id;
  result.request = job.request;
  result.started = services.clock.now();
  result.repo = backup_repo(config, job.request);
  const auto begin = services.clock.steady_now();
  const auto finish = [&] {
    result.seconds = std::chrono::duration<double>(services.clock.steady_now() - begin).count();
    return result;
  };

  // Only the primary backs up; this pod may be a standby today and the primary tomorrow.
  auto session = services.connector.connect(
      conninfo(config.postgres.host, config.postgres.port, config.postgres.user, "postgres"));
  Result<bool> in_recovery = session ? (*session)->is_in_recovery() : Result<bool>(session.error());
  if (!in_recovery) {
    result.outcome = BackupOutcome::skipped;
    result.skip_reason_code = "server-unreachable";
    result.message = "skipped: the local PostgreSQL server cannot be asked whether it is the primary (" +
                     in_recovery.error().message + ")";
    logger->warn("job {}: {}", job.id, result.message);
    return finish();
  }
  if (*in_recovery) {
    result.outcome = BackupOutcome::skipped;
    result.skip_reason_code = "standby";
    result.message = "skipped: this server is a standby; only the primary backs up";
    logger->info("job {}: {}", job.id, result.message);
    return finish();
  }

  logger->info("job {}: {} backup ({}) started, into {}", job.id, backup_type_name(job.request.type),
               job.request.reason, repo_name(result.repo));
  BackupContext context{config, job, services, result, {}};
  static const std::vector<Step<BackupContext>> steps = {{"check", check_step, nullptr},
                                                         {"backup", backup_step, nullptr}};
  const Status status = run_steps<BackupContext>(steps, context, services.cancel, *logger);
  result.outcome = status ? BackupOutcome::succeeded : BackupOutcome::failed;
  if (!status) {
    result.message = status.error().describe();
    result.cancelled = status.error().kind == ErrorKind::interrupted;
    result.failure_kind = status.error().kind;
  }

  // The repository is the source of truth for what exists now, success or not.
  if (services.read_repository_after) {
    const auto info_begin = std::chrono::steady_clock::now();
    // Cancellable: on shutdown the metrics can do without it, the pod cannot wait for it.
    auto info = read_stanza_info(config, services.runner, services.cancel);
    result.info_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - info_begin).count();
    if (info) {
      result.info = *info;
      // pgBackRest backs up into its lowest-numbered repository when not told which.
      if (result.repo == 0) result.repo = repositories(*info).front().key;
    } else
      logger->warn("job {}: cannot read pgbackrest info after the backup: {}", job.id, info.error().message);
  }
  finish();
  log::Fields timing;
  timing.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(services.clock.steady_now() - begin);
  if (status)
    log::write(*logger, spdlog::level::info,
               fmt::format("job {}: {} backup succeeded in {:.1f} s", job.id,
                           backup_type_name(job.request.type), result.seconds),
               timing);
  else
    log::error(*logger, status.error(),
               fmt::format("job {}: {} backup failed after {:.1f} s", job.id,
                           backup_type_name(job.request.type), result.seconds),
               spdlog::level::err, timing);
  return result;
}

}  // namespace agent
