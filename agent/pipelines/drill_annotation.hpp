#pragma once
// A drill's result recorded on the backup set it restored, with `pgbackrest annotate`, so that
// `pgbackrest info --set` (and any exporter reading backup.info) says when the set was last
// proven to restore and how that went. The only write a drill makes to the repository, and
// only with drill.annotate on: keys of the agent's own (agent-drill-*), the set's other
// annotations (the backup's agent-trigger, agent-request) kept.
#include <optional>
#include <string>

#include "config/config.hpp"
#include "core/cancel.hpp"
#include "core/error.hpp"
#include "exec/commands.hpp"
#include "exec/process.hpp"
#include "pipelines/drill_pipeline.hpp"

namespace agent {

struct DrillAnnotation {
  std::string drill_id;
  PgBackRestTarget target;  // the repository the set was restored from
  std::string label;
  BackupAnnotations annotations;
};

// What to write for `report`; nothing when drill.annotate is off, when the drill could not run
// (result "error": it proves nothing about the set), when the caller narrowed its checks
// (--database, --assert: an ad-hoc question, whose answer must not overwrite the set's drill
// result) or when it restored no identified set. The RPO key only where the replay went to the
// end of the archived WAL (--latest, --set alone), where the gap is the measured RPO.
std::optional<DrillAnnotation> drill_annotation(const AgentConfig& config, const DrillReport& report);

// For a drill that would have been annotated but for --database or --assert: the line that says
// so (the set keeps what it had); nothing otherwise.
std::optional<std::string> narrowed_drill_note(const AgentConfig& config, const DrillReport& report);

// Runs `pgbackrest annotate`. Fails when pgBackRest does (a backup holding the stanza's lock:
// "unable to acquire lock"), naming what to do.
Status annotate_backup_set(ProcessRunner& runner, const DrillAnnotation& annotation, int timeout_seconds,
                           const CancelToken& cancel);

// Logs how annotate_backup_set went: the set that now carries the result, or a warning with
// pgBackRest's reason and the hint (the drill's exit code never depends on it).
void log_annotation_outcome(const DrillAnnotation& annotation, const Status& status);

}  // namespace agent
