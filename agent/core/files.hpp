#pragma once
// Files that appear under their final name only when complete: written as NAME.partial
// (mode 0600), flushed, then renamed, and the directory flushed too.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"

namespace agent {

// Creates `path` fresh (an old file of that name is replaced), mode 0600; returns the fd.
Result<int> create_private_file(const std::string& path);
// fsyncs and closes `fd`, renames `partial` to `final_path`, fsyncs the directory.
Status publish_file(int fd, const std::string& partial, const std::string& final_path);
// Writes all of `data` to `fd`, going on after signals; false with errno set on failure.
bool write_fully(int fd, const char* data, std::size_t size);
// The same at `offset`, leaving the file's position alone.
bool pwrite_fully(int fd, const char* data, std::size_t size, std::uint64_t offset);
// Writes `content` to `path` through `path.partial`, mode 0600.
Status write_file_atomically(const std::string& path, const std::string& content);
// Creates a directory (and its parents) with mode 0700, or checks an existing one.
Status ensure_private_directory(const std::string& path);

}  // namespace agent
