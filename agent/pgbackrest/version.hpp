#pragma once
// pgBackRest's version: what `pgbackrest version` prints, how two versions compare, and the
// refusal when the local binary is older than the one that wrote a repository's backups.
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "pgbackrest/info.hpp"

namespace agent {

struct PgBackRestVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;
  std::string text;  // as pgBackRest writes it, e.g. "2.56.0" or "2.45"

  auto operator<=>(const PgBackRestVersion& other) const {
    return std::tie(major, minor, patch) <=> std::tie(other.major, other.minor, other.patch);
  }
  bool operator==(const PgBackRestVersion& other) const { return (*this <=> other) == 0; }
};

// "2.56.0", "2.45" (a development suffix such as "2.57.0dev" is ignored).
std::optional<PgBackRestVersion> parse_pgbackrest_version(std::string_view text);

// The output of `pgbackrest version`: "pgBackRest 2.56.0".
std::optional<PgBackRestVersion> parse_pgbackrest_version_output(std::string_view output);

// A pgBackRest older than the one that wrote `backup` may not read it (block incremental needs
// 2.46, and every release may add to the manifest): the refusal naming both versions and the fix.
// `use` says what the agent was about to do with it ("restore from", "back up on top of").
std::optional<Error> older_than_writer_refusal(const PgBackRestVersion& local, const BackupRecord& backup,
                                               const std::string& use);

}  // namespace agent
