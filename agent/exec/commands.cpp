#include "exec/commands.hpp"

#include <regex>

namespace agent {

namespace {
std::vector<std::string> pgbackrest_common(const PgBackRestTarget& target) {
  // No --log-timestamp=n, although the agent's log line carries the time: it would also take
  // the timestamps out of pgBackRest's own log files.
  std::vector<std::string> argv{target.bin};
  argv.insert(argv.end(), target.config_args.begin(), target.config_args.end());
  argv.push_back("--stanza=" + target.stanza);
  if (target.repo > 0) argv.push_back("--repo=" + std::to_string(target.repo));
  return argv;
}
}  // namespace

std::vector<std::string> pgbackrest_info_argv(const PgBackRestTarget& target) {
  auto argv = pgbackrest_common(target);
  argv.push_back("--output=json");
  argv.push_back("--log-level-console=warn");
  argv.push_back("info");
  return argv;
}

std::vector<std::string> pgbackrest_info_set_argv(const PgBackRestTarget& target, const std::string& label) {
  auto argv = pgbackrest_common(target);
  argv.insert(argv.end(), {"--output=json", "--log-level-console=warn", "--set=" + label, "info"});
  return argv;
}

std::vector<std::string> pgbackrest_manifest_get_argv(const PgBackRestTarget& target,
                                                      const std::string& label) {
  auto argv = pgbackrest_common(target);
  argv.insert(argv.end(), {"--log-level-console=warn", "repo-get",
                           "backup/" + target.stanza + "/" + label + "/backup.manifest"});
  return argv;
}

std::vector<std::string> pgbackrest_version_argv(const std::string& bin) {
  return {bin, "version"};
}

std::vector<std::string> pgbackrest_verify_set_argv(const PgBackRestTarget& target,
                                                    const std::string& label) {
  auto argv = pgbackrest_common(target);
  // info: one line per invalid file and the result; no log file in the live log path.
  argv.insert(argv.end(),
              {"--set=" + label, "--verbose", "--log-level-console=info", "--log-level-file=off", "verify"});
  return argv;
}

std::vector<std::string> pgbackrest_annotate_argv(const PgBackRestTarget& target, const std::string& label,
                                                  const BackupAnnotations& annotations) {
  auto argv = pgbackrest_common(target);
  argv.push_back("--set=" + label);
  for (const auto& [key, value] : annotations) argv.push_back("--annotation=" + key + "=" + value);
  argv.push_back("annotate");
  return argv;
}

std::vector<std::string> pgbackrest_backup_argv(const PgBackRestTarget& target, const std::string& type,
                                                const BackupAnnotations& annotations) {
  auto argv = pgbackrest_common(target);
  for (const auto& [key, value] : annotations) argv.push_back("--annotation=" + key + "=" + value);
  // detail: a line per file copied, the backup's sign of life (logged at debug).
  argv.insert(argv.end(), {"--log-level-console=detail", "--type=" + type, "backup"});
  return argv;
}

std::vector<std::string> pgbackrest_restore_argv(const PgBackRestTarget& target,
                                                 const RestoreRequest& request) {
  auto argv = pgbackrest_common(target);
  argv.insert(argv.end(), {
                              // detail: one line per file with the percentage done, for progress
                              "--log-level-console=detail",
                              "--type=" + request.target_type,
                              "--target=" + request.target_time,
                              "--target-action=pause",
                              "--pg1-path=" + request.data_dir,
                              "--delta",
                              // Keeps the copy from ever archiving into the live repository.
                              "--archive-mode=off",
                              // Tablespaces land in the scratch directory, not the live paths.
                              "--tablespace-map-all=" + request.tablespace_dir,
                              "--process-max=" + std::to_string(request.process_max),
                          });
  if (request.backup_set) argv.push_back("--set=" + *request.backup_set);
  // The restore's own lock and log files stay in the scratch directory.
  if (!request.lock_dir.empty()) argv.push_back("--lock-path=" + request.lock_dir);
  if (!request.log_dir.empty()) argv.push_back("--log-path=" + request.log_dir);
  // A restore empties the spool's archive queue of the stanza: with the live spool-path (and
  // archive-async=y, PGO's setting) that removes the live archive-push's acknowledgements, and
  // the live archive_command waits for them until archive-timeout, fails and pushes again. The
  // restore_command pgBackRest writes then names this spool too; the copy runs the agent's own.
  if (!request.spool_dir.empty()) argv.push_back("--spool-path=" + request.spool_dir);
  // By OID (pgBackRest takes a name or an id): no user text.
  if (request.include_database_oid != 0)
    argv.push_back("--db-include=" + std::to_string(request.include_database_oid));
  argv.push_back("restore");
  return argv;
}

namespace {
// One word for /bin/sh, and for PostgreSQL's expansion of restore_command (%f, %p, %%).
std::string shell_word(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else if (c == '%') {
      out += "%%";
    } else {
      out += c;
    }
  }
  return out + "'";
}
}  // namespace

std::vector<std::string> scratch_archive_get_argv(const PgBackRestTarget& target,
                                                  const ScratchArchiveGet& paths, const std::string& segment,
                                                  const std::string& destination) {
  std::vector<std::string> argv = pgbackrest_common(target);
  argv.insert(argv.end(), {"--pg1-path=" + paths.data_dir, "--archive-async=n",
                           "--lock-path=" + paths.lock_dir, "--log-path=" + paths.log_dir,
                           // Its reasons go to stderr, which is the server's log the agent reads.
                           "--log-level-console=off", "--log-level-stderr=warn", "archive-get"});
  if (!segment.empty()) argv.insert(argv.end(), {segment, destination});
  return argv;
}

std::string scratch_restore_command(const PgBackRestTarget& target, const ScratchArchiveGet& paths) {
  const auto argv = scratch_archive_get_argv(target, paths, "", "");
  std::string command;
  for (const auto& word : argv) command += (command.empty() ? "" : " ") + shell_word(word);
  return command + " %f \"%p\"";
}

bool is_backup_label(const std::string& text) {
  static const std::regex pattern(R"(\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?)");
  return std::regex_match(text, pattern);
}

const char* const kScratchHbaConf =
    "# Written by agent for its temporary server: local socket only.\n"
    "local all all trust\n";

std::vector<std::string> scratch_postgres_argv(const ScratchServerSettings& s) {
  const auto set = [](const std::string& name, const std::string& value) {
    return std::vector<std::string>{"-c", name + "=" + value};
  };
  std::vector<std::string> argv{s.bindir + "/postgres", "-D", s.data_dir};
  const std::vector<std::pair<std::string, std::string>> settings = {
      // Where it lives and who can reach it: nobody but this agent.
      {"data_directory", s.data_dir},
      {"port", std::to_string(s.port)},
      {"listen_addresses", ""},
      {"unix_socket_directories", s.socket_dir},
      {"unix_socket_permissions", "0700"},
      {"hba_file", s.socket_dir + "/pg_hba.conf"},
      {"ident_file", s.socket_dir + "/pg_ident.conf"},
      {"ssl", "off"},
      // Not empty: PostgreSQL would try to write a file named "" and log that it cannot.
      {"external_pid_file", s.socket_dir + "/external.pid"},
      {"cluster_name", "agent-scratch"},
      // Nothing leaves the copy: no archiving, no streaming from the live primary.
      {"archive_mode", "off"},
      {"archive_command", ""},
      {"archive_library", ""},
      {"archive_cleanup_command", ""},
      {"recovery_end_command", ""},
      {"primary_conninfo", ""},
      {"primary_slot_name", ""},
      // The live pod may preload extensions this container does not have.
      {"shared_preload_libraries", ""},
      {"session_preload_libraries", ""},
      {"local_preload_libraries", ""},
      // Recovery must stop and stay queryable at the target.
      {"hot_standby", "on"},
      {"recovery_target_action", "pause"},
      // The live memory settings may not fit the sidecar.
      {"shared_buffers", s.shared_buffers},
      {"huge_pages", "off"},
      // The agent reads the log to see the target reached: stderr, English, complete.
      {"logging_collector", "off"},
      {"log_destination", "stderr"},
      {"lc_messages", "C"},
      {"log_min_messages", "warning"},
      {"log_line_prefix", "[%p] "},  // the agent's log line carries the time
      {"log_statement", "none"},
      {"log_min_duration_statement", "-1"},
      // A disposable copy needs no durability; pg_dump must not hit live timeouts.
      {"fsync", "off"},
      {"full_page_writes", "off"},
      {"synchronous_commit", "off"},
      {"statement_timeout", "0"},
      // Recovery may hold a lock that is never released while the copy is paused: a session
      // waiting for it gives up instead of waiting forever.
      {"lock_timeout", s.lock_timeout_seconds > 0 ? std::to_string(s.lock_timeout_seconds) + "s" : "0"},
      {"idle_in_transaction_session_timeout", "0"},
      {"jit", "off"},
  };
  for (const auto& [name, value] : settings) {
    auto pair = set(name, value);
    argv.insert(argv.end(), pair.begin(), pair.end());
  }
  std::vector<std::pair<std::string, std::string>> recovery;
  if (!s.restore_command.empty()) recovery.emplace_back("restore_command", s.restore_command);
  if (!s.recovery_target_lsn.empty())
    recovery.insert(recovery.end(), {{"recovery_target_time", ""},
                                     {"recovery_target_lsn", s.recovery_target_lsn},
                                     {"recovery_target_inclusive", "on"}});
  if (s.ignore_invalid_pages) recovery.emplace_back("ignore_invalid_pages", "on");
  for (const auto& [name, value] : recovery) {
    auto pair = set(name, value);
    argv.insert(argv.end(), pair.begin(), pair.end());
  }
  return argv;
}

namespace {
std::string quote_conninfo_value(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}
}  // namespace

std::string conninfo(const std::string& host, int port, const std::string& user,
                     const std::string& database) {
  return "host=" + quote_conninfo_value(host) + " port=" + std::to_string(port) +
         " user=" + quote_conninfo_value(user) + " dbname=" + quote_conninfo_value(database) +
         " application_name='agent'"
         // A server that never answers (a stopped postmaster, hung storage) must not wedge the
         // agent: libpq gives up on the connection after this many seconds.
         " connect_timeout=10";
}

std::vector<std::string> pg_dump_argv(const DumpRequest& r) {
  std::vector<std::string> argv = {r.bindir + "/pg_dump",
                                   "--dbname=" + conninfo(r.host, r.port, r.user, r.database)};
  if (!r.schema_archive.empty()) {
    // pg_restore --create decides about CREATE DATABASE; the key goes to pg_restore too.
    argv.insert(argv.end(), {"--format=custom", "--compress=0", "--no-password", "--section=pre-data",
                             "--section=post-data", "--file=" + r.schema_archive});
    if (r.lock_wait_timeout_seconds > 0)
      argv.push_back("--lock-wait-timeout=" + std::to_string(r.lock_wait_timeout_seconds) + "s");
    return argv;
  }
  if (r.create && (r.section.empty() || r.section == "pre-data")) argv.emplace_back("--create");
  argv.insert(argv.end(), {"--format=" + r.format, "--no-password"});
  if (!r.file.empty()) argv.push_back("--file=" + r.file);
  if (r.jobs > 1) argv.push_back("--jobs=" + std::to_string(r.jobs));
  if (r.compress_level >= 0) argv.push_back("--compress=" + std::to_string(r.compress_level));
  if (!r.section.empty()) argv.push_back("--section=" + r.section);
  for (const auto& [option, patterns] :
       {std::pair{"--table=", &r.tables}, std::pair{"--exclude-table=", &r.exclude_tables},
        std::pair{"--schema=", &r.schemas}, std::pair{"--exclude-schema=", &r.exclude_schemas}})
    for (const auto& pattern : *patterns) argv.push_back(option + pattern);
  // A pattern that matches nothing is an error, not a smaller dump.
  if (!r.tables.empty() || !r.schemas.empty()) argv.emplace_back("--strict-names");
  if (r.data_only) argv.emplace_back("--data-only");
  if (r.schema_only) argv.emplace_back("--schema-only");
  for (const auto& pattern : r.exclude_table_data) argv.push_back("--exclude-table-data=" + pattern);
  if (!r.restrict_key.empty()) argv.push_back("--restrict-key=" + r.restrict_key);
  if (r.lock_wait_timeout_seconds > 0)
    argv.push_back("--lock-wait-timeout=" + std::to_string(r.lock_wait_timeout_seconds) + "s");
  return argv;
}

std::vector<std::string> pg_dumpall_globals_argv(const std::string& bindir, const std::string& conninfo) {
  return {bindir + "/pg_dumpall", "--dbname=" + conninfo, "--globals-only",
          "--no-role-passwords",  "--no-tablespaces",     "--no-password"};
}

std::vector<std::string> pg_restore_argv(const PgRestoreRequest& r) {
  std::vector<std::string> argv = {r.bindir + "/pg_restore"};
  if (r.list) argv.emplace_back("--list");
  if (r.create) argv.emplace_back("--create");
  if (!r.section.empty()) argv.push_back("--section=" + r.section);
  if (r.no_privileges) argv.emplace_back("--no-privileges");
  if (!r.use_list.empty()) argv.push_back("--use-list=" + r.use_list);
  if (!r.list && !r.restrict_key.empty()) argv.push_back("--restrict-key=" + r.restrict_key);
  if (!r.list) argv.emplace_back("--file=-");  // pg_restore wants a target: standard output
  argv.push_back(r.archive);
  return argv;
}

}  // namespace agent
