#pragma once
// One backup job: primary check -> pgBackRest's config, version and repository checked ->
// `pgbackrest backup` -> a fresh `pgbackrest info`.
// Every pod runs the same agent; only the primary backs up, so a standby (or a server that
// cannot be reached) turns the job into a skip with its reason, never a failure.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/cancel.hpp"
#include "core/clock.hpp"
#include "exec/commands.hpp"
#include "exec/process.hpp"
#include "jobs/job_queue.hpp"
#include "jobs/job_result.hpp"
#include "pg/session.hpp"
#include "pgbackrest/info.hpp"

namespace agent {

struct BackupServices {
  ProcessRunner& runner;
  PgConnector& connector;
  Clock& clock;
  const CancelToken& cancel;
  // The running agent reads the repository after each backup for its metrics; a one-off
  // `agent backup` has no metrics to update and skips that read.
  bool read_repository_after = true;
  // Called at every sign of life of the job (a step, an output line of pgBackRest), so the
  // daemon can tell a long job from a stuck one.
  std::function<void()> on_progress = {};
};

BackupResult run_backup(const AgentConfig& config, const QueuedBackup& job, BackupServices& services);

// The audit trail a backup carries in the repository (pgBackRest's --annotation, shown by
// `pgbackrest info`): agent-trigger (schedule, annotation, manual), agent-request (the request's
// reason: the schedule, the annotation's value or the requesting command; control characters
// become spaces, at most 256 bytes) and agent-version.
BackupAnnotations backup_annotations(const BackupRequest& request);

// `pgbackrest info` for the configured stanza.
Result<StanzaInfo> read_stanza_info(const AgentConfig& config, ProcessRunner& runner,
                                    const CancelToken& cancel);

}  // namespace agent
