#include <cstdio>
#include <exception>
#include <string>

#include "cli/cli.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

namespace {
// A bug, as one log record in the configured format (a JSON log stays JSON).
int internal_error(const std::string& what) {
  const agent::Error error = agent::make_error(agent::ErrorKind::internal, "internal error: " + what,
                                               "this is a bug in the agent; please report it");
  const int code = agent::exit_code_for(error.kind);
  try {
    agent::log::Fields exit;
    exit.exit_code = code;
    agent::log::error(*agent::log::get("agent"), error, {}, spdlog::level::err, exit);
  } catch (...) {
    std::fprintf(stderr, "agent: %s\nHINT: %s\n", error.message.c_str(), error.hint.c_str());
  }
  return code;
}
}  // namespace

// The process's exception boundary: whatever escapes a command is a bug, reported as one with
// its documented exit code, never an abort.
int main(int argc, char** argv) {
  try {
    return agent::run_cli(argc, argv);
  } catch (const std::exception& e) {
    return internal_error(e.what());
  } catch (...) {
    return internal_error("an exception of unknown type");
  }
}
