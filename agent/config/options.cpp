#include "config/options.hpp"

#include <algorithm>
#include <regex>
#include <vector>

#include <date/tz.h>

#include "jobs/cron.hpp"

namespace agent {
namespace {

std::optional<std::string> validate_time_zone(const std::string& name) {
  try {
    date::locate_zone(name);
    return std::nullopt;
  } catch (const std::exception&) {
    return "'" + name + "' is not an IANA time zone (e.g. UTC, America/Vancouver)";
  }
}

std::optional<std::string> validate_listen(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return "'" + text + "' is not host:port (e.g. 0.0.0.0:9451)";
  const std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535)
    return "'" + text + "' has no valid port (1..65535)";
  return std::nullopt;
}

std::optional<std::string> validate_cron(const std::string& text) {
  auto parsed = parse_cron(text);
  if (!parsed) return parsed.error().message;
  // A schedule that never fires would leave its backups silently undone.
  if (auto never = never_fires_reason(*parsed)) return "cron expression '" + text + "': " + *never;
  return std::nullopt;
}

std::optional<std::string> validate_live_paths(const std::string& text) {
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = std::min(text.find(',', start), text.size());
    const std::string path = text.substr(start, comma - start);
    if (path.empty() || path.front() != '/')
      return "'" + path + "' in '" + text + "' is not an absolute path (list them separated by commas)";
    start = comma + 1;
  }
  return std::nullopt;
}

// Its fit with the format is checked with the dump (dump_format.cpp); here only that it is one.
// (The same grammar as pipelines/dump_format.cpp's parse_dump_compression; config/ may not
// include pipelines/.)
std::optional<std::string> validate_compress(const std::string& text) {
  static const std::regex grammar(R"(auto|none|zstd(:([1-9]|1[0-9]))?|gzip(:[0-9])?)");
  if (std::regex_match(text, grammar)) return std::nullopt;
  return "'" + text + "' is not auto, none, zstd[:1..19] or gzip[:0..9]";
}

// Most entries leave the trailing optional fields (allow_empty, validate) at their defaults.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
// clang-format off
const std::vector<OptionSpec> kOptions = {
  {"stanza", OptionType::string, "db",
   "pgBackRest stanza of the live cluster.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.stanza = v.text; }},
  {"state_dir", OptionType::path, "/pgdata/agent-state",
   "Where `agent run` keeps what must survive a restart: handled annotation values, requests not "
   "yet done, and by default the control socket.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.state_dir = v.text; }},

  {"pgbackrest.bin", OptionType::path, "pgbackrest",
   "pgBackRest executable (a name is looked up in PATH).", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.pgbackrest.bin = v.text; }},
  {"pgbackrest.config_path", OptionType::path, "",
   "pgBackRest's --config-path: the directory of pgbackrest.conf and conf.d. Empty: not passed "
   "(/etc/pgbackrest).",
   0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.pgbackrest.config_path = v.text; }, true},
  {"pgbackrest.config", OptionType::path, "",
   "pgBackRest's --config: its main config file. Empty: not passed, so pgBackRest finds its "
   "files itself (/etc/pgbackrest/pgbackrest.conf if it exists, and conf.d/*.conf, as in PGO's "
   "pods).",
   0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.pgbackrest.config = v.text; }, true},
  {"pgbackrest.config_include_path", OptionType::path, "",
   "pgBackRest's --config-include-path: a directory whose *.conf files are read after the main "
   "file. Empty: with pgbackrest.config set, conf.d beside the default config when it exists "
   "(--config alone would make pgBackRest skip it).",
   0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.pgbackrest.config_include_path = v.text; }, true},
  {"pgbackrest.repo", OptionType::integer, "0",
   "The default repository (--repo) of backups and of `agent dump`; 0: pgBackRest's own choice (a "
   "backup goes to the lowest-numbered repository, a dump restores from the first repository that "
   "holds a backup set for the target). `pgbackrest info` always reads every repository.", 0, 256, {},
   [](AgentConfig& c, const OptionValue& v) { c.pgbackrest.repo = static_cast<int>(v.integer); }},
  {"pgbackrest.process_max", OptionType::integer, "2",
   "Parallel processes for the restore of `agent dump` (--process-max); backups keep the "
   "repository's own setting.",
   1, 64, {},
   [](AgentConfig& c, const OptionValue& v) { c.pgbackrest.process_max = static_cast<int>(v.integer); }},
  {"pgbackrest.timeout_seconds", OptionType::integer, "300",
   "Deadline for `pgbackrest info` (and `version`, `annotate`). pgBackRest gives up on an unreachable TLS or SSH repository "
   "after about twice its io-timeout (60 s by default) per repository and still reports the "
   "others; a shorter deadline would lose their answer too.",
   1, 3600, {},
   [](AgentConfig& c, const OptionValue& v) { c.pgbackrest.timeout_seconds = static_cast<int>(v.integer); }},
  {"pgbackrest.backup_timeout_seconds", OptionType::integer, "86400",
   "Deadline for one `pgbackrest backup`.", 60, 604800, {},
   [](AgentConfig& c, const OptionValue& v) { c.pgbackrest.backup_timeout_seconds = static_cast<int>(v.integer); }},
  {"pgbackrest.backup_nice", OptionType::integer, "10",
   "Niceness of `pgbackrest backup` and its processes, so that the agent's probes and /metrics "
   "go first within the sidecar's CPU. 0: the agent's own priority.",
   0, 19, {},
   [](AgentConfig& c, const OptionValue& v) { c.pgbackrest.backup_nice = static_cast<int>(v.integer); }},
  {"pgbackrest.lock_wait_seconds", OptionType::integer, "900",
   "When another process holds the stanza's backup lock (pgBackRest error 050, e.g. the "
   "operator's own backup schedule), how long a backup keeps trying again (after 15 s, then "
   "twice as long each time, at most 120 s apart) before it fails. 0: fail at once.",
   0, 86400, {},
   [](AgentConfig& c, const OptionValue& v) { c.pgbackrest.lock_wait_seconds = static_cast<int>(v.integer); }},

  {"postgres.bindir", OptionType::path, "/usr/lib/postgresql/15/bin",
   "Directory with postgres and pg_dump of the cluster's major version.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.postgres.bindir = v.text; }},
  {"postgres.data", OptionType::path, "/pgdata/pg15",
   "Live data directory. Read to protect it; never written.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.postgres.data = v.text; }},
  {"postgres.host", OptionType::string, "/tmp",
   "Live server's socket directory or host name.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.postgres.host = v.text; }},
  {"postgres.port", OptionType::integer, "5432",
   "Live server's port.", 1, 65535, {},
   [](AgentConfig& c, const OptionValue& v) { c.postgres.port = static_cast<int>(v.integer); }},
  {"postgres.user", OptionType::string, "postgres",
   "Database role the agent connects as.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.postgres.user = v.text; }},

  {"restore.scratch", OptionType::path, "/pgdata/restore",
   "Scratch directory for point-in-time copies; the agent owns it (data/, run/, tablespaces/).", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.restore.scratch = v.text; }},
  {"restore.port", OptionType::integer, "5533",
   "Port of the temporary server (it listens on a private Unix socket only).", 1, 65535, {},
   [](AgentConfig& c, const OptionValue& v) { c.restore.port = static_cast<int>(v.integer); }},
  {"restore.wait_timeout_seconds", OptionType::integer, "300",
   "Give up waiting for recovery after this long without replay progress.", 5, 86400, {},
   [](AgentConfig& c, const OptionValue& v) { c.restore.wait_timeout_seconds = static_cast<int>(v.integer); }},
  {"restore.restore_timeout_seconds", OptionType::integer, "300",
   "End `pgbackrest restore` after this long without progress (no line of output, no byte read "
   "or written by it or its processes), e.g. when the repository stops answering.",
   5, 86400, {},
   [](AgentConfig& c, const OptionValue& v) { c.restore.restore_timeout_seconds = static_cast<int>(v.integer); }},
  {"restore.shared_buffers", OptionType::string, "128MB",
   "shared_buffers of the temporary server (not the live server's setting).", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.restore.shared_buffers = v.text; }},
  {"restore.fsync", OptionType::choice, "off",
   "off: the restore into the scratch directory runs with libeatmydata preloaded (Debian package "
   "libeatmydata1, when installed), which skips its fsync calls. on: the restore syncs as usual.",
   0, 0, {"off", "on"},
   [](AgentConfig& c, const OptionValue& v) { c.restore.fsync = v.text == "on"; }},
  {"restore.keep_scratch", OptionType::choice, "auto",
   "Whether the restored copy stays in the scratch directory after the dump, so that the next "
   "dump restores with --delta. auto: only when the scratch directory is on a filesystem the live "
   "cluster does not use. always: keep it, unless the dump was stopped because free space there "
   "fell below the disk reserve. never: remove it.",
   0, 0, {"auto", "always", "never"},
   [](AgentConfig& c, const OptionValue& v) { c.restore.keep_scratch = v.text; }},
  {"restore.only_dumped_database", OptionType::choice, "on",
   "on: restore only the dumped database (pgbackrest restore --db-include; template0, template1 and "
   "postgres are always restored, other databases become sparse zeroed files), when it is a database "
   "of the backup set and not a system database; the copy recovers with ignore_invalid_pages. off: "
   "restore every database.",
   0, 0, {"on", "off"},
   [](AgentConfig& c, const OptionValue& v) { c.restore.only_dumped_database = v.text == "on"; }},
  {"restore.invalid_pages", OptionType::choice, "restore_in_full",
   "When recovery of a copy restored with only the dumped database reports invalid pages in that "
   "database (or a shared catalog): restore_in_full restores every database and recovers again; "
   "refuse ends the dump (exit 4).",
   0, 0, {"restore_in_full", "refuse"},
   [](AgentConfig& c, const OptionValue& v) { c.restore.invalid_pages = v.text; }},

  {"dump.database", OptionType::string, "postgres",
   "Database to dump.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.dump.database = v.text; }},
  {"dump.output", OptionType::path, "/pgdata/restore.sql",
   "Dump file; '-' writes the dump to standard output.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.dump.output = v.text; }},
  {"dump.checksum", OptionType::choice, "xxh128",
   "Checksum of the dump written to its manifest: xxh128 (check a copy with xxh128sum), sha256 "
   "(sha256sum, a cryptographic digest) or none.",
   0, 0, {"xxh128", "sha256", "none"},
   [](AgentConfig& c, const OptionValue& v) { c.dump.checksum = v.text; }},
  {"dump.connections", OptionType::integer, "2",
   "Connections that copy the rows of tables of at least dump.split_table_mb at once, one row "
   "range each, while pg_dump writes the rest of the dump. Rows received ahead of their turn "
   "wait in an unnamed file in the scratch directory. 1: a single pg_dump writes everything.",
   1, 16, {},
   [](AgentConfig& c, const OptionValue& v) { c.dump.connections = static_cast<int>(v.integer); }},
  {"dump.split_table_mb", OptionType::integer, "256",
   "Tables at least this large on disk are copied over dump.connections connections; the rows "
   "of smaller tables come from pg_dump itself. 0: every table.",
   0, 1048576, {},
   [](AgentConfig& c, const OptionValue& v) { c.dump.split_table_mb = static_cast<int>(v.integer); }},
  {"dump.lock_timeout_seconds", OptionType::integer, "30",
   "Lock timeout on the temporary server, in seconds: its lock_timeout setting and pg_dump's "
   "--lock-wait-timeout. 0: no limit.",
   0, 86400, {},
   [](AgentConfig& c, const OptionValue& v) { c.dump.lock_timeout_seconds = static_cast<int>(v.integer); }},
  {"dump.recovery_locks", OptionType::choice, "refuse",
   "Before the dump, the paused copy is checked for ACCESS EXCLUSIVE locks its recovery holds "
   "(a target inside a transaction that altered or truncated a table). refuse: the dump is "
   "refused naming the table and proposing the nearest earlier target. wait: not checked; "
   "pg_dump meets the lock and gives up after dump.lock_timeout_seconds (0: waits until stopped).",
   0, 0, {"refuse", "wait"},
   [](AgentConfig& c, const OptionValue& v) { c.dump.recovery_locks = v.text; }},
  {"dump.format", OptionType::choice, "plain",
   "Dump format (--format): plain SQL for psql, or pg_dump's custom (one file) or directory "
   "(one file per table, written with dump.jobs processes) archives for pg_restore.",
   0, 0, {"plain", "custom", "directory"},
   [](AgentConfig& c, const OptionValue& v) { c.dump.format = v.text; }},
  {"dump.compress", OptionType::string, "auto",
   "Compression (--compress). plain: none, or zstd[:1..19] (default level 3) in the agent's "
   "stream, to a file or standard output; custom and directory: pg_dump's own gzip[:0..9] or "
   "none. auto: none for plain, pg_dump's default (gzip) for the archives.",
   0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.dump.compress = v.text; }, false, validate_compress},
  {"dump.jobs", OptionType::integer, "2",
   "pg_dump processes for the directory format (--jobs); the copy takes one connection more.",
   1, 32, {},
   [](AgentConfig& c, const OptionValue& v) { c.dump.jobs = static_cast<int>(v.integer); }},
  {"dump.keep_running_max_seconds", OptionType::integer, "28800",
   "The longest `agent dump --keep-running --keep-for` may keep the paused copy up for "
   "inspection (the default is one hour, or this when it is shorter).",
   60, 604800, {},
   [](AgentConfig& c, const OptionValue& v) {
     c.dump.keep_running_max_seconds = static_cast<int>(v.integer);
   }},

  {"disk.reserve_percent", OptionType::integer, "10",
   "Free space, in percent of the filesystem's size, that `agent dump` leaves on every filesystem "
   "it writes to that the live cluster also uses (data directory, WAL, tablespaces, "
   "disk.live_paths): a dump whose estimate would cut into it is refused, and a dump during "
   "which free space falls below it is stopped and its files removed. The larger of this and "
   "disk.reserve_mb applies.",
   0, 90, {},
   [](AgentConfig& c, const OptionValue& v) { c.disk.reserve_percent = static_cast<int>(v.integer); }},
  {"disk.reserve_mb", OptionType::integer, "1024",
   "The disk reserve's minimum in MiB (see disk.reserve_percent; the larger applies).",
   0, 16777216, {},
   [](AgentConfig& c, const OptionValue& v) { c.disk.reserve_mb = static_cast<int>(v.integer); }},
  {"disk.live_paths", OptionType::string, "",
   "More directories of the live cluster, comma-separated, whose filesystems keep the reserve, "
   "e.g. pgBackRest's spool-path or a log directory outside the data directory. The data "
   "directory, its WAL directory and its tablespaces are found from postgres.data.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.disk.live_paths = v.text; }, true, validate_live_paths},

  {"schedules.timezone", OptionType::string, "UTC",
   "IANA time zone the schedules are read in, e.g. America/Vancouver.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.schedules.timezone = v.text; },
   false, validate_time_zone},
  {"schedules.full", OptionType::string, "",
   "Cron expression (5 fields) for full backups, e.g. \"0 2 * * *\"; empty: none.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.schedules.full = v.text; }, true, validate_cron},
  {"schedules.diff", OptionType::string, "",
   "Cron expression for differential backups; empty: none.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.schedules.diff = v.text; }, true, validate_cron},
  {"schedules.incr", OptionType::string, "",
   "Cron expression for incremental backups, e.g. \"*/15 * * * *\"; empty: none.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.schedules.incr = v.text; }, true, validate_cron},
  {"schedules.repo<N>.full", OptionType::string, "",
   "Schedules of one repository, N from 1 to 256 (pgBackRest's repoN, backed up with --repo=N), "
   "beside those above, which go to the default repository (pgbackrest.repo). Full backups into "
   "repoN, a cron expression; empty: none.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.schedules.repos[v.index].full = v.text; }, true, validate_cron},
  {"schedules.repo<N>.diff", OptionType::string, "",
   "Differential backups into repoN; empty: none.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.schedules.repos[v.index].diff = v.text; }, true, validate_cron},
  {"schedules.repo<N>.incr", OptionType::string, "",
   "Incremental backups into repoN; empty: none.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.schedules.repos[v.index].incr = v.text; }, true, validate_cron},
  {"schedules.drill", OptionType::string, "",
   "Cron expression of the restore drills `agent run` queues (`agent drill --latest`), in schedules.timezone, "
   "e.g. \"0 5 * * 0\". A drill waits behind running and queued backups and for the scratch directory (never "
   "beside a dump); backups start beside it once it reads only its paused copy. Also sets the alert's "
   "threshold, agent_drill_max_age_seconds (twice its interval plus an hour). Empty: none.",
   0, 0, {}, [](AgentConfig& c, const OptionValue& v) { c.schedules.drill = v.text; }, true, validate_cron},

  {"drill.databases", OptionType::string, "",
   "Databases a drill checks, comma-separated; empty: every database that accepts connections.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.drill.databases = v.text; }, true},
  {"drill.assertions_file", OptionType::path, "",
   "File of assertions a drill runs on the paused copy, one a line: `DATABASE: SQL`, the SQL "
   "returning one row with one boolean that must be true (lines starting with # are skipped); "
   "empty: none.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.drill.assertions_file = v.text; }, true},
  {"drill.statement_timeout_seconds", OptionType::integer, "60",
   "statement_timeout of each drill assertion, in seconds.", 1, 86400, {},
   [](AgentConfig& c, const OptionValue& v) {
     c.drill.statement_timeout_seconds = static_cast<int>(v.integer);
   }},
  {"drill.max_age_hours", OptionType::integer, "0",
   "Age after which the absence of a successful drill alerts (metric agent_drill_max_age_seconds). "
   "0: twice the interval of schedules.drill plus an hour, or 8 days without a schedule.",
   0, 87600, {},
   [](AgentConfig& c, const OptionValue& v) { c.drill.max_age_hours = static_cast<int>(v.integer); }},

  {"drill.repo", OptionType::integer, "0",
   "Repository a drill restores from when `agent drill` gives no --repo, scheduled drills included "
   "(pgBackRest's --repo; drill one repository of two, e.g. the bucket, on its own schedule). 0: as a "
   "dump does: pgbackrest.repo, else pgBackRest's choice, the first repository in key order with a set.",
   0, 256, {},
   [](AgentConfig& c, const OptionValue& v) { c.drill.repo = static_cast<int>(v.integer); }},
  {"drill.annotate", OptionType::choice, "on",
   "on: a drill that passed or failed records its result on the drilled backup set with `pgbackrest "
   "annotate` (keys agent-drill-result, agent-drill-id, agent-drill-finished, agent-drill-rto-seconds, "
   "agent-drill-rpo-seconds; `pgbackrest info --set` and other exporters show them). Inside `agent run` "
   "it waits in the backups' line (annotate takes the stanza's backup lock); `agent drill` alone runs "
   "it at once and only warns when a backup holds the lock. off: the repository is never written.",
   0, 0, {"on", "off"},
   [](AgentConfig& c, const OptionValue& v) { c.drill.annotate = v.text == "on"; }},

  {"manual.annotations_file", OptionType::path, "/etc/podinfo/annotations",
   "Downward API file with the pod's annotations; empty: no annotation trigger.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.manual.annotations_file = v.text; }, true},
  {"manual.annotation", OptionType::string, "postgres-operator.crunchydata.com/pgbackrest-backup",
   "Annotation whose new value triggers one backup.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.manual.annotation = v.text; }},
  {"manual.type", OptionType::choice, "full",
   "Type of the backup an annotation triggers.", 0, 0, {"full", "diff", "incr"},
   [](AgentConfig& c, const OptionValue& v) { c.manual.type = v.text; }},
  {"manual.repo", OptionType::integer, "0",
   "Repository the backup an annotation triggers goes to (--repo), like PGO's "
   "spec.backups.pgbackrest.manual.repoName; 0: the default repository (pgbackrest.repo).", 0, 256, {},
   [](AgentConfig& c, const OptionValue& v) { c.manual.repo = static_cast<int>(v.integer); }},

  {"control.socket", OptionType::path, "",
   "Unix socket through which `agent backup`, `status`, `dump` and `drill` reach `agent run`; empty: "
   "control.sock in state_dir. Either side talks only to a peer of its own user.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.control.socket = v.text; }, true},

  {"run.grace_seconds", OptionType::integer, "20",
   "On SIGTERM or SIGINT, how long a running backup may go on before it is stopped; if it has "
   "not ended 8 s later, the agent exits anyway. Keep it plus 8 s under the pod's "
   "terminationGracePeriodSeconds.", 0, 3600, {},
   [](AgentConfig& c, const OptionValue& v) { c.run.grace_seconds = static_cast<int>(v.integer); }},
  {"run.stuck_seconds", OptionType::integer, "1800",
   "A running backup that shows no progress (no line of pgBackRest output) for this long is "
   "stuck: /healthz fails, so that the kubelet restarts the agent.", 10, 86400, {},
   [](AgentConfig& c, const OptionValue& v) { c.run.stuck_seconds = static_cast<int>(v.integer); }},
  {"run.queue_capacity", OptionType::integer, "8",
   "Backups that may wait behind the running one.", 1, 100, {},
   [](AgentConfig& c, const OptionValue& v) { c.run.queue_capacity = static_cast<int>(v.integer); }},

  {"http.listen", OptionType::string, "0.0.0.0:9451",
   "Address of /metrics, /healthz and /readyz (host:port); empty: no HTTP endpoint. The default "
   "listens on every IPv4 interface, as the kubelet's probes and Prometheus reach the pod IP; "
   "outside a pod, use 127.0.0.1:9451.", 0, 0, {},
   [](AgentConfig& c, const OptionValue& v) { c.http.listen = v.text; }, true, validate_listen},

  {"metrics.refresh_seconds", OptionType::integer, "300",
   "How often `pgbackrest info` and pg_stat_archiver are read (also at start and after each backup).", 10, 86400, {},
   [](AgentConfig& c, const OptionValue& v) { c.metrics.refresh_seconds = static_cast<int>(v.integer); }},
  {"metrics.progress_seconds", OptionType::integer, "15",
   "While the agent's backup runs, how often `pgbackrest info` is read for its progress (bytes done "
   "and in all; pgBackRest 2.48+).", 1, 3600, {},
   [](AgentConfig& c, const OptionValue& v) { c.metrics.progress_seconds = static_cast<int>(v.integer); }},
  {"metrics.crunchy_compat", OptionType::choice, "false",
   "Also export Crunchy pgMonitor's ccp_backrest_* and ccp_archive_command_status_* series.", 0, 0, {"false", "true"},
   [](AgentConfig& c, const OptionValue& v) { c.metrics.crunchy_compat = v.text == "true"; }},
  {"alerts.min_window_hours", OptionType::integer, "0",
   "Shortest recoverable window (oldest backup to newest archived WAL) each repository should keep; "
   "exported as agent_recovery_window_min_seconds for the alert AgentRecoveryWindowTooShort. 0: no alert.",
   0, 87600, {},
   [](AgentConfig& c, const OptionValue& v) { c.alerts.min_window_hours = static_cast<int>(v.integer); }},

  {"log.format", OptionType::choice, "text",
   "Log lines on stderr: readable text, or one Elastic Common Schema JSON object per line. On a terminal, "
   "agent dump, backup and status log text whatever this says (their --log-format overrides).",
   0, 0, {"text", "json"},
   [](AgentConfig& c, const OptionValue& v) { c.log.format = v.text; }},
  {"log.level", OptionType::choice, "info",
   "Least severe level logged.", 0, 0, {"debug", "info", "warn", "error"},
   [](AgentConfig& c, const OptionValue& v) { c.log.level = v.text; }},
};
// clang-format on
#pragma GCC diagnostic pop

}  // namespace

std::span<const OptionSpec> option_table() {
  return kOptions;
}

bool option_key_matches(std::string_view pattern, std::string_view key, int* index) {
  const auto marker = pattern.find("<N>");
  if (marker == std::string_view::npos) return pattern == key;
  const auto head = pattern.substr(0, marker);
  const auto tail = pattern.substr(marker + 3);
  if (key.size() <= head.size() + tail.size() || key.substr(0, head.size()) != head ||
      key.substr(key.size() - tail.size()) != tail)
    return false;
  const auto digits = key.substr(head.size(), key.size() - head.size() - tail.size());
  if (digits.size() > 3 || digits.front() == '0' ||
      digits.find_first_not_of("0123456789") != std::string_view::npos)
    return false;
  const int n = std::stoi(std::string(digits));
  if (n < 1 || n > kMaxOptionIndex) return false;
  if (index != nullptr) *index = n;
  return true;
}

const OptionSpec* find_option(std::string_view key, int* index) {
  for (const auto& option : kOptions)
    if (option_key_matches(option.key, key, index)) return &option;
  return nullptr;
}

}  // namespace agent
