#pragma once
// Recovery target times as a person types them, turned into one unambiguous instant.
// pgBackRest and PostgreSQL would read a zone-less time in two different zones, so a time
// without a zone or offset is refused; the form handed on is UTC with an explicit "+00".
#include <chrono>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace agent {

using Microseconds = std::chrono::microseconds;
using SysMicros = std::chrono::sys_time<Microseconds>;

struct TargetTime {
  SysMicros instant;
  std::string as_typed;
};

// Accepts, for example:
//   2024-11-04 09:40:00-08:00   2024-11-04 09:40:00-08   2024-11-04 09:40:00+0530
//   2024-02-06 19:50:11 PST     2024-11-04T17:40:00Z     2024-11-04T17:40:00.250+00:00
//   2024-11-04 09:40:00 America/Vancouver
Result<TargetTime> parse_target_time(std::string_view text);

// "2024-11-04 17:40:00+00", with ".ffffff" only when there are sub-seconds: a form that
// both pgBackRest (backup set selection) and PostgreSQL (recovery_target_time) accept.
std::string format_for_pgbackrest(SysMicros instant);
// "2024-11-04T17:40:00Z" (with sub-seconds when present), for logs and manifests.
std::string format_iso_utc(SysMicros instant);

// The accepted forms, for error messages and --help.
extern const char* const kTargetTimeForms;

}  // namespace agent
