#include "pipelines/drill_annotation.hpp"

#include <fmt/format.h>

#include "core/log.hpp"
#include "pipelines/pgbackrest_access.hpp"
#include "time/target_time.hpp"

namespace agent {

std::optional<DrillAnnotation> drill_annotation(const AgentConfig& config, const DrillReport& report) {
  if (!config.drill.annotate) return std::nullopt;
  if (report.result != "passed" && report.result != "failed") return std::nullopt;
  if (report.narrowed_by_caller) return std::nullopt;
  if (!is_backup_label(report.copy.backup_label) || report.copy.backup_repo <= 0) return std::nullopt;
  DrillAnnotation annotation;
  annotation.drill_id = report.id;
  annotation.target = pgbackrest_target(config, report.copy.backup_repo);
  annotation.label = report.copy.backup_label;
  annotation.annotations = {
      {"agent-drill-result", report.result},
      {"agent-drill-id", report.id},
      {"agent-drill-finished", format_iso_utc(SysMicros{std::chrono::seconds{report.finished_epoch}})},
      {"agent-drill-mode", report.mode},
      {"agent-drill-rto-seconds", fmt::format("{:.1f}", report.total_seconds)},
  };
  if (report.mode != "target")
    annotation.annotations.emplace_back("agent-drill-rpo-seconds",
                                        fmt::format("{:.3f}", report.copy.gap_seconds));
  return annotation;
}

std::optional<std::string> narrowed_drill_note(const AgentConfig& config, const DrillReport& report) {
  if (!config.drill.annotate || !report.narrowed_by_caller) return std::nullopt;
  if (report.result != "passed" && report.result != "failed") return std::nullopt;
  return "drill " + report.id + ": its result is not recorded on backup set " + report.copy.backup_label +
         ": --database or --assert narrowed its checks (the set's own drill is `agent drill` without them)";
}

Status annotate_backup_set(ProcessRunner& runner, const DrillAnnotation& annotation, int timeout_seconds,
                           const CancelToken& cancel) {
  ProcessSpec spec;
  spec.argv = pgbackrest_annotate_argv(annotation.target, annotation.label, annotation.annotations);
  spec.tag = "pgbackrest";
  spec.timeout = std::chrono::seconds(timeout_seconds);
  auto result = runner.run(spec, cancel);
  if (!result) return result.error();
  if (result->cancelled)
    return make_error(ErrorKind::interrupted, "interrupted while annotating backup set " + annotation.label);
  if (!result->succeeded()) {
    const std::string excerpt = result->error_excerpt();
    const bool locked = excerpt.find("unable to acquire lock") != std::string::npos;
    return make_error(ErrorKind::external_tool,
                      "pgbackrest annotate of backup set " + annotation.label + " " + result->describe() +
                          (excerpt.empty() ? "" : ": " + excerpt),
                      locked ? "a backup holds the stanza's lock; the drill's result is in its manifest, and "
                               "the next drill annotates the set again"
                             : "the drill's result is in its manifest; set drill.annotate: off to stop "
                               "annotating");
  }
  return {};
}

void log_annotation_outcome(const DrillAnnotation& annotation, const Status& status) {
  const auto logger = log::get("drill");
  if (status)
    logger->info("drill {}: its result is recorded on backup set {} in repo{} (pgbackrest annotate)",
                 annotation.drill_id, annotation.label, annotation.target.repo);
  else
    log::error(
        *logger, status.error(),
        "drill " + annotation.drill_id + ": its result was not recorded on backup set " + annotation.label,
        spdlog::level::warn);
}

}  // namespace agent
