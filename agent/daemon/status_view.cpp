#include "daemon/status_view.hpp"

#include <date/tz.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/version.hpp"
#include "pipelines/disk_watch.hpp"
#include "pipelines/kept_copy.hpp"
#include "time/target_time.hpp"

namespace agent {

namespace {
std::string iso(std::chrono::system_clock::time_point t) {
  return format_iso_utc(std::chrono::floor<Microseconds>(t));
}

nlohmann::json repo_json(int repo) {
  return repo > 0 ? nlohmann::json(repo) : nlohmann::json(nullptr);
}

nlohmann::json backup_request_json(std::uint64_t id, const BackupRequest& request) {
  return {{"job_id", id},
          {"repo", repo_json(request.repo)},
          {"type", backup_type_name(request.type)},
          {"trigger", trigger_name(request.trigger)},
          {"reason", request.reason},
          {"requested_at", iso(request.requested_at)}};
}

nlohmann::json text_or_null(const std::string& text) {
  return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
}

nlohmann::json dump_json(const std::optional<JobRunner::DumpRecord>& record) {
  if (!record) return nullptr;
  nlohmann::json json = {{"job_id", record->id},
                         {"target", record->target},
                         {"output", record->output},
                         {"started_at", iso(record->started)},
                         {"outcome", record->outcome}};
  // --keep-running: null until the dump is written and its copy is up; then how to reach it.
  if (record->keep_running) {
    json["kept"] = nullptr;
    if (const auto& kept = record->kept) {
      json["kept"] = dump_kept_json(*kept);
      const std::string psql = kept_copy_psql(kept->socket_dir, kept->port, kept->user, kept->database);
      json["kept"]["psql"] = psql;
      json["kept"]["oc_exec"] = kept_copy_oc_exec(kept->pod, psql);
    }
  }
  return json;
}

std::string epoch_iso(std::int64_t epoch) {
  return format_iso_utc(SysMicros{std::chrono::seconds{epoch}});
}

// Each repository as the last `pgbackrest info` left it.
nlohmann::json repositories_json(const StatusSources& s) {
  nlohmann::json list = nlohmann::json::array();
  if (s.metrics == nullptr) return list;
  for (const auto& repo : s.metrics->repositories()) list.push_back(repository_summary_json(repo));
  return list;
}

// The backup a successful job made: the newest of its type in its repository that started
// after the job did (read from the repository after the job).
nlohmann::json job_backup_json(const BackupResult& result) {
  if (result.outcome != BackupOutcome::succeeded || !result.info) return nullptr;
  const auto started = std::chrono::floor<std::chrono::seconds>(result.started).time_since_epoch().count();
  const BackupRecord* made = nullptr;
  for (const auto& backup : result.info->backups)
    if (!backup.error && backup.type == backup_type_name(result.request.type) &&
        (result.repo == 0 || repo_of(backup) == result.repo) && backup.start_epoch >= started - 1 &&
        (made == nullptr || backup.start_epoch > made->start_epoch))
      made = &backup;
  if (made == nullptr) return nullptr;
  return {{"label", made->label},
          {"repo", repo_of(*made)},
          {"start", epoch_iso(made->start_epoch)},
          {"stop", epoch_iso(made->stop_epoch)},
          {"size_bytes", made->database_bytes},
          {"repository_size_bytes", made->repo_bytes}};
}

// Bytes done and in all, and the percentage; null when the total is not known.
nlohmann::json progress_json(std::uint64_t bytes_done, std::uint64_t bytes_total) {
  if (bytes_total == 0) return nullptr;
  const double percent = 100.0 * static_cast<double>(bytes_done) / static_cast<double>(bytes_total);
  return {
      {"bytes_done", bytes_done}, {"bytes_total", bytes_total}, {"percent", std::round(percent * 10) / 10}};
}

// The running backup's bytes done and in all (pgBackRest 2.48+); null until pgBackRest says.
nlohmann::json progress_json(const std::optional<BackupProgress>& progress) {
  if (!progress) return nullptr;
  return progress_json(progress->bytes_done, progress->bytes_total);
}

// The restore of the running dump or drill (`kind`); null before its first file, or when the
// running restore is the other kind's.
nlohmann::json restore_progress_json(const StatusSources& s, const std::string& kind) {
  const auto progress = s.metrics != nullptr ? s.metrics->restore_progress() : std::nullopt;
  if (!progress || progress->kind != kind) return nullptr;
  return progress_json(progress->bytes_done, progress->bytes_total);
}

// "2026-11-30 03:00:00 PST": a schedule's next time as its zone reads it.
nlohmann::json local_time_json(std::chrono::sys_seconds instant, const std::string& zone_name) {
  try {
    const auto* zone = date::locate_zone(zone_name.empty() ? "UTC" : zone_name);
    return date::format("%F %T %Z", date::make_zoned(zone, instant));
  } catch (const std::exception&) {
    return nullptr;
  }
}

// The last drill as its manifest (state_dir/drills/last.json) says, whoever ran it (this agent
// or `agent drill` on its own), without the list of tables read; null when there is none.
nlohmann::json last_drill_json(const std::string& state_dir) {
  std::ifstream file(state_dir + "/drills/last.json");
  if (!file) return nullptr;
  std::stringstream text;
  text << file.rdbuf();
  auto manifest = nlohmann::json::parse(text.str(), nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object()) return nullptr;
  manifest.erase("tables");
  return manifest;
}

nlohmann::json drill_json(const StatusSources& s) {
  nlohmann::json schedule = nullptr;
  if (const auto* timer = s.triggers.drill_schedule())
    schedule = {{"cron", timer->cron().text},
                {"timezone", s.config.schedules.timezone},
                {"next", timer->next() ? nlohmann::json(format_iso_utc(SysMicros{*timer->next()}))
                                       : nlohmann::json(nullptr)},
                {"next_local", timer->next() ? local_time_json(*timer->next(), s.config.schedules.timezone)
                                             : nlohmann::json(nullptr)}};
  nlohmann::json queued = nullptr;
  if (const auto& drill = s.jobs.queue().drill_pending())
    queued = {{"job_id", drill->id},
              {"reason", drill->request.reason},
              {"requested_at", iso(drill->request.requested_at)}};
  nlohmann::json running = nullptr;
  if (const auto& drill = s.jobs.drill_running())
    running = {{"job_id", drill->id},
               {"reason", drill->reason},
               {"started_at", iso(drill->started)},
               {"step", drill->step},
               {"reads_repository", s.jobs.queue().drill_reads_repository()},
               {"restore_progress", restore_progress_json(s, "drill")}};
  nlohmann::json annotating = nullptr;
  if (const auto& annotation = s.jobs.annotation_running())
    annotating = {{"drill", annotation->drill_id},
                  {"backup_set", annotation->label},
                  {"repo", annotation->target.repo}};
  return {{"schedule", schedule},
          {"queued", queued},
          {"running", running},
          {"annotating", annotating},
          {"annotations_waiting", s.jobs.annotations_waiting()},
          {"last", last_drill_json(s.config.state_dir)}};
}

nlohmann::json annotation_json(const StatusSources& s) {
  const auto trigger = s.triggers.annotation_status();
  const HandledValues* handled = s.triggers.handled_values();
  if (!trigger || !handled) return nullptr;
  return {{"file", s.config.manual.annotations_file},
          {"key", s.config.manual.annotation},
          {"state", trigger_state_name(trigger->state)},
          {"problem", text_or_null(trigger->problem)},
          {"watch_problem", text_or_null(trigger->watch_problem)},
          {"notice", text_or_null(trigger->notice)},
          {"reads", trigger->reads},
          {"last_value", handled->last_value() ? nlohmann::json(*handled->last_value()) : nullptr},
          {"last_handled_at",
           handled->last_handled_at() ? nlohmann::json(iso(*handled->last_handled_at())) : nullptr}};
}
}  // namespace

std::string backup_progress_text(nlohmann::json progress) {
  const auto done = progress.value("bytes_done", std::uint64_t{0});
  const auto total = progress.value("bytes_total", std::uint64_t{0});
  char percent[32];
  std::snprintf(percent, sizeof percent, " (%.1f%%)", progress.value("percent", 0.0));
  return human_bytes(done) + " of " + human_bytes(total) + percent;
}

nlohmann::json repository_summary_json(const RepositorySummary& repo) {
  nlohmann::json newest = nlohmann::json::object();
  for (const auto& [type, backup] : repo.newest_by_type)
    newest[type] = {{"label", backup.label},
                    {"start", epoch_iso(backup.start_epoch)},
                    {"stop", epoch_iso(backup.stop_epoch)},
                    {"size_bytes", backup.database_bytes},
                    {"repository_size_bytes", backup.repo_bytes}};
  nlohmann::json window = nullptr;
  if (repo.window_start_epoch && repo.window_end_epoch)
    window = {{"start", epoch_iso(*repo.window_start_epoch)},
              {"end", epoch_iso(*repo.window_end_epoch)},
              {"end_source", repo.window_end_from_wal ? "wal" : "backup"}};
  return {{"repo", repo.repo},
          {"readable", repo.readable},
          {"problem", text_or_null(repo.problem)},
          {"last_read", repo.last_read_epoch ? nlohmann::json(epoch_iso(*repo.last_read_epoch)) : nullptr},
          {"backups", repo.backups},
          {"newest", newest},
          {"window", window}};
}

nlohmann::json recent_result_json(const BackupResult& result) {
  auto item = backup_report_json(backup_report(result));
  item["finished_at"] = iso(result.started + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                                 std::chrono::duration<double>(result.seconds)));
  item["backup"] = job_backup_json(result);
  return item;
}

nlohmann::json status_json(const StatusSources& s) {
  nlohmann::json queue = nlohmann::json::array();
  for (const auto& job : s.jobs.queue().pending()) queue.push_back(backup_request_json(job.id, job.request));
  nlohmann::json running = nullptr;
  if (const auto& job = s.jobs.queue().running()) {
    running = backup_request_json(job->id, job->request);
    if (const auto since = s.jobs.running_since()) running["started_at"] = iso(*since);
    running["progress"] = progress_json(s.metrics != nullptr ? s.metrics->backup_progress() : std::nullopt);
  }
  nlohmann::json recent = nlohmann::json::array();
  if (s.history)
    for (const auto& entry : s.history->entries()) recent.push_back(entry);
  else
    for (const auto& result : s.jobs.recent()) recent.push_back(recent_result_json(result));
  nlohmann::json schedules = nlohmann::json::array();
  for (const auto& schedule : s.triggers.schedules()) {
    schedules.push_back(
        {{"type", backup_type_name(schedule->type())},
         {"repo", repo_json(schedule->repo())},
         {"cron", schedule->cron().text},
         {"timezone", s.config.schedules.timezone},
         {"next", schedule->next() ? nlohmann::json(format_iso_utc(SysMicros{*schedule->next()}))
                                   : nlohmann::json(nullptr)},
         {"next_local", schedule->next() ? local_time_json(*schedule->next(), s.config.schedules.timezone)
                                         : nlohmann::json(nullptr)}});
  }
  nlohmann::json dump = {{"running", dump_json(s.jobs.dump_running())},
                         {"last", dump_json(s.jobs.dump_last())}};
  if (dump["running"].is_object()) dump["running"]["restore_progress"] = restore_progress_json(s, "dump");
  return {{"agent_version", kAgentVersion},
          {"dump", dump},
          {"drill", drill_json(s)},
          {"stanza", s.config.stanza},
          {"started_at", iso(s.started_at)},
          {"stopping", s.jobs.stopping()},
          {"running", running},
          {"queue", queue},
          {"recent", recent},
          {"skipped", s.jobs.skipped()},
          {"schedules", schedules},
          {"schedules_refused", text_or_null(s.triggers.schedules_refused())},
          {"repositories", repositories_json(s)},
          {"repository_read_error",
           s.metrics != nullptr ? text_or_null(s.metrics->read_error()) : nlohmann::json(nullptr)},
          {"annotation", annotation_json(s)},
          {"state",
           {{"dir", s.config.state_dir},
            {"problem", text_or_null(s.state_problem)},
            {"journaled_requests",
             s.journal ? nlohmann::json(s.journal->requests().size()) : nlohmann::json(nullptr)},
            {"abandoned", nlohmann::json(s.jobs.abandoned())}}}};
}

}  // namespace agent
