// Fuzz target: a pgBackRest config file as the agent reads it (merge_pgbackrest_settings), and
// the repositories it finds behind a repository host (remote_repositories). The files come from
// the pod (PGO's projected conf.d, or whatever a user mounts): anything may be in them, and the
// agent reads them at start and at every reload.
#include <string>

#include "fuzz_check.hpp"
#include "pgbackrest/config_files.hpp"
#include "pgbackrest/version.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(agent::fuzz::as_text(data, size));
  for (const char* command : {"backup", "restore"}) {
    const auto settings = agent::merge_pgbackrest_settings(text, "db", command);
    int previous = 0;
    for (const int repo : agent::remote_repositories(settings)) {
      agent::fuzz::check(repo >= 1 && repo <= 999, "a repository key out of range", std::to_string(repo));
      agent::fuzz::check(repo > previous, "repository keys not ascending and unique");
      previous = repo;
      agent::fuzz::check(!settings.at("repo" + std::to_string(repo) + "-host").empty(),
                         "a repository host that is empty");
    }
  }
  // What `pgbackrest version` prints, from the same bytes.
  if (const auto version = agent::parse_pgbackrest_version_output(text))
    agent::fuzz::check(!version->text.empty(), "a version without its text");
  return 0;
}
