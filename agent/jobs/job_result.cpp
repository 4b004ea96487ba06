#include "jobs/job_result.hpp"

namespace agent {

const char* backup_outcome_name(BackupOutcome outcome) {
  switch (outcome) {
    case BackupOutcome::succeeded:
      return "succeeded";
    case BackupOutcome::failed:
      return "failed";
    case BackupOutcome::skipped:
      return "skipped";
  }
  return "failed";
}

int backup_exit_code(const BackupResult& result) {
  switch (result.outcome) {
    case BackupOutcome::succeeded:
      return kExitSuccess;
    case BackupOutcome::skipped:
      return exit_code_for(ErrorKind::environment);
    case BackupOutcome::failed:
      return exit_code_for(result.failure_kind);
  }
  return exit_code_for(ErrorKind::internal);
}

}  // namespace agent
