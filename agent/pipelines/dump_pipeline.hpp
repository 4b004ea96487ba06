#pragma once
// `agent dump` as one job: check -> prepare -> restore -> start -> wait -> verify -> dump ->
// publish -> stop. The temporary server is stopped and a partial dump removed whatever
// fails on the way, including SIGINT and SIGTERM.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/cancel.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "exec/process.hpp"
#include "pg/copy_session.hpp"
#include "pg/session.hpp"
#include "pipelines/dump_job.hpp"
#include "pipelines/pipeline.hpp"

namespace agent {

struct DumpServices {
  ProcessRunner& runner;
  PgConnector& connector;
  CopyConnector& copier;  // the connections that copy the largest tables' rows
  Clock& clock;
  const CancelToken& cancel;
  StepObserver on_step = {};
};

struct DumpSummary {
  std::string backup_label;
  int repo = 0;  // the repository it was restored from
  std::optional<SysMicros> replayed_to;
  double gap_seconds = 0;
  std::uint64_t bytes = 0;
  std::string checksum;  // "xxh128:HEX", "sha256:HEX", or "" (dump.checksum: none)
  std::string output;
  std::string manifest_path;
  std::vector<StepTiming> timings;
};

Result<DumpSummary> run_dump(const DumpJob& job, DumpServices& services);

}  // namespace agent
