#pragma once
// `agent dump --keep-running`: after the dump is published, the paused copy stays up on its
// private socket for a person to inspect with psql, until its deadline, `agent dump --stop`,
// a signal, the disk watchdog, or the server's own end. This file holds what that needs
// besides the pipeline: how a person connects, and the wait.
#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "core/cancel.hpp"
#include "core/clock.hpp"

namespace agent {

// The paused copy left up after the dump, and how a person reaches it.
struct KeptCopy {
  std::string socket_dir;  // the copy's private Unix socket directory (no TCP listener)
  int port = 0;
  std::string user;
  std::string database;
  std::string pod;  // $HOSTNAME: the pod's name in Kubernetes; "POD" when unknown
  std::chrono::system_clock::time_point since{};
  std::chrono::system_clock::time_point until{};  // the deadline, when the copy is stopped
};

// A value as one word of a POSIX shell: as it is when it holds only safe characters, else in
// single quotes.
std::string shell_word(const std::string& value);
// `psql -h SOCKETDIR -p PORT -U USER -d DATABASE`, each value a shell word.
std::string kept_copy_psql(const std::string& socket_dir, int port, const std::string& user,
                           const std::string& database);
// The same from outside the pod: `oc exec -it POD -c agent -- psql ...`.
std::string kept_copy_oc_exec(const std::string& pod, const std::string& psql);

// What can end the wait besides the deadline; each may be empty.
struct KeepWatch {
  const CancelToken* stop = nullptr;                   // `agent dump --stop`
  std::function<std::optional<std::string>()> exited;  // the server's end, as it describes it
  std::function<bool()> disk_tripped;                  // the watchdog stopped the job
};

// Waits until the copy is to be stopped and says why: "its deadline", "agent dump --stop",
// "a signal", "free space below the reserve", or "the server ended by itself (...)".
// `cancel` is the job's (SIGINT, SIGTERM, the agent's shutdown, the watchdog).
std::string wait_while_kept(Clock& clock, const CancelToken& cancel, std::chrono::seconds keep,
                            const KeepWatch& watch);

}  // namespace agent
