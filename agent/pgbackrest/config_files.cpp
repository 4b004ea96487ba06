#include "pgbackrest/config_files.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace agent {

namespace {

namespace fs = std::filesystem;

// pgBackRest's compiled-in defaults (build/config: CFGOPTDEF_CONFIG_PATH and friends).
constexpr const char* kDefaultConfigPath = "/etc/pgbackrest";
constexpr const char* kConfigFileName = "pgbackrest.conf";
constexpr const char* kIncludeDirName = "conf.d";
// Where pgBackRest looks when the default file is missing and --config-path was not given.
constexpr const char* kOriginalDefaultConfig = "/etc/pgbackrest.conf";

std::string base_path(const PgBackRestConfigLocation& location) {
  return location.config_path.empty() ? kDefaultConfigPath : location.config_path;
}

bool is_directory(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

bool is_file(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec) && !fs::is_directory(path, ec);
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

// The include directory pgBackRest reads with the agent's options, and whether the agent names
// it (then pgBackRest fails when it is missing). With --config but neither an include path nor
// --config-path, pgBackRest would skip its default conf.d: the agent names it when it exists.
struct IncludeDirectory {
  std::string path;  // empty: none is read
  bool named = false;
};

IncludeDirectory include_directory(const PgBackRestConfigLocation& location,
                                   const std::string& default_config_path) {
  if (!location.config_include_path.empty()) return {location.config_include_path, true};
  if (!location.config.empty() && location.config_path.empty()) {
    const std::string include = default_config_path + "/" + kIncludeDirName;
    return is_directory(include) ? IncludeDirectory{include, true} : IncludeDirectory{};
  }
  return {base_path(location) + "/" + kIncludeDirName, false};
}

}  // namespace

std::vector<std::string> pgbackrest_config_args(const PgBackRestConfigLocation& location,
                                                const std::string& default_config_path) {
  std::vector<std::string> args;
  if (!location.config_path.empty()) args.push_back("--config-path=" + location.config_path);
  if (!location.config.empty()) args.push_back("--config=" + location.config);
  if (const auto include = include_directory(location, default_config_path); include.named)
    args.push_back("--config-include-path=" + include.path);
  return args;
}

PgBackRestConfigFiles find_pgbackrest_config_files(const PgBackRestConfigLocation& location) {
  PgBackRestConfigFiles found;
  found.main_named = !location.config.empty();
  found.main_file = found.main_named ? location.config : base_path(location) + "/" + kConfigFileName;
  if (is_file(found.main_file)) {
    found.files.push_back(found.main_file);
  } else if (found.main_named) {
    found.problems.push_back("the pgBackRest config file " + found.main_file +
                             " (pgbackrest.config) does not exist");
  } else if (location.config_path.empty() && is_file(kOriginalDefaultConfig)) {
    found.main_file = kOriginalDefaultConfig;
    found.files.push_back(found.main_file);
  }

  const auto include = include_directory(location, kDefaultConfigPath);
  found.include_dir = include.path;
  found.include_named = include.named;
  if (found.include_dir.empty()) return found;
  if (!is_directory(found.include_dir)) {
    if (found.include_named)
      found.problems.push_back("the pgBackRest include directory " + found.include_dir +
                               " (pgbackrest.config_include_path) does not exist");
    return found;
  }
  std::vector<std::string> parts;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(found.include_dir, ec)) {
    const std::string name = entry.path().filename().string();
    // pgBackRest's expression ".+\.conf$", and only what can be read as a file.
    if (name.size() > 5 && name.ends_with(".conf") && is_file(entry.path().string()))
      parts.push_back(entry.path().string());
  }
  std::sort(parts.begin(), parts.end());
  found.files.insert(found.files.end(), parts.begin(), parts.end());
  return found;
}

PgBackRestSettings merge_pgbackrest_settings(const std::string& ini_text, const std::string& stanza,
                                             const std::string& command) {
  // Lowest precedence first: a later section's value replaces an earlier one's.
  const std::vector<std::string> order{"global", "global:" + command, stanza, stanza + ":" + command};
  std::vector<PgBackRestSettings> by_rank(order.size());
  std::istringstream lines(ini_text);
  std::string line;
  int rank = -1;
  while (std::getline(lines, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    if (line.front() == '[' && line.back() == ']') {
      const std::string section = trim(line.substr(1, line.size() - 2));
      const auto it = std::find(order.begin(), order.end(), section);
      rank = it == order.end() ? -1 : static_cast<int>(it - order.begin());
      continue;
    }
    const auto equals = line.find('=');
    if (rank < 0 || equals == std::string::npos) continue;
    by_rank[static_cast<std::size_t>(rank)][trim(line.substr(0, equals))] = trim(line.substr(equals + 1));
  }
  PgBackRestSettings merged;
  for (const auto& settings : by_rank)
    for (const auto& [key, value] : settings) merged[key] = value;
  return merged;
}

Result<PgBackRestSettings> read_pgbackrest_settings(const std::vector<std::string>& files,
                                                    const std::string& stanza, const std::string& command) {
  std::string text;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in)
      return make_error(ErrorKind::environment, "cannot read the pgBackRest config file " + file,
                        "check that the agent's user may read it");
    std::ostringstream content;
    content << in.rdbuf();
    text += content.str();
    text += "\n";
  }
  return merge_pgbackrest_settings(text, stanza, command);
}

std::vector<int> remote_repositories(const PgBackRestSettings& settings) {
  static const std::regex host_key(R"(repo([1-9][0-9]{0,2})-host)");
  std::vector<int> repos;
  for (const auto& [key, value] : settings) {
    std::smatch match;
    if (!value.empty() && std::regex_match(key, match, host_key)) repos.push_back(std::stoi(match[1].str()));
  }
  std::sort(repos.begin(), repos.end());
  return repos;
}

}  // namespace agent
