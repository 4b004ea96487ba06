#include "pgbackrest/version.hpp"

#include <charconv>
#include <regex>

namespace agent {

std::optional<PgBackRestVersion> parse_pgbackrest_version(std::string_view text) {
  static const std::regex pattern(R"(([0-9]{1,4})\.([0-9]{1,4})(?:\.([0-9]{1,4}))?([A-Za-z][A-Za-z0-9]*)?)");
  std::match_results<std::string_view::const_iterator> match;
  if (!std::regex_match(text.begin(), text.end(), match, pattern)) return std::nullopt;
  PgBackRestVersion version;
  version.text = std::string(text);
  const auto number = [&match](int index) {
    int value = 0;
    if (match[index].matched)
      std::from_chars(&*match[index].first, &*match[index].first + match[index].length(), value);
    return value;
  };
  version.major = number(1);
  version.minor = number(2);
  version.patch = number(3);
  return version;
}

std::optional<PgBackRestVersion> parse_pgbackrest_version_output(std::string_view output) {
  constexpr std::string_view prefix = "pgBackRest ";
  const auto start = output.find(prefix);
  if (start == std::string_view::npos) return std::nullopt;
  auto rest = output.substr(start + prefix.size());
  const auto end = rest.find_first_of(" \t\r\n");
  return parse_pgbackrest_version(rest.substr(0, end));
}

std::optional<Error> older_than_writer_refusal(const PgBackRestVersion& local, const BackupRecord& backup,
                                               const std::string& use) {
  if (backup.backrest_version.empty()) return std::nullopt;
  const auto writer = parse_pgbackrest_version(backup.backrest_version);
  if (!writer || !(local < *writer)) return std::nullopt;
  return make_error(ErrorKind::environment,
                    "backup set " + backup.label + " was written by pgBackRest " + writer->text +
                        ", and pgbackrest.bin is pgBackRest " + local.text +
                        ", which may not read what newer versions write (block incremental needs 2.46): "
                        "the agent will not " +
                        use + " it",
                    "give the agent pgBackRest " + writer->text +
                        " (the image's PGBACKREST_VERSION build argument; PGO 5.8 and 6.0 ship 2.56.0), the "
                        "version of the repository's other clients");
}

}  // namespace agent
