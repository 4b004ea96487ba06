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

}  // namespace agent
