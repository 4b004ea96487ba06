#include "pgbackrest/backup_manifest.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace agent {

namespace {

// The database directory a manifest file path lies in, or 0.
std::uint32_t database_of(std::string_view path) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0; start <= path.size();) {
    const auto slash = std::min(path.find('/', start), path.size());
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  std::string_view oid;
  if (parts.size() >= 4 && parts[0] == "pg_data" && parts[1] == "base") oid = parts[2];
  if (parts.size() >= 5 && parts[0] == "pg_tblspc" && parts[2].rfind("PG_", 0) == 0) oid = parts[3];
  if (oid.empty() || oid.size() > 10 || oid.find_first_not_of("0123456789") != std::string_view::npos)
    return 0;
  const auto value = std::stoull(std::string(oid));
  return value > 0xFFFFFFFFull ? 0 : static_cast<std::uint32_t>(value);
}

}  // namespace

Result<std::uint64_t> restored_bytes(std::string_view manifest, const std::set<std::uint32_t>& zeroed) {
  std::uint64_t total = 0;
  bool in_files = false;
  bool seen_files = false;
  std::size_t start = 0;
  try {
    while (start < manifest.size()) {
      const auto end = std::min(manifest.find('\n', start), manifest.size());
      const auto line = manifest.substr(start, end - start);
      start = end + 1;
      if (!line.empty() && line.front() == '[') {
        in_files = line == "[target:file]";
        seen_files = seen_files || in_files;
        continue;
      }
      if (!in_files) continue;
      const auto equals = line.find('=');
      if (equals == std::string_view::npos) continue;
      const auto path = line.substr(0, equals);
      if (zeroed.count(database_of(path)) != 0) continue;
      const auto attributes = nlohmann::json::parse(line.substr(equals + 1));
      if (attributes.is_object() && attributes.contains("size") && attributes["size"].is_number_unsigned())
        total += attributes["size"].get<std::uint64_t>();
    }
  } catch (const std::exception& e) {
    return make_error(ErrorKind::external_tool, std::string("cannot read the backup manifest: ") + e.what());
  }
  if (!seen_files)
    return make_error(ErrorKind::external_tool, "the backup manifest has no [target:file] section");
  return total;
}

}  // namespace agent
