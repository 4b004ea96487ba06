#pragma once
// What `agent dump` was asked to do, after the command line and config were merged.
#include <optional>
#include <string>

#include "config/config.hpp"
#include "time/target_time.hpp"

namespace agent {

struct DumpJob {
  AgentConfig config;
  TargetTime target;
  std::string database;
  std::string output;  // "-" is standard output
  std::string scratch;
  int port = 0;
  std::optional<std::string> backup_set;
  bool overwrite = false;

  bool to_stdout() const { return output == "-"; }
};

}  // namespace agent
