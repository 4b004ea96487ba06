#pragma once
// What a trigger asks for. Triggers (schedule, annotation, CLI) only build one of these and
// hand it to the queue; they never run anything themselves.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace agent {

enum class BackupType { incr = 0, diff = 1, full = 2 };  // ordered: a larger one covers a smaller one

enum class Trigger { schedule, annotation, manual };

struct BackupRequest {
  BackupType type = BackupType::incr;
  Trigger trigger = Trigger::schedule;
  std::string reason;  // for logs and status: "schedule incr '*/15 * * * *'", "annotation value '...'"
  std::chrono::system_clock::time_point requested_at{};
  // The repository to back up into (pgBackRest's --repo); 0: the default one (pgbackrest.repo,
  // else pgBackRest's own default, the lowest-numbered repository).
  int repo = 0;
};

// A restore drill a trigger asks for (schedules.drill): the newest backup set, then the archived
// WAL to its end, checked as `agent drill --latest` checks it.
struct DrillRequest {
  Trigger trigger = Trigger::schedule;
  std::string reason;
  std::chrono::system_clock::time_point requested_at{};
};

// "repo2", or "the default repository" for 0.
std::string repo_name(int repo);

const char* backup_type_name(BackupType type);
std::optional<BackupType> parse_backup_type(std::string_view text);
const char* trigger_name(Trigger trigger);

}  // namespace agent
