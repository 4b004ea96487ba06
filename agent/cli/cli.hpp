#pragma once
// The command line: parses arguments, dispatches to a command, returns the exit code.
namespace agent {
int run_cli(int argc, char** argv);
}
