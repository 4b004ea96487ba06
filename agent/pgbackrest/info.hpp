#pragma once
// What `pgbackrest info --output=json` says about a stanza, as typed values.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "time/target_time.hpp"

namespace agent {

struct BackupRecord {
  std::string label;
  std::string type;  // full, diff, incr
  std::int64_t start_epoch = 0;
  std::int64_t stop_epoch = 0;
  std::uint64_t database_bytes = 0;  // info.size: the size of the restored cluster
  std::uint64_t repo_bytes = 0;      // info.repository.size
  bool error = false;
  std::string backrest_version = {};  // backrest.version: the pgBackRest that wrote it
};

// A backup's archive.start and archive.stop: the first and last WAL segment it needs.
struct BackupWalRange {
  std::string start;
  std::string stop;
};

struct StanzaInfo {
  std::string name;
  int status_code = 0;  // 0 ok, 1 missing stanza path, 2 no valid backups, 3 missing data, 99 other
  std::string status_message;
  std::vector<BackupRecord> backups;  // oldest first, as pgBackRest lists them
  std::string archive_min;
  std::string archive_max;
  std::vector<std::string> repo_problems;            // per-repository status messages that are not "ok"
  std::map<std::string, BackupWalRange> backup_wal;  // by backup label
};

// pgBackRest reports an unreadable repository inside its JSON and still exits 0: this turns
// status 1 (missing stanza path), 3 (missing stanza data) and 99 (other) into an error.
// Status 2 (no valid backups) is a readable repository.
// A version mismatch (see version_mismatch_refusal) is refused as such.
Status check_stanza_readable(const StanzaInfo& stanza);

// pgBackRest talks over TLS or SSH only to its own exact version, and says so in a status message
// or an ERROR line: "expected value 'LOCAL' for greeting key 'version' but got 'REMOTE'". When
// `text` holds that, the refusal naming both versions and the fix (ErrorKind::environment).
std::optional<Error> version_mismatch_refusal(std::string_view text);

Result<std::vector<StanzaInfo>> parse_info_json(std::string_view json);

// The backup set pgBackRest picks for a time target: the newest without error whose stop
// time is before the target (or exactly `label`, when the user named a set).
const BackupRecord* backup_for_target(const StanzaInfo& stanza, SysMicros target,
                                      const std::optional<std::string>& label);
// The oldest usable backup: its stop time starts the recoverable window.
const BackupRecord* oldest_backup(const StanzaInfo& stanza);

}  // namespace agent
