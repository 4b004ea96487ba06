#pragma once
// Help for the places users look besides --help: a bash completion script and a man page. Both
// are generated from the command line's own option table (the CLI::App that parses), so a new
// option or command appears in them without anyone remembering to add it.
#include <string>

namespace CLI {
class App;
}

namespace agent {

// A bash completion script defining and registering `_agent`: commands and subcommands, each
// command's options, the values of options with a fixed set (e.g. --type full|diff|incr), and
// file names for options and arguments that name files or directories.
std::string bash_completion(const CLI::App& app);

// A man page (roff, section 1): every command with its description and options.
std::string man_page(const CLI::App& app, const std::string& version);

}  // namespace agent
