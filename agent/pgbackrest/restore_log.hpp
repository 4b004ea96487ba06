#pragma once
// What `pgbackrest restore` says it restored. Its console log names the repository and the set
// before it copies anything: "P00   INFO: repo2: restore backup set 20241104-020000F, recovery
// will start at 2024-11-04 02:00:00" (restore.c, since pgBackRest 2.33 with the "repoN: ").
#include <optional>
#include <string>
#include <string_view>

namespace agent {

struct RestoredSet {
  int repo = 1;  // 1 when the line names no repository (a pgBackRest before 2.33)
  std::string label;
  bool operator==(const RestoredSet&) const = default;
};

// The set a line of restore output names, or nothing.
std::optional<RestoredSet> parse_restored_set(std::string_view line);

}  // namespace agent
