#pragma once
// The config the harnesses that build a dump job merge their input with: the defaults, as
// `agent dump` reads an empty config file.
#include "config/config.hpp"

namespace agent::fuzz {

inline const AgentConfig& default_config() {
  static const AgentConfig loaded = [] {
    auto load = load_config_text("", "defaults", {});
    load.config.restore.fsync = true;  // no look for libeatmydata on every input
    return load.config;
  }();
  return loaded;
}

}  // namespace agent::fuzz
