#pragma once
// The option table: every configuration key, once.
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace agent {

enum class OptionType { string, path, integer, choice };

struct OptionValue {
  std::string text;
  long long integer = 0;
  int index = 0;  // an indexed key's N ("schedules.repo2.full": 2); 0 for a plain key
};

// A key with "<N>" in it stands for one key per N from 1 to kMaxOptionIndex
// ("schedules.repo<N>.full": schedules.repo1.full ... schedules.repo256.full, one per pgBackRest
// repository). Such keys have no default: they are set or absent.
constexpr int kMaxOptionIndex = 256;
// Whether `key` is `pattern` (for an indexed pattern, with N in range, stored in `index`).
bool option_key_matches(std::string_view pattern, std::string_view key, int* index = nullptr);

struct OptionSpec {
  std::string_view key;  // dotted: "postgres.port" is `postgres: {port: ...}` in YAML
  OptionType type;
  std::string_view default_value;  // empty: no default
  std::string_view help;
  long long min = 0;
  long long max = 0;
  std::vector<std::string_view> choices;
  std::function<void(AgentConfig&, const OptionValue&)> apply;
  // For strings: an empty value means "off" instead of an error.
  bool allow_empty = false;
  // For strings: returns a problem ("not a time zone") or nothing.
  std::function<std::optional<std::string>(const std::string&)> validate;
};

std::span<const OptionSpec> option_table();
// The option `key` names, and for an indexed one its N in `index`.
const OptionSpec* find_option(std::string_view key, int* index = nullptr);

}  // namespace agent
