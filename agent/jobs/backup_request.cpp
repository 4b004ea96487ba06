#include "jobs/backup_request.hpp"

namespace agent {

const char* backup_type_name(BackupType type) {
  switch (type) {
    case BackupType::incr:
      return "incr";
    case BackupType::diff:
      return "diff";
    case BackupType::full:
      return "full";
  }
  return "incr";
}

std::optional<BackupType> parse_backup_type(std::string_view text) {
  if (text == "incr") return BackupType::incr;
  if (text == "diff") return BackupType::diff;
  if (text == "full") return BackupType::full;
  return std::nullopt;
}

std::string repo_name(int repo) {
  return repo > 0 ? "repo" + std::to_string(repo) : "the default repository";
}

const char* trigger_name(Trigger trigger) {
  switch (trigger) {
    case Trigger::schedule:
      return "schedule";
    case Trigger::annotation:
      return "annotation";
    case Trigger::manual:
      return "manual";
  }
  return "schedule";
}

}  // namespace agent
