#include "exec/no_sync.hpp"

#include <unistd.h>

#include <cstdlib>

namespace agent {

const std::vector<std::string> kSharedLibraryDirectories = {
    "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib",
};

std::optional<std::string> find_no_sync_library(const std::vector<std::string>& directories) {
  for (const auto& directory : directories) {
    for (const char* name : {"libeatmydata.so.1", "libeatmydata.so"}) {
      std::string path = directory + "/" + name;
      if (access(path.c_str(), R_OK) == 0) return path;
    }
  }
  return std::nullopt;
}

void preload_no_sync(ProcessSpec& spec, const std::string& library) {
  const char* inherited = std::getenv("LD_PRELOAD");
  std::string preload = (inherited != nullptr && *inherited != '\0') ? std::string(inherited) + ":" : "";
  spec.env.emplace_back("LD_PRELOAD", preload + library);
}

}  // namespace agent
