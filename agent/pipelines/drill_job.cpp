#include "pipelines/drill_job.hpp"

#include <fstream>
#include <sstream>

namespace agent {
namespace {

std::string trimmed(std::string text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

Result<DrillAssertion> parse_assertion(const std::string& text, const std::string& where) {
  const auto colon = text.find(':');
  DrillAssertion assertion;
  if (colon != std::string::npos) {
    assertion.database = trimmed(text.substr(0, colon));
    assertion.sql = trimmed(text.substr(colon + 1));
  }
  if (assertion.database.empty() || assertion.sql.empty() || assertion.database.size() > 63 ||
      assertion.database.find_first_of(" \t") != std::string::npos)
    return make_error(ErrorKind::usage, where + ": '" + text + "' is not an assertion",
                      "write DATABASE: SQL, e.g. api: SELECT count(*) > 0 FROM events");
  return assertion;
}

}  // namespace

Result<std::vector<DrillAssertion>> parse_drill_assertions(const std::string& text,
                                                           const std::string& source) {
  std::vector<DrillAssertion> assertions;
  std::istringstream lines(text);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    const std::string content = trimmed(line);
    if (content.empty() || content.front() == '#') continue;
    auto assertion = parse_assertion(content, source + ":" + std::to_string(number));
    if (!assertion) return assertion.error();
    assertions.push_back(*assertion);
  }
  return assertions;
}

Result<DrillJob> build_drill_job(const AgentConfig& config, const DrillArguments& arguments, SysMicros now) {
  const int modes = (arguments.target ? 1 : 0) + (arguments.latest ? 1 : 0);
  if (modes > 1)
    return make_error(ErrorKind::usage, "--target and --latest exclude each other",
                      "give --target TIME, --set LABEL, --target with --set, or --latest (the default)");
  DrillJob job;
  job.mode = arguments.target ? "target" : arguments.backup_set ? "set" : "latest";
  DumpArguments copy;
  // Without a target the copy goes as far as the archived WAL does: the target is now, which
  // no archived commit can follow (run_on_paused_copy pauses at the WAL's end).
  copy.target = arguments.target.value_or(format_for_pgbackrest(now));
  copy.backup_set = arguments.backup_set;
  copy.repo = arguments.repo;
  if (!copy.repo && config.drill.repo > 0) copy.repo = config.drill.repo;
  copy.scratch = arguments.scratch;
  copy.port = arguments.port;
  copy.database = "postgres";
  copy.output = "-";
  auto built = build_dump_job(config, copy);
  if (!built) return built.error();
  job.copy = std::move(*built);

  std::vector<std::string> databases = arguments.databases;
  if (databases.empty()) {
    std::string list = config.drill.databases;
    std::size_t start = 0;
    while (start <= list.size()) {
      const auto comma = std::min(list.find(',', start), list.size());
      const std::string name = trimmed(list.substr(start, comma - start));
      if (!name.empty()) databases.push_back(name);
      start = comma + 1;
    }
  }
  for (const auto& name : databases)
    if (name.empty() || name.size() > 63)
      return make_error(ErrorKind::usage, "database name '" + name + "' is empty or too long",
                        "PostgreSQL names have 1 to 63 bytes");
  job.databases = databases;

  if (!config.drill.assertions_file.empty()) {
    std::ifstream file(config.drill.assertions_file);
    if (!file)
      return make_error(ErrorKind::environment,
                        "cannot read drill.assertions_file " + config.drill.assertions_file,
                        "create it (lines DATABASE: SQL) or set drill.assertions_file to \"\"");
    std::stringstream text;
    text << file.rdbuf();
    auto parsed = parse_drill_assertions(text.str(), config.drill.assertions_file);
    if (!parsed) return parsed.error();
    job.assertions = *parsed;
  }
  for (const auto& text : arguments.assertions) {
    auto assertion = parse_assertion(text, "--assert");
    if (!assertion) return assertion.error();
    job.assertions.push_back(*assertion);
  }
  job.statement_timeout_seconds = config.drill.statement_timeout_seconds;
  job.manifest_dir = config.state_dir + "/drills";
  job.narrowed_by_caller = !arguments.databases.empty() || !arguments.assertions.empty();
  return job;
}

}  // namespace agent
