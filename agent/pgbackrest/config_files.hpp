#pragma once
// Which pgBackRest config files a command reads, found the way pgBackRest finds them
// (src/config/parse.c, cfgFileLoad), the options that make it read them, and the settings in
// them that decide what the agent can do (where the repositories are).
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace agent {

struct PgBackRestConfigLocation {
  std::string config_path;          // --config-path: the base of both defaults below
  std::string config;               // --config: the main file
  std::string config_include_path;  // --config-include-path: a directory of *.conf files
};

// pgBackRest's options for `location`. Nothing that is empty is passed: pgBackRest's own
// discovery (/etc/pgbackrest/pgbackrest.conf and /etc/pgbackrest/conf.d/*.conf) is what PGO's
// pods rely on. With --config but no include path, the include directory pgBackRest would have
// read is passed when it exists: --config alone makes pgBackRest skip conf.d, where PGO puts
// the cloud repositories' credentials.
// `default_config_path` is pgBackRest's compiled-in /etc/pgbackrest (a parameter for the tests).
std::vector<std::string> pgbackrest_config_args(const PgBackRestConfigLocation& location,
                                                const std::string& default_config_path = "/etc/pgbackrest");

struct PgBackRestConfigFiles {
  std::string main_file;              // read first, when it exists
  bool main_named = false;            // named with --config: pgBackRest fails when it is missing
  std::string include_dir;            // its *.conf files are read in name order (empty: none)
  bool include_named = false;         // named with --config-include-path: it must exist
  std::vector<std::string> files;     // the files that exist, in the order pgBackRest reads them
  std::vector<std::string> problems;  // what makes every pgBackRest command fail
};

PgBackRestConfigFiles find_pgbackrest_config_files(const PgBackRestConfigLocation& location);

// Option name -> value, as pgBackRest merges its sections for one stanza and command:
// [global], then [global:COMMAND], then [STANZA], then [STANZA:COMMAND], the later winning.
using PgBackRestSettings = std::map<std::string, std::string>;

PgBackRestSettings merge_pgbackrest_settings(const std::string& ini_text, const std::string& stanza,
                                             const std::string& command);

// The same over `files` (their text joined in order, as pgBackRest does).
Result<PgBackRestSettings> read_pgbackrest_settings(const std::vector<std::string>& files,
                                                    const std::string& stanza, const std::string& command);

// The repositories (their keys, ascending) whose repoN-host is set: they are reached over
// TLS or SSH through a repository host, not on this pod's disk.
std::vector<int> remote_repositories(const PgBackRestSettings& settings);

}  // namespace agent
