// `agent help [COMMAND...]`, `agent completion bash`, `agent man`: help printed from the parser.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/help_output.hpp"
#include "core/version.hpp"

namespace agent {

int command_help(const CLI::App& app, const std::vector<std::string>& topic) {
  const CLI::App* command = &app;
  std::string path = "agent";
  for (const auto& word : topic) {
    const auto subs = command->get_subcommands([&](const CLI::App* sub) { return sub->get_name() == word; });
    if (subs.empty()) {
      std::string known;
      for (const auto* sub :
           command->get_subcommands([](const CLI::App* s) { return !s->get_name().empty(); }))
        known += (known.empty() ? "" : ", ") + sub->get_name();
      std::fprintf(stderr, "agent help: '%s' is not a command of `%s` (there are: %s)\n", word.c_str(),
                   path.c_str(), known.c_str());
      return exit_code_for(ErrorKind::usage);
    }
    command = subs.front();
    path += " " + word;
  }
  // The formatter itself: App::help would show the parsed subcommand's help (this one's).
  std::fputs(command->get_formatter()->make_help(command, path, CLI::AppFormatMode::Normal).c_str(), stdout);
  return 0;
}

int command_completion(const CLI::App& app) {
  std::fputs(bash_completion(app).c_str(), stdout);
  return 0;
}

int command_man(const CLI::App& app) {
  std::fputs(man_page(app, kAgentVersion).c_str(), stdout);
  return 0;
}

}  // namespace agent
