#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "config/options.hpp"
#include "core/files.hpp"

namespace agent {

const char* const kDefaultConfigPath = "/etc/agent/agent.yaml";

std::string ConfigIssue::describe() const {
  std::string where = source;
  if (line > 0) where += ":" + std::to_string(line);
  std::string text = where + ": " + message;
  if (!hint.empty()) text += " (hint: " + hint + ")";
  return text;
}

Error config_error(const std::vector<ConfigIssue>& issues) {
  std::string message = "configuration is invalid:";
  for (const auto& issue : issues) message += "\n  " + issue.describe();
  return make_error(ErrorKind::usage, message,
                    "fix the keys above; `agent config example` prints every key with its "
                    "default, and `agent config check FILE` checks a file");
}

namespace {

// A config file is a few kilobytes; anything this large is not one.
constexpr std::size_t kMaxConfigBytes = 1024 * 1024;

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string suggestion_for(std::string_view key) {
  std::string best;
  std::size_t best_distance = 4;
  for (const auto& option : option_table()) {
    const auto distance = edit_distance(key, option.key);
    if (distance < best_distance) {
      best_distance = distance;
      best = std::string(option.key);
    }
  }
  return best.empty() ? "remove it; `agent config example` lists the known keys"
                      : "did you mean '" + best + "'?";
}

// A section is what comes before a dot of some key: "schedules", and "schedules.repo2" for the
// indexed "schedules.repo<N>.full".
bool is_section(std::string_view prefix) {
  for (const auto& option : option_table()) {
    for (auto dot = option.key.find('.'); dot != std::string_view::npos; dot = option.key.find('.', dot + 1))
      if (option_key_matches(option.key.substr(0, dot), prefix)) return true;
  }
  return false;
}

class Loader {
 public:
  Loader(AgentConfig& config, std::vector<ConfigIssue>& issues) : config_(config), issues_(issues) {}

  void set(const std::string& source, int line, const std::string& key, const std::string& text) {
    int index = 0;
    const OptionSpec* spec = find_option(key, &index);
    if (spec == nullptr) {
      issue(source, line, "unknown key '" + key + "'", suggestion_for(key));
      return;
    }
    OptionValue value{text, 0, index};
    switch (spec->type) {
      case OptionType::integer: {
        long long parsed = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
        if (ec != std::errc() || end != text.data() + text.size()) {
          issue(source, line, "'" + key + "' must be a whole number, not '" + text + "'",
                "for example " + key + ": " + std::string(spec->default_value));
          return;
        }
        if (parsed < spec->min || parsed > spec->max) {
          issue(source, line,
                "'" + key + "' is " + text + ", outside " + std::to_string(spec->min) + ".." +
                    std::to_string(spec->max),
                std::string(spec->help));
          return;
        }
        value.integer = parsed;
        break;
      }
      case OptionType::choice: {
        if (std::find(spec->choices.begin(), spec->choices.end(), text) == spec->choices.end()) {
          std::string allowed;
          for (auto choice : spec->choices) allowed += (allowed.empty() ? "" : ", ") + std::string(choice);
          issue(source, line, "'" + key + "' is '" + text + "'", "use one of: " + allowed);
          return;
        }
        break;
      }
      case OptionType::path:
      case OptionType::string:
        if (text.empty() && spec->allow_empty) break;
        if (text.empty()) {
          issue(source, line, "'" + key + "' is empty", std::string(spec->help));
          return;
        }
        if (text.find('\0') != std::string::npos || text.find('\n') != std::string::npos) {
          issue(source, line, "'" + key + "' contains a control character", std::string(spec->help));
          return;
        }
        if (spec->validate) {
          if (auto problem = spec->validate(text)) {
            issue(source, line, "'" + key + "': " + *problem, std::string(spec->help));
            return;
          }
        }
        break;
    }
    spec->apply(config_, value);
  }

  void walk(const YAML::Node& node, const std::string& prefix, const std::string& source) {
    for (const auto& entry : node) {
      const int line = entry.first.Mark().line + 1;
      const std::string name = entry.first.Scalar();
      const std::string key = prefix.empty() ? name : prefix + "." + name;
      const YAML::Node& value = entry.second;
      if (value.IsMap()) {
        if (!is_section(key)) {
          if (find_option(key) != nullptr)
            issue(source, line, "'" + key + "' must be a single value, not a mapping", "");
          else
            issue(source, line, "unknown section '" + key + "'", suggestion_for(key));
          continue;
        }
        walk(value, key, source);
      } else if (value.IsScalar()) {
        if (is_section(key) && find_option(key) == nullptr) {
          issue(source, line, "'" + key + "' is a section and needs keys under it",
                "see `agent config example`");
          continue;
        }
        set(source, line, key, value.Scalar());
      } else if (value.IsNull()) {
        issue(source, line, "'" + key + "' has no value",
              is_section(key) ? "remove the empty section" : "give it a value or remove it");
      } else {
        issue(source, line, "'" + key + "' must be a single value, not a list", "");
      }
    }
  }

  void issue(const std::string& source, int line, std::string message, std::string hint) {
    issues_.push_back(ConfigIssue{source, line, std::move(message), std::move(hint)});
  }

 private:
  AgentConfig& config_;
  std::vector<ConfigIssue>& issues_;
};

void apply_defaults(AgentConfig& config) {
  for (const auto& option : option_table()) {
    if (option.key.find("<N>") != std::string_view::npos) continue;  // set or absent, no default
    OptionValue value{std::string(option.default_value), 0, 0};
    if (option.type == OptionType::integer) value.integer = std::stoll(value.text);
    option.apply(config, value);
  }
}

// yaml-cpp 0.7 keeps every entry of a mapping, a repeated key included, and its lookups take the
// first: a file that says `port` twice would be read one way by us and perhaps another way by
// the person reading it. Every repeat is reported, at any depth and also in sections that are
// not ours (those are errors anyway, but a repeat is worth saying). Each mapping or list is
// looked at once (by where it starts in the text), so aliases of aliases cannot make the walk
// exponential; `depth` bounds it too.
void find_duplicate_keys(Loader& loader, const YAML::Node& node, const std::string& prefix,
                         const std::string& source, std::set<int>& visited, int depth = 0) {
  if (depth > 64 || !(node.IsSequence() || node.IsMap())) return;
  const int position = node.Mark().pos;
  if (position >= 0 && !visited.insert(position).second) return;
  if (node.IsSequence()) {
    for (std::size_t i = 0; i < node.size(); ++i)
      find_duplicate_keys(loader, node[i], prefix + "[" + std::to_string(i) + "]", source, visited,
                          depth + 1);
    return;
  }
  std::map<std::string, int> first_line;
  for (const auto& entry : node) {
    const int line = entry.first.Mark().line + 1;
    const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : std::string();
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    if (entry.first.IsScalar()) {
      const auto [seen, inserted] = first_line.emplace(name, line);
      if (!inserted)
        loader.issue(source, line,
                     "duplicate key '" + key + "'" +
                         (seen->second > 0 ? " (first at line " + std::to_string(seen->second) + ")" : ""),
                     "keep only one '" + name + "'" + (prefix.empty() ? "" : " under '" + prefix + "'") +
                         " and remove the other: the agent does not guess which one you meant");
    }
    find_duplicate_keys(loader, entry.second, key, source, visited, depth + 1);
  }
}

void load_yaml(Loader& loader, const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    loader.issue(source, e.mark.line + 1, "not valid YAML: " + e.msg,
                 "check indentation and quoting near that line");
    return;
  }
  if (root.IsNull()) return;  // an empty file means all defaults
  if (!root.IsMap()) {
    loader.issue(source, root.Mark().line + 1, "the top level must be a mapping of keys",
                 "see `agent config example`");
    return;
  }
  std::set<int> seen;
  find_duplicate_keys(loader, root, "", source, seen);
  loader.walk(root, "", source);
}

void apply_overrides(Loader& loader, const std::vector<ConfigOverride>& overrides) {
  for (const auto& override_value : overrides)
    loader.set("command line " + override_value.flag, 0, override_value.key, override_value.value);
}

}  // namespace

ConfigLoad load_config_text(const std::string& yaml_text, const std::string& source_name,
                            const std::vector<ConfigOverride>& overrides) {
  ConfigLoad load;
  apply_defaults(load.config);
  Loader loader(load.config, load.issues);
  load_yaml(loader, yaml_text, source_name);
  // The file's problems in the order of its lines, a repeated key next to its neighbours.
  std::stable_sort(load.issues.begin(), load.issues.end(),
                   [](const ConfigIssue& a, const ConfigIssue& b) { return a.line < b.line; });
  apply_overrides(loader, overrides);
  return load;
}

ConfigLoad load_config(const std::string& path, bool path_must_exist,
                       const std::vector<ConfigOverride>& overrides) {
  if (path.empty()) return load_config_text("", "defaults", overrides);
  // A FIFO or a directory given as the config (an easy slip with --config) must neither hang
  // nor pass as an empty file of defaults.
  FileRead file = read_regular_file_nonblocking(path, kMaxConfigBytes);
  if (!file.ok()) {
    if (file.outcome == FileRead::Outcome::missing && !path_must_exist)
      return load_config_text("", "defaults", overrides);
    ConfigLoad load;
    apply_defaults(load.config);
    std::string problem = file.problem;
    if (file.outcome == FileRead::Outcome::too_large)
      problem = path + " is larger than " + std::to_string(kMaxConfigBytes / 1024) + " KiB";
    load.issues.push_back(ConfigIssue{
        path, 0, "cannot read the config file: " + problem,
        file.outcome == FileRead::Outcome::not_regular || file.outcome == FileRead::Outcome::too_large
            ? "give the path of the YAML config file itself"
            : "check the path and its permissions"});
    return load;
  }
  return load_config_text(file.content, path, overrides);
}

std::string example_config_yaml() {
  std::string out =
      "# agent configuration. Every key is optional; the values shown are the defaults.\n"
      "# Generated from the agent's option table: `agent config example` prints this file.\n"
      "# Check a file with `agent config check FILE`; unknown keys are errors.\n";
  std::string current_section;
  std::string current_subsection;
  for (const auto& option : option_table()) {
    const std::string key(option.key);
    const auto dot = key.find('.');
    const auto second_dot = dot == std::string::npos ? std::string::npos : key.find('.', dot + 1);
    const std::string section = dot == std::string::npos ? "" : key.substr(0, dot);
    // An indexed subsection (schedules.repo<N>) is shown once, commented out, for N = 2.
    std::string subsection = second_dot == std::string::npos ? "" : key.substr(dot + 1, second_dot - dot - 1);
    const bool indexed = key.find("<N>") != std::string::npos;
    if (indexed) subsection.replace(subsection.find("<N>"), 3, "2");
    const std::string name = key.substr((second_dot != std::string::npos ? second_dot : dot) + 1);
    if (section != current_section) {
      out += "\n";
      if (!section.empty()) out += section + ":\n";
      current_section = section;
      current_subsection.clear();
    } else if (section.empty()) {
      out += "\n";
    }
    const std::string comment = indexed ? "# " : "";
    std::string indent = section.empty() ? "" : "  ";
    if (subsection != current_subsection && !subsection.empty())
      out += indent + comment + subsection + ":" + (indexed ? " (an example)" : "") + "\n";
    current_subsection = subsection;
    if (!subsection.empty()) indent += comment + "  ";
    out += indent + "# " + std::string(option.help);
    if (option.type == OptionType::choice) {
      out += " One of:";
      for (auto choice : option.choices) out += " " + std::string(choice);
      out += ".";
    }
    if (option.type == OptionType::integer)
      out += " Range " + std::to_string(option.min) + ".." + std::to_string(option.max) + ".";
    const std::string value = option.default_value.empty() ? "\"\"" : std::string(option.default_value);
    out += "\n" + indent + name + ": " + value + "\n";
  }
  return out;
}

}  // namespace agent
