#include <cstdio>
#include <exception>

#include "cli/cli.hpp"
#include "core/error.hpp"

// The process's exception boundary: whatever escapes a command is a bug, reported as one with
// its documented exit code, never an abort.
int main(int argc, char** argv) {
  try {
    return agent::run_cli(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "agent: internal error: %s\nHINT: this is a bug in the agent; please report it\n",
                 e.what());
  } catch (...) {
    std::fprintf(
        stderr,
        "agent: internal error of unknown type\nHINT: this is a bug in the agent; please report it\n");
  }
  return agent::exit_code_for(agent::ErrorKind::internal);
}
