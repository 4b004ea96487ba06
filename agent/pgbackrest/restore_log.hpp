#pragma once
// What `pgbackrest restore` says it restored. Its console log names the repository and the set
// before it copies anything: "P00   INFO: repo2: restore backup set 20241104-020000F, recovery
// will start at 2024-11-04 02:00:00" (restore.c, since pgBackRest 2.33 with the "repoN: ").
#include <cstdint>
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

// How far the restore is, in hundredths of a percent (0..10000), from one of the lines it prints
// per file at --log-level-console=detail (restore.c's restoreJobResult, the same from 2.45 to
// 2.56): "P01 DETAIL: restore file PATH (8KB, 12.34%) checksum HEX", also "restore zeroed file"
// (--db-include), "PATH - exists and matches backup (...)" (--delta), "(bundle 1/0, 8KB, ...)"
// and "(bi 24KB/48KB, ...)". The percentage is of the bytes of every file in the backup's
// manifest, restored, kept or zeroed: the set's size in `pgbackrest info`. Nothing for any other
// line. Reads the line from its end, since PATH may hold anything; never throws.
std::optional<std::uint32_t> parse_restore_percent(std::string_view line) noexcept;

// The restore's bytes done, from the percentage and the set's size: exact at 100.00%, else
// within 0.005% of `total_bytes` (pgBackRest rounds to hundredths).
std::uint64_t restored_bytes_at(std::uint32_t hundredths, std::uint64_t total_bytes) noexcept;

}  // namespace agent
