#pragma once
// The restore drill's checks of a paused, unpromoted copy (FACTS: "Checks on a paused,
// unpromoted copy"): every table read in full, amcheck where the database has it, the
// assertions; and, once the copy is shut down, pg_checksums. A finding is a value, never an
// error: a check that finds a problem names the first failing object and the drill goes on
// with the others. Only what keeps the checks from running at all (cancellation) is an error.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/cancel.hpp"
#include "core/error.hpp"
#include "exec/commands.hpp"
#include "exec/process.hpp"
#include "pg/copy_session.hpp"
#include "pgbackrest/version.hpp"
#include "pipelines/drill_job.hpp"

namespace agent {

struct DrillCheck {
  std::string name;      // pgbackrest-verify, tables, amcheck-indexes, amcheck-heap, assertion, checksums
  std::string database;  // empty: the whole cluster
  std::string result;    // passed, failed or skipped
  std::string reason;    // skipped: why; failed: what the first failure said
  std::uint64_t checked = 0;
  std::uint64_t failed = 0;
  std::string first_failure;  // the first failing object: "api.public.events", a file, an assertion
};

struct TableRead {
  std::string database;
  std::string table;  // schema.table, quoted where needed
  std::uint64_t rows = 0;
};

struct DrillFindings {
  std::vector<DrillCheck> checks;
  std::vector<TableRead> tables;
  int data_checksum_version = -1;  // pg_control_init(): 0 none, 1 on; -1 not read
  bool failed() const;
};

struct CopyCheckSettings {
  std::function<std::string(const std::string& database)> conninfo;
  std::vector<std::string> databases;  // empty: every database that accepts connections
  std::vector<DrillAssertion> assertions;
  int statement_timeout_seconds = 60;
};

// The SQL the checks send, for the fakes of the unit tests.
extern const char* const kDrillDatabasesQuery;
extern const char* const kDrillTablesQuery;
extern const char* const kDrillUnloggedQuery;
extern const char* const kDrillAmcheckQuery;
extern const char* const kDrillIndexesQuery;
extern const char* const kDrillChecksumVersionQuery;

// Runs the checks on the paused copy into `findings`.
Status run_copy_checks(CopyConnector& connector, const CopyCheckSettings& settings, const CancelToken& cancel,
                       DrillFindings& findings);

// `pg_checksums --check` on the stopped copy; skipped, with the reason, when the cluster has no
// data checksums or the copy did not shut down cleanly.
DrillCheck run_checksums_check(ProcessRunner& runner, const std::string& bindir, const std::string& data_dir,
                               int data_checksum_version, bool clean_shutdown, const CancelToken& cancel);

// The oldest pgBackRest whose verify takes --set (one backup set instead of the whole
// repository).
inline const PgBackRestVersion kVerifySetVersion{2, 55, 0, "2.55"};

// `pgbackrest verify --set=LABEL` of the drilled set in its repository: every file of the set
// and the archived WAL against the repository's checksums. Skipped, with the reason, before
// pgBackRest 2.55.
DrillCheck run_repository_verify(ProcessRunner& runner, const PgBackRestTarget& target,
                                 const PgBackRestVersion& version, const std::string& label,
                                 const CancelToken& cancel);

// pgBackRest verify's result and first invalid file, from its console lines.
struct VerifyOutput {
  bool status_seen = false;  // a "status: ok|error" line
  bool status_error = false;
  std::uint64_t files = 0;  // backup files and WAL segments checked
  std::uint64_t valid = 0;
  std::string first_invalid;  // "invalid checksum '20241104-020000F/pg_data/base/1/2'"
};
VerifyOutput parse_verify_output(const std::vector<std::string>& lines);

// pg_checksums' summary and its first complaint, from its output lines.
struct ChecksumsOutput {
  std::uint64_t blocks = 0;
  std::uint64_t bad = 0;
  std::string first_bad;  // the file of the first "checksum verification failed" line
};
ChecksumsOutput parse_checksums_output(const std::vector<std::string>& lines);

}  // namespace agent
