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
  bool error = false;                // pgBackRest found page checksum errors while backing it up
  int repo = 0;  // database.repo-key: the repository that holds it (0 in hand-made records: repo 1)
  std::string backrest_version = {};  // backrest.version: the pgBackRest that wrote it
  std::string lsn_stop = {};          // lsn.stop: where the backup's WAL ends ("0/5000100")
};

// A backup's archive.start and archive.stop: the first and last WAL segment it needs.
struct BackupWalRange {
  std::string start;
  std::string stop;
};

// One repository of the stanza (`repo[]`, with its `archive[]` entry), in key order.
struct RepoStatus {
  int key = 1;          // repoN
  int status_code = 0;  // as the stanza's status; never 4 (that is the stanza's "they differ")
  std::string status_message;
  std::string archive_min;
  std::string archive_max;
  // 0 ok or 2 no valid backups: pgBackRest read it. Anything else: it could not (missing path or
  // data, an error such as permission denied or a repository host that does not answer).
  bool readable() const { return status_code == 0 || status_code == 2; }
};

// A lock of the stanza as `pgbackrest info` reports it (status.lock.backup, status.lock.restore):
// held by a process on this host, and from pgBackRest 2.48 (backup) or 2.56 (restore) the bytes
// done and in all, summed over the repositories, present only while the size is not zero.
struct LockProgress {
  bool held = false;
  std::optional<std::uint64_t> bytes_done;   // size-cplt
  std::optional<std::uint64_t> bytes_total;  // size
};

struct StanzaInfo {
  std::string name;
  // 0 ok, 1 missing stanza path, 2 no valid backups, 3 missing data, 4 different across repos
  // (each repository's own status is in `repos`), 5 database mismatch across repos, 99 other
  int status_code = 0;
  std::string status_message;
  std::vector<BackupRecord> backups;  // oldest first, as pgBackRest lists them (every repository)
  std::string archive_min;            // over every repository
  std::string archive_max;
  std::vector<std::string> repo_problems;            // per-repository status messages that are not "ok"
  std::map<std::string, BackupWalRange> backup_wal;  // by backup label
  std::vector<RepoStatus> repos;                     // in key order; see repositories()
  LockProgress backup_lock;                          // a backup (or expire) running on this host
  LockProgress restore_lock;                         // a restore running (pgBackRest 2.56+)
};

// The stanza's repositories in key order: `repos`, or for a record without them (hand-made, or
// a pgBackRest before 2.33) one repository, key 1, with the stanza's status.
std::vector<RepoStatus> repositories(const StanzaInfo& stanza);
// "repo1, repo2": the repositories' names, for messages.
std::string repository_names(const std::vector<RepoStatus>& repos);
// The repository a backup is in: its repo-key, 1 when it has none.
int repo_of(const BackupRecord& backup);
// The stanza as one repository sees it: its backups, its archive range and its status.
StanzaInfo repository_view(const StanzaInfo& stanza, int repo);

// pgBackRest reports an unreadable repository inside its JSON and still exits 0: this turns
// status 1 (missing stanza path), 3 (missing stanza data) and 99 (other) into an error.
// Status 2 (no valid backups) is a readable repository. Status 4 (different across repos) is
// readable when one repository is: the others are partial failures, each in its own
// RepoStatus. A version mismatch (see version_mismatch_refusal) is refused as such.
Status check_stanza_readable(const StanzaInfo& stanza);

// pgBackRest talks over TLS or SSH only to its own exact version, and says so in a status message
// or an ERROR line: "expected value 'LOCAL' for greeting key 'version' but got 'REMOTE'". When
// `text` holds that, the refusal naming both versions and the fix (ErrorKind::environment).
std::optional<Error> version_mismatch_refusal(std::string_view text);

Result<std::vector<StanzaInfo>> parse_info_json(std::string_view json);

// The backup set for a time target, as pgBackRest's restore chooses it: the newest whose stop
// time is before the target (a set flagged `error` included) (or exactly `label`, when the user named a set),
// over the backups of `stanza` (use repository_view for one repository's).
const BackupRecord* backup_for_target(const StanzaInfo& stanza, SysMicros target,
                                      const std::optional<std::string>& label);

// The repository and set pgBackRest restores for a time target (restoreBackupSet in its
// restore.c): with `repo` (--repo), that repository only; without, the first repository in key
// order whose backup.info it can read and that holds a qualifying set (the newest whose stop
// time is before the target, or the set named `label`); not the newest set over all of them.
// Repositories that are not readable are skipped, as pgBackRest skips them with a warning.
struct RepoChoice {
  int repo = 0;
  const BackupRecord* backup = nullptr;  // nullptr: no repository holds a qualifying set
};
RepoChoice choose_backup(const StanzaInfo& stanza, SysMicros target, const std::optional<std::string>& label,
                         int repo);
// The oldest usable backup: its stop time starts the recoverable window.
const BackupRecord* oldest_backup(const StanzaInfo& stanza);

// A database the backup set holds (`database-ref` of `pgbackrest info --set LABEL`, in 2.45 and
// 2.56 alike; the text output's "database list"). template0 and template1 are not listed.
struct BackupDatabase {
  std::string name;
  std::uint32_t oid = 0;
};
// The databases of backup set `label` in `pgbackrest info --set=LABEL --output=json`; nullopt
// when pgBackRest did not list them (no `database-ref`), an error when the set is not there
// (status 6 "requested backup not found") or the JSON is not pgBackRest's.
Result<std::optional<std::vector<BackupDatabase>>> parse_backup_databases(std::string_view json,
                                                                          const std::string& stanza,
                                                                          const std::string& label);

}  // namespace agent
