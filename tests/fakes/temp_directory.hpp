#pragma once
// A fresh directory under the system's temporary directory, removed with whatever is left in
// it when the test is done.
#include <stdlib.h>

#include <filesystem>
#include <string>

namespace agent::testing {

struct TempDirectory {
  std::string path;
  explicit TempDirectory(const std::string& prefix) {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    path = mkdtemp(pattern.data());
  }
  ~TempDirectory() { std::filesystem::remove_all(path); }
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;
  bool empty() const { return std::filesystem::is_empty(path); }
};

}  // namespace agent::testing
