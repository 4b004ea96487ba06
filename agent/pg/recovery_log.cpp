#include "pg/recovery_log.hpp"

#include <algorithm>
#include <cctype>

namespace agent {

namespace {

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// Messages only the startup process writes: the first one names it.
bool is_startup_message(std::string_view line) {
  for (std::string_view message :
       {"database system was ", "starting point-in-time recovery", "starting archive recovery",
        "starting backup recovery", "entering standby mode", "redo starts at", "restored log file",
        "consistent recovery state reached", "recovery stopping ", "recovery ended before",
        "pausing at the end of recovery", "redo done at", "last completed transaction"})
    if (contains(line, message)) return true;
  return false;
}

std::string trimmed(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return std::string(text);
}

}  // namespace

std::optional<long> server_line_pid(std::string_view line) {
  if (line.size() < 4 || line.front() != '[') return std::nullopt;
  long pid = 0;
  std::size_t at = 1;
  for (; at < line.size() && std::isdigit(static_cast<unsigned char>(line[at])); ++at) {
    pid = pid * 10 + (line[at] - '0');
    if (pid > 1L << 40) return std::nullopt;
  }
  if (at == 1 || at + 1 >= line.size() || line[at] != ']' || line[at + 1] != ' ') return std::nullopt;
  return pid;
}

void RecoveryLog::feed(std::string_view line) {
  std::lock_guard lock(mutex_);
  ++facts_.lines;
  const auto pid = server_line_pid(line);
  if (!pid) {
    // A program the server ran. pgBackRest writes an error's first line as "ERROR: [NNN]: ..."
    // and its details on indented lines after it.
    const bool continuation = !line.empty() && (line.front() == ' ' || line.front() == '\t');
    if (contains(line, "ERROR:")) {
      facts_.tool_errors.push_back(trimmed(line));
      if (facts_.tool_errors.size() > 16) facts_.tool_errors.erase(facts_.tool_errors.begin());
      in_tool_error_ = true;
    } else if (continuation && in_tool_error_) {
      facts_.tool_errors.back() += " " + trimmed(line);
    } else {
      in_tool_error_ = false;
      // The server itself, before its log_line_prefix applies (a setting it refuses at start).
      if (!postmaster_pid_ && (contains(line, "FATAL:") || contains(line, "PANIC:")))
        facts_.last_fatal = std::string(line);
    }
    return;
  }
  in_tool_error_ = false;
  // The postmaster writes first: nothing else runs before it starts its children.
  if (!postmaster_pid_) postmaster_pid_ = *pid;
  if (!startup_pid_ && *pid != postmaster_pid_.value_or(-1) && is_startup_message(line)) startup_pid_ = *pid;
  const bool from_startup = startup_pid_ && *pid == *startup_pid_;
  const bool from_postmaster = postmaster_pid_ && *pid == *postmaster_pid_;
  if (!from_startup && !from_postmaster) return;  // a backend: the agent's own connections
  if (from_startup) ++facts_.recovery_lines;

  if (const auto at = line.find("recovery stopping "); at != std::string_view::npos) {
    facts_.target_reached = true;
    facts_.stop_detail = std::string(line.substr(at));
  }
  if (contains(line, "pausing at the end of recovery")) facts_.paused_at_target = true;
  if (contains(line, "recovery ended before configured recovery target was reached"))
    facts_.ended_before_target = true;
  static constexpr std::string_view kLastCompleted = "last completed transaction was at log time ";
  if (const auto at = line.find(kLastCompleted); at != std::string_view::npos)
    facts_.last_completed_transaction = std::string(line.substr(at + kLastCompleted.size()));
  static constexpr std::string_view kRedoDone = "redo done at ";
  if (const auto at = line.find(kRedoDone); at != std::string_view::npos) {
    const auto start = at + kRedoDone.size();
    const auto end = line.find(' ', start);
    facts_.redo_done_lsn = std::string(line.substr(start, end == std::string_view::npos ? end : end - start));
  }
  static constexpr std::string_view kRestored = "restored log file \"";
  if (const auto at = line.find(kRestored); at != std::string_view::npos) {
    const auto name = line.substr(at + kRestored.size(), 24);
    if (name.size() == 24 && name.find_first_not_of("0123456789ABCDEF") == std::string_view::npos) {
      facts_.restored_segments.emplace_back(name);
      if (facts_.restored_segments.size() > 256) facts_.restored_segments.pop_front();
    }
  }
  static constexpr std::string_view kOfRelation = " of relation ";
  if (const auto at = line.find(kOfRelation);
      at != std::string_view::npos && contains(line, "page ") &&
      (contains(line, " is uninitialized") || contains(line, " does not exist"))) {
    const auto start = at + kOfRelation.size();
    const auto end = line.find(' ', start);
    ++facts_.invalid_pages;
    facts_.invalid_page_relations.emplace_back(
        line.substr(start, end == std::string_view::npos ? end : end - start));
    if (facts_.invalid_page_relations.size() > 64)
      facts_.invalid_page_relations.erase(facts_.invalid_page_relations.begin());
  }
  if (contains(line, "FATAL:") || contains(line, "PANIC:")) facts_.last_fatal = std::string(line);
}

std::uint32_t relation_path_database(std::string_view path) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0; start <= path.size();) {
    const auto slash = std::min(path.find('/', start), path.size());
    parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  std::string_view oid;
  if (parts.size() == 3 && parts[0] == "base") oid = parts[1];
  if (parts.size() == 5 && parts[0] == "pg_tblspc") oid = parts[3];
  if (oid.empty() || oid.size() > 10 || oid.find_first_not_of("0123456789") != std::string_view::npos)
    return 0;
  const auto value = std::stoull(std::string(oid));
  return value > 0xFFFFFFFFull ? 0 : static_cast<std::uint32_t>(value);
}

RecoveryLogFacts RecoveryLog::facts() const {
  std::lock_guard lock(mutex_);
  RecoveryLogFacts facts = facts_;
  for (auto it = facts.tool_errors.rbegin(); it != facts.tool_errors.rend() && !facts.tool_error; ++it)
    if (classify_failure(*it) != FailureCause::unknown) facts.tool_error = *it;
  if (!facts.tool_error && !facts.tool_errors.empty()) facts.tool_error = facts.tool_errors.back();
  return facts;
}

FailureCause classify_failure(std::string_view reason) {
  if (contains(reason, "No space left on device") || contains(reason, "[28]") ||
      contains(reason, "could not extend file"))
    return FailureCause::out_of_space;
  for (std::string_view part :
       {"HostConnectError", "unable to connect", "Connection refused", "timeout", "timed out",
        "ProtocolError", "could not resolve", "unable to get address", "ServiceError", "[049]", "[039]",
        "[101]", "No route to host", "Network is unreachable"})
    if (contains(reason, part)) return FailureCause::repository_unreachable;
  for (std::string_view part :
       {"Permission denied", "[13]", "FileOpenError", "FileReadError", "PathOpenError", "FileMissingError",
        "unable to open", "unable to read", "unable to list", "AccessError", "[041]", "[053]", "[105]"})
    if (contains(reason, part)) return FailureCause::archive_unreadable;
  return FailureCause::unknown;
}

std::string describe_cause(FailureCause cause) {
  switch (cause) {
    case FailureCause::out_of_space:
      return "the disk is full";
    case FailureCause::archive_unreadable:
      return "the repository cannot be read";
    case FailureCause::repository_unreachable:
      return "the repository cannot be reached";
    case FailureCause::unknown:
      break;
  }
  return "";
}

}  // namespace agent
