#pragma once
// Writes into the disposable scratch copy need not reach the disk before the dump: the copy is
// thrown away afterwards, and a crash only means running the dump again. libeatmydata (Debian
// package libeatmydata1), preloaded into pgBackRest's restore, turns its fsync calls into
// no-ops, so the restore stops waiting for the disk after every file. Never used for a process
// that writes the live cluster or the repository.
#include <optional>
#include <string>
#include <vector>

#include "exec/process.hpp"

namespace agent {

// Where Debian, Red Hat and Alpine put shared libraries.
extern const std::vector<std::string> kSharedLibraryDirectories;

// The path of libeatmydata if one of `directories` has it.
std::optional<std::string> find_no_sync_library(
    const std::vector<std::string>& directories = kSharedLibraryDirectories);

// Preloads `library` into the child, after what the agent's own environment preloads.
void preload_no_sync(ProcessSpec& spec, const std::string& library);

}  // namespace agent
