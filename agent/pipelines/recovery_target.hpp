#pragma once
// What `agent dump --target` may name besides a time, and how each is handed to pgBackRest:
// each kind is its own `--type`, its value one argv element that was checked strictly first.
//
//   2024-11-04 09:40:00-08:00   a time (time/target_time.hpp)            --type=time
//   latest                      the end of the archived WAL at the start --type=time (see below)
//   lsn:0/3000028               a WAL location                           --type=lsn
//   xid:1234                    a transaction id (stops after its commit) --type=xid
//   name:before-migration       a restore point (pg_create_restore_point) --type=name
//
// `latest` is restored as a time target of the dump's start: no commit archived before the dump
// began lies after it, and the copy then pauses at the end of the archived WAL
// (recovery_target_lsn, inclusive). pgBackRest's --type=default would let PostgreSQL end
// recovery at the end of the WAL, which promotes the copy.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "time/target_time.hpp"

namespace agent {

enum class TargetKind { time, latest, lsn, xid, name };

struct RecoveryTarget {
  TargetKind kind = TargetKind::time;
  std::string value;  // lsn "0/3000028", xid "1234", name; empty for time and latest
};

// pgBackRest's --type for the kind: time, lsn, xid, name (latest: time).
std::string pgbackrest_target_type(TargetKind kind);
// "latest", "lsn", ... for the manifest and logs.
std::string target_kind_name(TargetKind kind);

// Parses the non-time forms ("latest", "lsn:", "xid:", "name:"); nullopt for anything else,
// which is then read as a time. A prefix with a bad value is an error (usage) saying the form.
Result<std::optional<RecoveryTarget>> parse_recovery_target(std::string_view text);

// "0/3000028" as a 64-bit WAL position; 0 for text that is not one (never throws).
std::uint64_t lsn_position(std::string_view lsn);

extern const char* const kRecoveryTargetForms;

}  // namespace agent
