#pragma once
// A child's own children (pg_dump's parallel workers, pgBackRest's local processes, a server's
// backends) share its process group. When the child ends, the runner kills the group; this
// waits until those processes have really stopped, so that the caller's cleanup (removing a
// partial dump directory, a scratch copy) never races a worker that is still writing.
#include <sys/types.h>

#include <chrono>
#include <vector>

namespace agent {

// The processes of `group` other than `leader` that are not zombies, from /proc (empty where
// /proc cannot be read). A zombie has stopped for good, even if no one reaps it (an agent
// that is PID 1 without an init, or a machine whose PID 1 does not reap orphans).
std::vector<pid_t> running_group_members(pid_t group, pid_t leader);

// Polls until `running_group_members` is empty or `limit` has passed; the members still
// running then (empty when the group ended in time).
std::vector<pid_t> wait_for_group_to_stop(pid_t group, pid_t leader, std::chrono::milliseconds limit);

}  // namespace agent
