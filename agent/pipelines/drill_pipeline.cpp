#include "pipelines/drill_pipeline.hpp"

#include <date/date.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/files.hpp"
#include "core/log.hpp"
#include "core/version.hpp"
#include "exec/commands.hpp"
#include "jobs/cron.hpp"
#include "pipelines/pgbackrest_access.hpp"

namespace agent {

std::uint64_t DrillReport::objects_checked() const {
  std::uint64_t total = 0;
  for (const auto& c : findings.checks) total += c.checked;
  return total;
}

std::uint64_t DrillReport::objects_failed() const {
  std::uint64_t total = 0;
  for (const auto& c : findings.checks) total += c.failed;
  return total;
}

std::string DrillReport::first_failure() const {
  for (const auto& c : findings.checks)
    if (c.result == "failed")
      return c.name + (c.database.empty() ? "" : " in " + c.database) +
             (c.first_failure.empty() ? "" : ": " + c.first_failure) +
             (c.reason.empty() ? "" : " (" + c.reason + ")");
  return "";
}

int drill_exit_code(const DrillReport& report) {
  if (report.error) return exit_code_for(report.error->kind);
  return report.result == "passed" ? 0 : exit_code_for(ErrorKind::verification);
}

namespace {

// The newest manifests stay; older ones go.
constexpr std::size_t kManifestsKept = 20;

void prune_manifests(const std::string& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name != "last.json" && name.size() > 5 && name.substr(name.size() - 5) == ".json")
      files.push_back(it->path());
  }
  if (files.size() <= kManifestsKept) return;
  std::sort(files.begin(), files.end());
  for (std::size_t i = 0; i + kManifestsKept < files.size(); ++i) std::filesystem::remove(files[i], ec);
}

}  // namespace

std::string drill_manifest_json(const DrillReport& report, const DrillJob& job) {
  nlohmann::json durations = nlohmann::json::object();
  for (const auto& t : report.timings) durations[t.step] = t.seconds;
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& c : report.findings.checks)
    checks.push_back({{"check", c.name},
                      {"database", c.database.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.database)},
                      {"result", c.result},
                      {"checked", c.checked},
                      {"failed", c.failed},
                      {"first_failure",
                       c.first_failure.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.first_failure)},
                      {"reason", c.reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.reason)}});
  nlohmann::json tables = nlohmann::json::array();
  for (const auto& t : report.findings.tables)
    tables.push_back({{"database", t.database}, {"table", t.table}, {"rows", t.rows}});
  const auto& copy = report.copy;
  nlohmann::json manifest = {
      {"agent_version", kAgentVersion},
      {"drill", report.id},
      {"stanza", job.copy.config.stanza},
      {"trigger", report.trigger},
      {"result", report.result},
      {"error", report.error ? nlohmann::json{{"message", report.error->message},
                                              {"hint", report.error->hint},
                                              {"kind", error_kind_name(report.error->kind)}}
                             : nlohmann::json(nullptr)},
      {"first_failure", report.first_failure().empty() ? nlohmann::json(nullptr) : nlohmann::json(report.first_failure())},
      {"mode", report.mode},
      {"target", report.target},
      {"backup_set",
       copy.backup_label.empty()
           ? nlohmann::json(nullptr)
           : nlohmann::json{{"label", copy.backup_label},
                            {"type", copy.backup_type},
                            {"repo", copy.backup_repo},
                            {"stop", format_iso_utc(SysMicros{std::chrono::seconds{copy.backup_stop_epoch}})}}},
      // --repo, drill.repo or pgbackrest.repo; null: pgBackRest chose (backup_set.repo says which).
      {"repo_requested", job.copy.repo > 0 ? nlohmann::json(job.copy.repo) : nlohmann::json(nullptr)},
      {"replay_timestamp",
       copy.replayed_to ? nlohmann::json(format_iso_utc(*copy.replayed_to)) : nlohmann::json(nullptr)},
      // The target minus the last replayed commit: for --latest, whose target is the drill's
      // start, what a restore now would lose (the measured RPO).
      {"replay_gap_seconds", copy.backup_label.empty() ? nlohmann::json(nullptr) : nlohmann::json(copy.gap_seconds)},
      {"recovery_stop", copy.end_of_archive ? "end_of_archived_wal" : "target"},
      // Every step from the check to the copy paused at the target is what a restore takes
      // (the measured RTO: restore_seconds); the rest is the drill's own reading.
      {"durations_seconds", durations},
      {"restore_seconds",
       [&] {
         double sum = 0;
         for (const auto& t : report.timings)
           if (t.step == "check" || t.step == "prepare" || t.step == "restore" || t.step == "start" ||
               t.step == "wait" || t.step == "verify")
             sum += t.seconds;
         return sum;
       }()},
      {"total_seconds", report.total_seconds},
      {"data_checksums", report.findings.data_checksum_version < 0
                             ? nlohmann::json(nullptr)
                             : nlohmann::json(report.findings.data_checksum_version > 0)},
      {"objects_checked", report.objects_checked()},
      {"objects_failed", report.objects_failed()},
      {"checks", checks},
      {"tables", tables},
      {"finished_at", format_iso_utc(SysMicros{std::chrono::seconds{report.finished_epoch}})},
  };
  return manifest.dump(2) + "\n";
}

DrillReport run_drill(const DrillJob& job, DumpServices& services) {
  auto logger = log::get("drill");
  DrillReport report;
  const auto started = services.clock.now();
  report.id = date::format("%Y%m%dT%H%M%SZ", std::chrono::floor<std::chrono::seconds>(started));
  report.mode = job.mode;
  report.trigger = job.trigger;
  report.narrowed_by_caller = job.narrowed_by_caller;
  report.target = format_iso_utc(job.copy.target.instant);
  logger->info(
      "drill {}: {} (target {}), databases: {}", report.id, job.mode, report.target,
      job.databases.empty() ? std::string("all") : [&] {
        std::string names;
        for (const auto& d : job.databases) names += (names.empty() ? "" : ", ") + d;
        return names;
      }());

  CopyWork work;
  work.to_end_of_archive = job.mode != "target";
  work.logger = "drill";
  work.repository_step = "pgbackrest-verify";
  work.repository_check = [&](const PausedCopy& copy) -> Status {
    // The set pgBackRest restored, in its repository; the version decides whether verify can
    // be asked about one set.
    auto version = read_pgbackrest_version(job.copy.config, services.runner, services.cancel);
    if (!version) return version.error();
    auto check = run_repository_verify(services.runner, pgbackrest_target(job.copy.config, copy.backup_repo),
                                       *version, copy.backup_label, services.cancel);
    if (services.cancel.get().cancelled())
      return make_error(ErrorKind::interrupted, "interrupted during pgbackrest verify");
    if (check.result == "skipped")
      logger->info("pgbackrest-verify: skipped: {}", check.reason);
    else
      logger->info("pgbackrest-verify: {} ({} files, {} invalid{}{})", check.result, check.checked,
                   check.failed, check.first_failure.empty() ? "" : ", first " + check.first_failure,
                   check.reason.empty() ? "" : ": " + check.reason);
    report.findings.checks.push_back(check);
    return {};
  };
  work.inspect_step = "checks";
  work.after_stop_step = "checksums";
  work.inspect = [&](const PausedCopy& copy) -> Status {
    CopyCheckSettings settings;
    settings.conninfo = [copy](const std::string& database) {
      return conninfo(copy.socket_dir, copy.port, copy.user, database);
    };
    settings.databases = job.databases;
    settings.assertions = job.assertions;
    settings.statement_timeout_seconds = job.statement_timeout_seconds;
    return run_copy_checks(services.copier, settings, services.cancel, report.findings);
  };
  work.after_stop = [&](const PausedCopy& copy) -> Status {
    auto check =
        run_checksums_check(services.runner, job.copy.config.postgres.bindir, copy.data_dir,
                            report.findings.data_checksum_version, copy.clean_shutdown, services.cancel);
    if (services.cancel.get().cancelled())
      return make_error(ErrorKind::interrupted, "interrupted during pg_checksums");
    logger->info("checksums: {} ({} blocks, {} bad{}{})", check.result, check.checked, check.failed,
                 check.first_failure.empty() ? "" : ", first " + check.first_failure,
                 check.reason.empty() ? "" : ": " + check.reason);
    report.findings.checks.push_back(check);
    return {};
  };
  auto outcome = run_on_paused_copy(job.copy, services, work);
  report.copy = outcome.copy;
  report.timings = outcome.timings;
  for (const auto& t : report.timings) report.total_seconds += t.seconds;
  report.finished_epoch =
      std::chrono::duration_cast<std::chrono::seconds>(services.clock.now().time_since_epoch()).count();
  if (!outcome.status) {
    report.result = "error";
    report.error = outcome.status.error();
  } else {
    report.result = report.findings.failed() ? "failed" : "passed";
  }

  if (auto s = ensure_private_directory(job.manifest_dir); !s) {
    logger->error("cannot write the drill's manifest: {}", s.error().describe());
  } else {
    const std::string text = drill_manifest_json(report, job);
    const std::string path = job.manifest_dir + "/" + report.id + ".json";
    if (auto w = write_file_atomically(path, text); !w) {
      logger->error("cannot write the drill's manifest: {}", w.error().describe());
    } else if (auto l = write_file_atomically(job.manifest_dir + "/last.json", text); !l) {
      logger->error("cannot write the drill's manifest: {}", l.error().describe());
    } else {
      report.manifest_path = path;
      prune_manifests(job.manifest_dir);
    }
  }
  if (report.result == "passed")
    logger->info(
        "drill {} passed: {} objects checked, replay gap {:.3f} s, restore and checks {:.2f} s; manifest {}",
        report.id, report.objects_checked(), report.copy.gap_seconds, report.total_seconds,
        report.manifest_path);
  else if (report.result == "failed")
    logger->error("drill {} FAILED: {} of {} objects failed; first: {}; manifest {}", report.id,
                  report.objects_failed(), report.objects_checked(), report.first_failure(),
                  report.manifest_path);
  else
    logger->error("drill {} could not run: {}; manifest {}", report.id, report.error->describe(),
                  report.manifest_path);
  return report;
}

std::optional<DrillManifestSummary> parse_drill_manifest(const std::string& text) {
  const auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object() || !json.contains("drill") || !json.contains("result"))
    return std::nullopt;
  try {
    DrillManifestSummary summary;
    summary.id = json.at("drill").get<std::string>();
    summary.result = json.at("result").get<std::string>();
    const auto finished = parse_target_time(json.at("finished_at").get<std::string>());
    if (!finished) return std::nullopt;
    summary.finished_epoch =
        std::chrono::floor<std::chrono::seconds>(finished->instant).time_since_epoch().count();
    summary.total_seconds = json.value("total_seconds", 0.0);
    if (json.contains("durations_seconds") && json["durations_seconds"].is_object())
      for (const auto& [phase, seconds] : json["durations_seconds"].items())
        if (seconds.is_number()) summary.phase_seconds[phase] = seconds.get<double>();
    if (json.contains("replay_gap_seconds") && json["replay_gap_seconds"].is_number())
      summary.replay_gap_seconds = json["replay_gap_seconds"].get<double>();
    summary.objects_checked = json.value("objects_checked", std::uint64_t{0});
    summary.objects_failed = json.value("objects_failed", std::uint64_t{0});
    return summary;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

DrillHistory read_drill_history(const std::string& dir) {
  DrillHistory history;
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name != "last.json" && name.size() > 5 && name.substr(name.size() - 5) == ".json")
      files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    auto summary = parse_drill_manifest(text.str());
    if (!summary) continue;
    auto& slot = summary->result == "passed" ? history.last_success : history.last_failure;
    slot = std::max(slot.value_or(summary->finished_epoch), summary->finished_epoch);
    history.drills.push_back(std::move(*summary));
  }
  return history;
}

double drill_max_age_seconds(const AgentConfig& config, std::chrono::system_clock::time_point now) {
  if (config.drill.max_age_hours > 0) return config.drill.max_age_hours * 3600.0;
  constexpr double kDefault = 8 * 86400.0;
  if (config.schedules.drill.empty()) return kDefault;
  auto cron = parse_cron(config.schedules.drill);
  if (!cron) return kDefault;
  const date::time_zone* zone = nullptr;
  try {
    zone = date::locate_zone(config.schedules.timezone);
  } catch (const std::exception&) {
    return kDefault;
  }
  const auto first = next_fire(*cron, *zone, std::chrono::floor<std::chrono::seconds>(now));
  if (!first) return kDefault;
  const auto second = next_fire(*cron, *zone, *first);
  if (!second) return kDefault;
  return 2.0 * static_cast<double>((*second - *first).count()) + 3600.0;
}

}  // namespace agent
