#include "pgbackrest/info.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <regex>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace agent {

namespace {

struct BadNumber : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A number pgBackRest writes as a JSON integer, read only when it is one and in [low, high].
// nlohmann's get<T>() would convert anything: a fraction is truncated, a value out of range
// wraps, and a floating-point one out of T's range is undefined behaviour.
template <typename T>
T whole_number(const nlohmann::json& value, const char* what, T low = std::numeric_limits<T>::min(),
               T high = std::numeric_limits<T>::max()) {
  if (value.is_number_unsigned()) {
    const auto v = value.get<std::uint64_t>();
    if (std::in_range<T>(v) && static_cast<T>(v) >= low && static_cast<T>(v) <= high)
      return static_cast<T>(v);
  } else if (value.is_number_integer()) {
    const auto v = value.get<std::int64_t>();
    if (std::in_range<T>(v) && static_cast<T>(v) >= low && static_cast<T>(v) <= high)
      return static_cast<T>(v);
  }
  const std::string seen = value.is_number() ? value.dump() : std::string("of type ") + value.type_name();
  throw BadNumber(std::string(what) + " is " + seen + ", not a whole number in " + std::to_string(low) +
                  ".." + std::to_string(high));
}

// pg_lsn text as pgBackRest writes a set's lsn.stop ("0/5000100"): two hexadecimal numbers of 1
// to 8 digits. Anything else is left out: an LSN target compares it as a WAL position.
bool is_lsn_text(const std::string& text) {
  const auto slash = text.find('/');
  const auto hex = [](std::string_view part) {
    return !part.empty() && part.size() <= 8 && part.find_first_not_of("0123456789ABCDEFabcdef") == part.npos;
  };
  return slash != std::string::npos && hex(std::string_view(text).substr(0, slash)) &&
         hex(std::string_view(text).substr(slash + 1));
}

// The same for an optional member of `object` (which must be an object).
template <typename T>
T whole_number_or(const nlohmann::json& object, const char* key, T fallback) {
  if (!object.is_object()) throw BadNumber(std::string("the parent of '") + key + "' is not an object");
  const auto it = object.find(key);
  return it == object.end() ? fallback : whole_number<T>(*it, key);
}

// Epoch seconds up to 9999-12-31: what the metrics and the dump then compute with them (a
// duration, the second after a stop, microseconds) cannot overflow.
constexpr std::int64_t kLastEpoch = 253402300799;

// pgBackRest numbers repositories repo1 to repo256.
constexpr int kMaxRepoKey = 256;

// status.lock.backup or status.lock.restore; absent (an older pgBackRest): not held, no sizes.
// pgBackRest writes size-cplt and size together, and only when the size is not zero. Progress is
// only shown, so a value that is not a byte count leaves it unknown rather than fail the read.
LockProgress lock_progress(const nlohmann::json& status, const char* which) {
  LockProgress progress;
  if (!status.is_object() || !status.contains("lock") || !status["lock"].is_object()) return progress;
  const auto& locks = status["lock"];
  if (!locks.contains(which) || !locks[which].is_object()) return progress;
  const auto& lock = locks[which];
  if (lock.contains("held") && lock["held"].is_boolean()) progress.held = lock["held"].get<bool>();
  if (lock.contains("size-cplt") && lock["size-cplt"].is_number_unsigned() && lock.contains("size") &&
      lock["size"].is_number_unsigned() && lock["size"].get<std::uint64_t>() > 0) {
    progress.bytes_done = lock["size-cplt"].get<std::uint64_t>();
    progress.bytes_total = lock["size"].get<std::uint64_t>();
  }
  return progress;
}

}  // namespace

Result<std::vector<StanzaInfo>> parse_info_json(std::string_view json) {
  std::vector<StanzaInfo> stanzas;
  try {
    const auto root = nlohmann::json::parse(json);
    if (!root.is_array())
      return make_error(ErrorKind::external_tool, "pgbackrest info did not return a JSON array");
    for (const auto& entry : root) {
      StanzaInfo stanza;
      stanza.name = entry.at("name").get<std::string>();
      if (entry.contains("status")) {
        stanza.status_code = whole_number_or(entry["status"], "code", 0);
        stanza.status_message = entry["status"].value("message", "");
        stanza.backup_lock = lock_progress(entry["status"], "backup");
        stanza.restore_lock = lock_progress(entry["status"], "restore");
      }
      for (const auto& b : entry.value("backup", nlohmann::json::array())) {
        BackupRecord record;
        record.label = b.at("label").get<std::string>();
        record.type = b.value("type", "");
        record.start_epoch =
            whole_number<std::int64_t>(b.at("timestamp").at("start"), "timestamp.start", 0, kLastEpoch);
        record.stop_epoch =
            whole_number<std::int64_t>(b.at("timestamp").at("stop"), "timestamp.stop", 0, kLastEpoch);
        if (b.contains("info")) {
          record.database_bytes = whole_number_or(b["info"], "size", std::uint64_t{0});
          if (b["info"].contains("repository"))
            record.repo_bytes = whole_number_or(b["info"]["repository"], "size", std::uint64_t{0});
        }
        record.error = b.value("error", false);
        if (b.contains("backrest") && b["backrest"].is_object() && b["backrest"].contains("version") &&
            b["backrest"]["version"].is_string())
          record.backrest_version = b["backrest"]["version"].get<std::string>();
        if (b.contains("database") && b["database"].is_object())
          record.repo = whole_number_or(b["database"], "repo-key", 0);
        if (b.contains("lsn") && b["lsn"].is_object() && b["lsn"].contains("stop") &&
            b["lsn"]["stop"].is_string() && is_lsn_text(b["lsn"]["stop"].get<std::string>()))
          record.lsn_stop = b["lsn"]["stop"].get<std::string>();
        if (b.contains("archive") && b["archive"].is_object()) {
          const auto& archive = b["archive"];
          auto& range = stanza.backup_wal[record.label];
          if (archive.contains("start") && archive["start"].is_string())
            range.start = archive["start"].get<std::string>();
          if (archive.contains("stop") && archive["stop"].is_string())
            range.stop = archive["stop"].get<std::string>();
        }
        stanza.backups.push_back(std::move(record));
      }
      for (const auto& repo : entry.value("repo", nlohmann::json::array())) {
        RepoStatus status;
        status.key = whole_number<int>(repo.at("key"), "repo[].key", 1, kMaxRepoKey);
        if (repo.contains("status")) {
          status.status_code = whole_number_or(repo["status"], "code", 0);
          status.status_message = repo["status"].value("message", std::string("error"));
        }
        if (status.status_code != 0)
          stanza.repo_problems.push_back("repo" + std::to_string(status.key) + ": " + status.status_message);
        stanza.repos.push_back(std::move(status));
      }
      std::sort(stanza.repos.begin(), stanza.repos.end(),
                [](const RepoStatus& a, const RepoStatus& b) { return a.key < b.key; });
      // One entry per database id and repository; the current database's comes last.
      for (const auto& archive : entry.value("archive", nlohmann::json::array())) {
        const bool has_min = archive.contains("min") && archive["min"].is_string();
        const bool has_max = archive.contains("max") && archive["max"].is_string();
        if (has_min) stanza.archive_min = archive["min"].get<std::string>();
        if (has_max) stanza.archive_max = archive["max"].get<std::string>();
        int key = 0;
        if (archive.contains("database") && archive["database"].is_object())
          key = whole_number_or(archive["database"], "repo-key", 0);
        for (auto& repo : stanza.repos) {
          if (repo.key != (key > 0 ? key : 1)) continue;
          if (has_min) repo.archive_min = archive["min"].get<std::string>();
          if (has_max) repo.archive_max = archive["max"].get<std::string>();
        }
      }
      stanzas.push_back(std::move(stanza));
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorKind::external_tool,
                      std::string("cannot read pgbackrest info output: ") + e.what(),
                      "run `pgbackrest info --output=json` by hand to see what it says");
  } catch (const BadNumber& e) {
    return make_error(ErrorKind::external_tool,
                      std::string("cannot read pgbackrest info output: ") + e.what(),
                      "run `pgbackrest info --output=json` by hand to see what it says");
  }
  return stanzas;
}

std::optional<Error> version_mismatch_refusal(std::string_view text) {
  static const std::regex greeting(
      R"(expected value '([0-9][0-9A-Za-z.]*)' for greeting key 'version' but got '([0-9][0-9A-Za-z.]*)')");
  std::match_results<std::string_view::const_iterator> match;
  if (!std::regex_search(text.begin(), text.end(), match, greeting)) return std::nullopt;
  const std::string local = match[1].str();
  const std::string remote = match[2].str();
  return make_error(ErrorKind::environment,
                    "pgBackRest versions differ: pgbackrest.bin is pgBackRest " + local +
                        ", the remote pgBackRest it connects to (the repository host, over TLS or SSH) is " +
                        remote + "; pgBackRest talks only to its own exact version",
                    "set pgbackrest.bin to a pgBackRest " + remote +
                        " (the version of the operator's pgBackRest image; PGO 5.8 and 6.0 ship 2.56.0), "
                        "or upgrade both sides to one version");
}

std::string repository_names(const std::vector<RepoStatus>& repos) {
  std::string names;
  for (const auto& repo : repos) names += (names.empty() ? "repo" : ", repo") + std::to_string(repo.key);
  return names;
}

std::vector<RepoStatus> repositories(const StanzaInfo& stanza) {
  if (!stanza.repos.empty()) return stanza.repos;
  RepoStatus only;
  only.status_code = stanza.status_code;
  only.status_message = stanza.status_message;
  only.archive_min = stanza.archive_min;
  only.archive_max = stanza.archive_max;
  return {only};
}

int repo_of(const BackupRecord& backup) {
  return backup.repo > 0 ? backup.repo : 1;
}

StanzaInfo repository_view(const StanzaInfo& stanza, int repo) {
  StanzaInfo view;
  view.name = stanza.name;
  view.backup_wal = stanza.backup_wal;
  for (const auto& backup : stanza.backups)
    if (repo_of(backup) == repo) view.backups.push_back(backup);
  for (const auto& status : repositories(stanza)) {
    if (status.key != repo) continue;
    view.status_code = status.status_code;
    view.status_message = status.status_message;
    view.archive_min = status.archive_min;
    view.archive_max = status.archive_max;
    if (status.status_code != 0)
      view.repo_problems.push_back("repo" + std::to_string(repo) + ": " + status.status_message);
    view.repos.push_back(status);
  }
  return view;
}

Status check_stanza_readable(const StanzaInfo& stanza) {
  if (stanza.status_code == 0 || stanza.status_code == 2) return {};
  // Different across repositories: partial, as long as one of them can be read.
  const auto repos = repositories(stanza);
  if (stanza.status_code == 4 &&
      std::any_of(repos.begin(), repos.end(), [](const RepoStatus& r) { return r.readable(); }))
    return {};
  std::string detail = stanza.status_message;
  for (const auto& problem : stanza.repo_problems) detail += "; " + problem;
  if (auto refusal = version_mismatch_refusal(detail)) return *refusal;
  return make_error(ErrorKind::external_tool,
                    "pgbackrest info reports stanza '" + stanza.name + "' as unreadable (status " +
                        std::to_string(stanza.status_code) + ": " + detail + ")",
                    "check the repository's path, permissions and the pgBackRest config");
}

namespace {
// backup_for_target over the backups of one repository (0: every repository).
const BackupRecord* newest_before(const StanzaInfo& stanza, SysMicros target,
                                  const std::optional<std::string>& label, int repo) {
  const auto target_seconds = std::chrono::floor<std::chrono::seconds>(target).time_since_epoch().count();
  const BackupRecord* chosen = nullptr;
  // A set flagged `error` (page checksum errors found while backing it up) is chosen like any
  // other: pgBackRest's restore does not look at the flag, and the agent predicts its choice. A
  // drill of such a set then finds the damaged pages.
  for (const auto& backup : stanza.backups) {
    if (repo > 0 && repo_of(backup) != repo) continue;
    if (label) {
      if (backup.label == *label) return backup.stop_epoch < target_seconds ? &backup : nullptr;
      continue;
    }
    if (backup.stop_epoch < target_seconds && (!chosen || backup.stop_epoch >= chosen->stop_epoch))
      chosen = &backup;
  }
  return chosen;
}
}  // namespace

const BackupRecord* backup_for_target(const StanzaInfo& stanza, SysMicros target,
                                      const std::optional<std::string>& label) {
  return newest_before(stanza, target, label, 0);
}

RepoChoice choose_backup(const StanzaInfo& stanza, SysMicros target, const std::optional<std::string>& label,
                         int repo) {
  if (repo > 0) return {repo, newest_before(stanza, target, label, repo)};
  for (const auto& status : repositories(stanza)) {
    if (!status.readable()) continue;
    // A named set: the first repository that holds it, whether or not it ends before the target.
    if (label && std::none_of(stanza.backups.begin(), stanza.backups.end(), [&](const BackupRecord& b) {
          return b.label == *label && repo_of(b) == status.key;
        }))
      continue;
    if (const auto* backup = newest_before(stanza, target, label, status.key); backup || label)
      return {status.key, backup};
  }
  return {};
}

const BackupRecord* oldest_backup(const StanzaInfo& stanza) {
  const BackupRecord* oldest = nullptr;
  for (const auto& backup : stanza.backups)
    if (!backup.error && (!oldest || backup.stop_epoch < oldest->stop_epoch)) oldest = &backup;
  return oldest;
}

Result<std::optional<std::vector<BackupDatabase>>> parse_backup_databases(std::string_view json,
                                                                          const std::string& stanza,
                                                                          const std::string& label) {
  try {
    const auto root = nlohmann::json::parse(json);
    if (!root.is_array()) throw BadNumber("the top level is not an array");
    for (const auto& entry : root) {
      if (!entry.is_object() || entry.value("name", "") != stanza) continue;
      const auto backups = entry.find("backup");
      if (backups != entry.end() && backups->is_array())
        for (const auto& backup : *backups) {
          if (!backup.is_object() || backup.value("label", "") != label) continue;
          const auto refs = backup.find("database-ref");
          if (refs == backup.end() || !refs->is_array()) return std::optional<std::vector<BackupDatabase>>{};
          std::vector<BackupDatabase> databases;
          for (const auto& ref : *refs) {
            if (!ref.is_object() || !ref.contains("name") || !ref["name"].is_string() || !ref.contains("oid"))
              throw BadNumber("a database-ref entry has no name or oid");
            databases.push_back(
                {ref["name"].get<std::string>(), whole_number<std::uint32_t>(ref["oid"], "oid")});
          }
          return std::optional<std::vector<BackupDatabase>>{std::move(databases)};
        }
      std::string status;
      if (const auto st = entry.find("status"); st != entry.end() && st->is_object())
        status = st->value("message", "");
      return make_error(
          ErrorKind::usage,
          "pgbackrest info does not list backup set " + label + (status.empty() ? "" : " (" + status + ")"),
          "list the sets with `pgbackrest info`");
    }
    return make_error(ErrorKind::usage, "pgbackrest info does not know stanza '" + stanza + "'",
                      "set `stanza` in the config to the stanza of the live cluster");
  } catch (const std::exception& e) {
    return make_error(ErrorKind::external_tool,
                      std::string("cannot read pgbackrest info --set output: ") + e.what());
  }
}

}  // namespace agent
