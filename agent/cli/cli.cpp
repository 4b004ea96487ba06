#include "cli/cli.hpp"

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/version.hpp"
#include "time/target_time.hpp"

namespace agent {

namespace {
constexpr const char* kLogFormatHelp =
    "text or json (config log.format; on a terminal the log is text unless this is given)";
}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{
      "agent: point-in-time dumps and backups for PostgreSQL with pgBackRest, as a sidecar.\n"
      "Exit codes: 0 success, 1 internal error, 2 usage or config error, 3 target outside the "
      "recoverable window, 4 verification failed, 5 environment problem (port, disk, "
      "permissions, paths), 6 external tool failed, 7 interrupted by a signal.",
      "agent"};
  app.require_subcommand(1);
  app.set_version_flag("--version", kAgentVersion);

  DumpOptions dump;
  auto* dump_cmd = app.add_subcommand(
      "dump",
      "Restore the backup (only the dumped database, where that is safe) to a scratch directory at a "
      "point in time, start a temporary server there, wait until recovery reached the target, verify it, "
      "dump it with pg_dump --create (plain SQL, custom or directory format; zstd; tables or schemas "
      "only), and stop and clean up whatever fails. With `agent run` up, the running agent takes the dump "
      "and this command follows it.");
  dump_cmd->add_option("--target", dump.arguments.target,
                       std::string("Required (except with --stop). What to dump: latest, lsn:X/Y, xid:N, "
                                   "name:RESTORE_POINT, or a time with a zone "
                                   "or offset. Times accepted: ") +
                           kTargetTimeForms);
  dump_cmd->add_option("--database", dump.arguments.database, "Database to dump (config dump.database)");
  dump_cmd->add_option("--output", dump.arguments.output,
                       "Dump file, written as FILE.partial then renamed; '-' writes to standard output "
                       "(config dump.output)");
  dump_cmd->add_option("--scratch", dump.arguments.scratch,
                       "Scratch directory the agent owns (config restore.scratch)");
  dump_cmd->add_option("--port", dump.arguments.port, "Port of the temporary server (config restore.port)")
      ->check(CLI::Range(1, 65535));
  dump_cmd->add_option("--set", dump.arguments.backup_set,
                       "Restore from this backup set label instead of the automatic choice");
  dump_cmd
      ->add_option("--repo", dump.arguments.repo,
                   "Restore from this repository (pgBackRest's --repo; config pgbackrest.repo); without "
                   "it, pgBackRest's choice: the first repository in key order with a backup set for the "
                   "target")
      ->check(CLI::Range(1, 256));
  dump_cmd->add_option("--config", dump.config_path,
                       "Config file (default $AGENT_CONFIG, else /etc/agent/agent.yaml)");
  dump_cmd->add_option("--log-format", dump.log_format, kLogFormatHelp);
  dump_cmd->add_flag("--overwrite", dump.arguments.overwrite, "Replace an existing output file");
  // Selection, format, compression (pipelines/dump_format.hpp): each pattern is one value.
  for (auto [flag, list, help] :
       {std::tuple{"--table", &dump.arguments.tables, "Dump only tables matching this pg_dump pattern"},
        std::tuple{"--exclude-table", &dump.arguments.exclude_tables, "Leave out tables matching it"},
        std::tuple{"--schema", &dump.arguments.schemas, "Dump only schemas matching it"},
        std::tuple{"--exclude-schema", &dump.arguments.exclude_schemas, "Leave out schemas matching it"}})
    dump_cmd->add_option(flag, *list, std::string(help) + " (repeatable)")->allow_extra_args(false);
  dump_cmd->add_flag("--data-only", dump.arguments.data_only, "Only the rows");
  dump_cmd->add_flag("--schema-only", dump.arguments.schema_only, "Only the schema");
  dump_cmd->add_option("--format", dump.arguments.format, "plain, custom or directory (config dump.format)");
  dump_cmd->add_option("--jobs", dump.arguments.jobs,
                       "pg_dump processes, directory format (config dump.jobs)");
  dump_cmd->add_option("--compress", dump.arguments.compress,
                       "none, zstd[:N] (plain), gzip[:N] (custom, directory) (config dump.compress)");
  dump_cmd->add_flag("--globals", dump.arguments.globals,
                     "Also the roles (pg_dumpall --globals-only --no-role-passwords): OUTPUT.globals.sql, or "
                     "first in the stream with --output -");
  dump_cmd->add_flag("--keep-running", dump.arguments.keep_running,
                     "After the dump, leave the paused copy up on its private socket for inspection with "
                     "psql (the log says how to connect) until --keep-for has passed or `agent dump --stop`");
  dump_cmd->add_option("--keep-for", dump.arguments.keep_for,
                       "How long --keep-running keeps the copy: 90s, 30m, 2h, 1d (default 1h; at most "
                       "config dump.keep_running_max_seconds)");
  dump_cmd->add_flag("--stop", dump.stop,
                     "Stop the copy a dump with --keep-running left up in the running agent (no --target)");

  DrillOptions drill;
  auto* drill_cmd = app.add_subcommand(
      "drill",
      "Restore drill: restore a backup into the scratch directory and pause it at the target as `agent dump` "
      "does (never promoted), read every table in full, run amcheck where it is installed, the assertions of "
      "drill.assertions_file and --assert, then pg_checksums on the stopped copy. Writes a manifest to "
      "state_dir/drills. With `agent run` up, the drill is queued there (behind backups) and this command "
      "follows it. Exit 0 when every check passed, 4 when one failed.");
  auto* drill_target = drill_cmd->add_option(
      "--target", drill.arguments.target,
      std::string("Point in time to restore, with a zone or offset. Accepted: ") + kTargetTimeForms);
  drill_cmd->add_option("--set", drill.arguments.backup_set,
                        "Restore from this backup set label (alone: then the archived WAL to its end)");
  drill_cmd
      ->add_flag("--latest", drill.arguments.latest,
                 "The newest backup and the archived WAL to its end (the default); the replay gap is the RPO")
      ->excludes(drill_target);
  drill_cmd
      ->add_option(
          "--repo", drill.arguments.repo,
          "Restore from this repository (pgBackRest's --repo; config drill.repo, else pgbackrest.repo); "
          "without it, pgBackRest's choice: the first repository in key order with a backup set")
      ->check(CLI::Range(1, 256));
  drill_cmd->add_option("--database", drill.arguments.databases,
                        "Database to check (repeatable; config drill.databases; default: all)");
  drill_cmd->add_option("--assert", drill.arguments.assertions,
                        "'DATABASE: SQL' returning one true boolean on the copy (repeatable)");
  drill_cmd->add_option("--scratch", drill.arguments.scratch,
                        "Scratch directory the agent owns (config restore.scratch)");
  drill_cmd->add_option("--port", drill.arguments.port, "Port of the temporary server (config restore.port)")
      ->check(CLI::Range(1, 65535));
  drill_cmd->add_option("--config", drill.config_path,
                        "Config file (default $AGENT_CONFIG, else /etc/agent/agent.yaml)");
  drill_cmd->add_option("--log-format", drill.log_format, "text or json (config log.format)");

  RunOptions run;
  auto* run_cmd = app.add_subcommand(
      "run",
      "Run as the sidecar: scheduled backups (schedules.*), backups triggered by a pod annotation "
      "(manual.*), scheduled restore drills (schedules.drill), one queue so backups never collide, and a "
      "control socket for `agent backup`, `agent status`, `agent dump` and `agent drill`. Stops gracefully "
      "on SIGTERM.");
  run_cmd->add_option("--config", run.config_path,
                      "Config file (default $AGENT_CONFIG, else /etc/agent/agent.yaml)");
  run_cmd->add_option("--log-format", run.log_format, "text or json (config log.format)");

  BackupOptions backup;
  auto* backup_cmd = app.add_subcommand(
      "backup",
      "Take a backup now: through the running agent's queue when one runs (control.socket), "
      "otherwise directly. Exit 0 when queued (or, with --wait, when it succeeded), 5 when skipped "
      "on a standby, 6 when pgBackRest failed.");
  backup_cmd->add_option("--type", backup.type, "full, diff or incr (default full)")
      ->check(CLI::IsMember({"full", "diff", "incr"}));
  backup_cmd->add_flag("--wait", backup.wait, "Wait for the result");
  backup_cmd
      ->add_option("--repo", backup.repo,
                   "Back up into this repository (pgBackRest's --repo; default pgbackrest.repo, else "
                   "pgBackRest's lowest-numbered one)")
      ->check(CLI::Range(1, 256));
  backup_cmd->add_option("--config", backup.config_path,
                         "Config file (default $AGENT_CONFIG, else /etc/agent/agent.yaml)");
  backup_cmd->add_option("--log-format", backup.log_format, kLogFormatHelp);

  StatusOptions status;
  auto* status_cmd = app.add_subcommand(
      "status",
      "Show the running agent's state: the running job and its progress, the queue, schedules with "
      "their next times, recent results with backup label and size, each repository's newest sets and "
      "recoverable window, and the last restore drill.");
  status_cmd->add_flag("--json", status.json, "Print JSON");
  status_cmd->add_option("--config", status.config_path,
                         "Config file (default $AGENT_CONFIG, else /etc/agent/agent.yaml)");
  status_cmd->add_option("--log-format", status.log_format, kLogFormatHelp);

  WindowOptions window;
  auto* window_cmd = app.add_subcommand(
      "window",
      "What can be restored: each repository's recoverable window (oldest backup to newest archived "
      "WAL), from the running agent's last read of the repository, else from `pgbackrest info`.");
  window_cmd->add_flag("--json", window.json, "Print JSON");
  window_cmd->add_option("--config", window.config_path,
                         "Config file (default $AGENT_CONFIG, else /etc/agent/agent.yaml)");
  window_cmd->add_option("--log-format", window.log_format, kLogFormatHelp);

  auto* config_cmd = app.add_subcommand("config", "Check or print the configuration.");
  config_cmd->require_subcommand(1);
  std::string check_path;
  auto* check_cmd = config_cmd->add_subcommand(
      "check",
      "Validate a config file: every problem with its line and a hint; exit 0 when valid, 2 otherwise.");
  check_cmd->add_option("FILE", check_path, "Config file")->required();
  auto* example_cmd = config_cmd->add_subcommand(
      "example", "Print the annotated example config with every key and its default.");

  auto* version_cmd = app.add_subcommand("version", "Print the agent's version.");

  std::vector<std::string> help_topic;
  auto* help_cmd = app.add_subcommand("help", "Print the help of a command, e.g. `agent help config check`.");
  help_cmd->add_option("COMMAND", help_topic, "The command (and subcommand); none: every command");
  std::string completion_shell;
  auto* completion_cmd = app.add_subcommand(
      "completion",
      "Print a shell completion script generated from these options: source <(agent completion bash)");
  completion_cmd->add_option("SHELL", completion_shell, "The shell")
      ->required()
      ->check(CLI::IsMember({"bash"}));
  auto* man_cmd = app.add_subcommand(
      "man", "Print the man page (roff), generated from these options: agent man > agent.1; man ./agent.1");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return exit_code_for(ErrorKind::usage);
  }

  if (dump_cmd->parsed()) return command_dump(dump);
  if (drill_cmd->parsed()) return command_drill(drill);
  if (run_cmd->parsed()) return command_run(run);
  if (backup_cmd->parsed()) return command_backup(backup);
  if (status_cmd->parsed()) return command_status(status);
  if (window_cmd->parsed()) return command_window(window);
  if (check_cmd->parsed()) return command_config_check(check_path);
  if (example_cmd->parsed()) return command_config_example();
  if (version_cmd->parsed()) return command_version();
  if (help_cmd->parsed()) return command_help(app, help_topic);
  if (completion_cmd->parsed()) return command_completion(app);
  if (man_cmd->parsed()) return command_man(app);
  return exit_code_for(ErrorKind::usage);
}

}  // namespace agent
