#include "pgbackrest/info.hpp"

#include <nlohmann/json.hpp>

namespace agent {

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
        stanza.status_code = entry["status"].value("code", 0);
        stanza.status_message = entry["status"].value("message", "");
      }
      for (const auto& b : entry.value("backup", nlohmann::json::array())) {
        BackupRecord record;
        record.label = b.at("label").get<std::string>();
        record.type = b.value("type", "");
        record.start_epoch = b.at("timestamp").at("start").get<std::int64_t>();
        record.stop_epoch = b.at("timestamp").at("stop").get<std::int64_t>();
        if (b.contains("info")) {
          record.database_bytes = b["info"].value("size", std::uint64_t{0});
          if (b["info"].contains("repository"))
            record.repo_bytes = b["info"]["repository"].value("size", std::uint64_t{0});
        }
        record.error = b.value("error", false);
        stanza.backups.push_back(std::move(record));
      }
      for (const auto& repo : entry.value("repo", nlohmann::json::array())) {
        if (repo.contains("status") && repo["status"].value("code", 0) != 0)
          stanza.repo_problems.push_back("repo" + std::to_string(repo.value("key", 0)) + ": " +
                                         repo["status"].value("message", std::string("error")));
      }
      for (const auto& archive : entry.value("archive", nlohmann::json::array())) {
        if (archive.contains("min") && archive["min"].is_string())
          stanza.archive_min = archive["min"].get<std::string>();
        if (archive.contains("max") && archive["max"].is_string())
          stanza.archive_max = archive["max"].get<std::string>();
      }
      stanzas.push_back(std::move(stanza));
    }
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorKind::external_tool,
                      std::string("cannot read pgbackrest info output: ") + e.what(),
                      "run `pgbackrest info --output=json` by hand to see what it says");
  }
  return stanzas;
}

Status check_stanza_readable(const StanzaInfo& stanza) {
  if (stanza.status_code == 0 || stanza.status_code == 2) return {};
  std::string detail = stanza.status_message;
  for (const auto& problem : stanza.repo_problems) detail += "; " + problem;
  return make_error(ErrorKind::external_tool,
                    "pgbackrest info reports stanza '" + stanza.name + "' as unreadable (status " +
                        std::to_string(stanza.status_code) + ": " + detail + ")",
                    "check the repository's path, permissions and the pgBackRest config");
}

const BackupRecord* backup_for_target(const StanzaInfo& stanza, SysMicros target,
                                      const std::optional<std::string>& label) {
  const auto target_seconds = std::chrono::floor<std::chrono::seconds>(target).time_since_epoch().count();
  const BackupRecord* chosen = nullptr;
  for (const auto& backup : stanza.backups) {
    if (backup.error) continue;
    if (label) {
      if (backup.label == *label) return backup.stop_epoch < target_seconds ? &backup : nullptr;
      continue;
    }
    if (backup.stop_epoch < target_seconds && (!chosen || backup.stop_epoch >= chosen->stop_epoch))
      chosen = &backup;
  }
  return chosen;
}

const BackupRecord* oldest_backup(const StanzaInfo& stanza) {
  const BackupRecord* oldest = nullptr;
  for (const auto& backup : stanza.backups)
    if (!backup.error && (!oldest || backup.stop_epoch < oldest->stop_epoch)) oldest = &backup;
  return oldest;
}

}  // namespace agent
