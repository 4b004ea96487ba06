#pragma once
// How the jobs reach pgBackRest: the options every command starts with, from the agent's config,
// and what must hold before a job runs it, checked before anything is written (the config files
// the agent names are there; the local pgBackRest can read what the repository holds).
#include "config/config.hpp"
#include "core/cancel.hpp"
#include "core/error.hpp"
#include "exec/commands.hpp"
#include "exec/process.hpp"
#include "pgbackrest/config_files.hpp"
#include "pgbackrest/version.hpp"

namespace agent {

PgBackRestConfigLocation pgbackrest_config_location(const AgentConfig& config);

// What every pgBackRest command of the agent starts with: the binary, the config options, the
// stanza and the repository (`repo` 0: no --repo; `pgbackrest info` is always run without one,
// so that it reports every repository, each with its own status).
PgBackRestTarget pgbackrest_target(const AgentConfig& config, int repo);

// A pgbackrest.config or config_include_path that does not exist: every pgBackRest command
// would fail on it, after the agent had started the job.
Status check_pgbackrest_config_files(const AgentConfig& config);

// `pgbackrest version` of pgbackrest.bin.
Result<PgBackRestVersion> read_pgbackrest_version(const AgentConfig& config, ProcessRunner& runner,
                                                  const CancelToken& cancel);

// Why backups cannot run from where the agent is ("" when they can, or when it cannot tell):
// pgBackRest before 2.55 backs up only on the repository host, so with a repository reached
// through one (repoN-host in pgBackRest's config, PGO's layout) the database pod's agent cannot.
std::string backup_placement_problem(const AgentConfig& config, ProcessRunner& runner,
                                     const CancelToken& cancel);

}  // namespace agent
