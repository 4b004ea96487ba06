#include "pgbackrest/restore_log.hpp"

#include <regex>

namespace agent {

std::optional<RestoredSet> parse_restored_set(std::string_view line) {
  static const std::regex pattern(
      R"((?:^|\s)(?:repo([0-9]{1,3}): )?restore backup set ([0-9]{8}-[0-9]{6}F(?:_[0-9]{8}-[0-9]{6}[DI])?)(?:,|$))");
  std::match_results<std::string_view::const_iterator> match;
  if (!std::regex_search(line.begin(), line.end(), match, pattern)) return std::nullopt;
  RestoredSet set;
  if (match[1].matched) set.repo = std::stoi(match[1].str());
  set.label = match[2].str();
  return set;
}

}  // namespace agent
