#include "pipelines/kept_copy.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace agent {

std::string shell_word(const std::string& value) {
  const bool safe = !value.empty() && std::all_of(value.begin(), value.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) != 0 ||
           std::string_view("/._-+:@=,").find(ch) != std::string_view::npos;
  });
  if (safe) return value;
  std::string quoted = "'";
  for (char ch : value) quoted += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return quoted + "'";
}

std::string kept_copy_psql(const std::string& socket_dir, int port, const std::string& user,
                           const std::string& database) {
  return "psql -h " + shell_word(socket_dir) + " -p " + std::to_string(port) + " -U " + shell_word(user) +
         " -d " + shell_word(database);
}

std::string kept_copy_oc_exec(const std::string& pod, const std::string& psql) {
  return "oc exec -it " + shell_word(pod) + " -c agent -- " + psql;
}

std::string wait_while_kept(Clock& clock, const CancelToken& cancel, std::chrono::seconds keep,
                            const KeepWatch& watch) {
  // Steady time: a wall clock set back must not keep the copy longer.
  const auto deadline = clock.steady_now() + keep;
  for (;;) {
    if (watch.stop != nullptr && watch.stop->cancelled()) return "agent dump --stop";
    if (watch.exited)
      if (auto exited = watch.exited()) return "the server ended by itself (" + *exited + ")";
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock.steady_now());
    if (left.count() <= 0) return "its deadline";
    // A quarter of a second at most: the stop request and the server are looked at that often.
    if (!clock.sleep_for(std::min(left, std::chrono::milliseconds(250)), cancel))
      return watch.disk_tripped && watch.disk_tripped() ? "free space below the reserve" : "a signal";
  }
}

}  // namespace agent
