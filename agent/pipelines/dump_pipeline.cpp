#include "pipelines/dump_pipeline.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/files.hpp"
#include "core/log.hpp"
#include "core/log_throttle.hpp"
#include "core/version.hpp"
#include "exec/commands.hpp"
#include "exec/no_sync.hpp"
#include "pg/replay_wait.hpp"
#include "pgbackrest/backup_manifest.hpp"
#include "pgbackrest/info.hpp"
#include "pgbackrest/restore_log.hpp"
#include "pipelines/disk_watch.hpp"
#include "pipelines/dump_preflight.hpp"
#include "pipelines/dump_sink.hpp"
#include "pipelines/kept_copy.hpp"
#include "pipelines/parallel_copy.hpp"
#include "pipelines/pgbackrest_access.hpp"
#include "pipelines/recovery_locks.hpp"
#include "pipelines/scratch_server.hpp"
#include "pipelines/split_tables.hpp"

namespace agent {
namespace {

struct DumpContext {
  DumpContext(const DumpJob& j, DumpServices& s) : job(j), services(s) {}
  const DumpJob& job;
  DumpServices& services;
  std::shared_ptr<spdlog::logger> logger = log::get("dump");
  ScratchLayout layout;
  LocalFacts facts;
  BackupRecord backup;
  std::vector<BackupDatabase> backup_databases;  // pgbackrest info --set: the set's databases
  std::optional<std::string> lsn_set;            // the set the agent names for an LSN target
  // restore.only_dumped_database: the dumped database's OID, passed to --db-include; 0: every
  // database is restored (the option is off, a system database, the only user database, or a
  // database the set does not list; or recovery reported invalid pages of it and it was
  // restored again in full).
  std::uint32_t include_oid = 0;
  std::uint64_t restore_total_bytes = 0;  // the chosen set's size: what the restore's percentage is of
  struct {
    std::uint64_t reported = 0;          // invalid pages recovery reported, every server of the job
    std::vector<std::string> relations;  // their relation paths (the last 64 of each server)
    bool restored_in_full = false;       // some were the dumped database's: restored again in full
  } invalid_pages;
  int lock_fd = -1;
  std::unique_ptr<ScratchServer> server;
  int output_fd = -1;
  std::string partial_path;
  std::string partial_dir;  // the directory format's output until it is published
  int globals_fd = -1;      // --globals: OUTPUT.globals.sql.partial
  std::string globals_partial;
  CopyStats globals;
  DirectoryStats directory;
  bool published = false;
  CopyStats copy;
  std::vector<std::string> split_tables;  // copied by the agent over several connections
  DumpSummary summary;
  std::vector<StepTiming> timings;
  DiskWatch* disk_watch = nullptr;  // the live volume's watchdog
  const CopyWork* work = nullptr;   // run_on_paused_copy: what is done on the paused copy
  bool clean_shutdown = false;
  // Set when no commit follows the last one before the target in the archived WAL, which
  // reaches past the target: the copy was recovered to the end of that WAL instead.
  struct {
    bool used = false;
    std::string end_lsn;
    SysMicros checkpoint{};  // a checkpoint in that WAL that began after the target
  } end_of_wal;

  // The restore and the copy's archive-get get --repo only when the job names a repository, as
  // pgBackRest passes a restore's --repo on to the restore_command it writes.
  PgBackRestTarget pgbackrest() const { return pgbackrest_target(job.config, job.repo); }
  std::string scratch_conninfo(const std::string& database) const {
    return conninfo(layout.run, job.port, job.config.postgres.user, database);
  }
  // The copy's pgBackRest archive-get: its own lock and log paths, no asynchronous archiving.
  ScratchArchiveGet archive_get() const {
    return ScratchArchiveGet{layout.data, layout.pgbackrest_lock, layout.pgbackrest_log};
  }
};

// The restore's progress from pgBackRest's per-file lines (restore_log.hpp): every move of the
// percentage goes to `report` (the metrics and `agent status` of `agent run`), and a line
// "restored 1.4 MiB of 3.0 MiB (45.40%)" to the log at most every LogThrottle interval and at
// the end. The per-file lines themselves are logged at debug (exec/child_lines.cpp).
class RestoreProgressLog {
 public:
  using Report = std::function<void(std::uint64_t, std::uint64_t)>;
  RestoreProgressLog(std::shared_ptr<spdlog::logger> logger, std::uint64_t total_bytes, Report report)
      : logger_(std::move(logger)), total_(total_bytes), report_(std::move(report)) {}
  void update(std::string_view line) {
    const auto hundredths = parse_restore_percent(line);
    // One report per hundredth of a percent at most (pgBackRest counts in order, one thread).
    if (!hundredths || *hundredths == last_) return;
    last_ = *hundredths;
    const std::uint64_t done = restored_bytes_at(*hundredths, total_);
    if (report_ && total_ > 0) report_(done, total_);
    if (*hundredths == 10000 || throttle_.due(std::chrono::steady_clock::now())) {
      char percent[16];
      std::snprintf(percent, sizeof percent, "%u.%02u%%", *hundredths / 100, *hundredths % 100);
      if (total_ > 0)
        logger_->info("restored {} of {} ({})", human_bytes(done), human_bytes(total_), percent);
      else
        logger_->info("restored {}", percent);
    }
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  std::uint64_t total_;
  Report report_;
  std::optional<std::uint32_t> last_;
  LogThrottle throttle_{std::chrono::steady_clock::now()};
};

Error combine(const std::vector<Error>& errors) {
  if (errors.size() == 1) return errors.front();
  std::string message = "refusing to go on, " + std::to_string(errors.size()) + " problems:";
  for (const auto& e : errors) message += "\n  - " + e.message + (e.hint.empty() ? "" : " (" + e.hint + ")");
  return make_error(errors.front().kind, message, "fix each problem above; nothing was written");
}

// The whole dump's pg_dump options from the job's shape (dump_format.hpp).
void apply_shape(const DumpShape& shape, DumpRequest& request) {
  request.format = dump_format_name(shape.format);
  request.jobs = shape.jobs;
  if (shape.compression.kind == DumpCompression::Kind::gzip) request.compress_level = shape.compression.level;
  if (shape.compression.kind == DumpCompression::Kind::none && shape.format != DumpFormat::plain)
    request.compress_level = 0;
  const auto& selection = shape.selection;
  request.create = !selection.into_existing_database();
  request.tables = selection.tables;
  request.exclude_tables = selection.exclude_tables;
  request.schemas = selection.schemas;
  request.exclude_schemas = selection.exclude_schemas;
  request.data_only = selection.data_only;
  request.schema_only = selection.schema_only;
}

// Renames the directory format's OUTPUT.partial/ to OUTPUT (the pre-flight made sure nothing is
// there) and flushes the parent directory.
Status publish_directory(const std::string& partial, const std::string& final_path) {
  if (rename(partial.c_str(), final_path.c_str()) != 0)
    return make_error(ErrorKind::environment,
                      "cannot rename " + partial + " to " + final_path + ": " + std::strerror(errno),
                      "check the output directory");
  const std::string dir = std::filesystem::path(final_path).parent_path().string();
  const int dir_fd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    fsync(dir_fd);
    close(dir_fd);
  }
  return {};
}

std::string trimmed_line(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.remove_suffix(1);
  return std::string(text);
}

// pgBackRest's reason: its last ERROR line, with the indented lines that continue it (where it
// names the file and the system error).
std::string pgbackrest_reason(const ProcessResult& result) {
  const auto& lines = result.last_lines;
  for (std::size_t i = lines.size(); i-- > 0;) {
    if (lines[i].find("ERROR:") == std::string::npos) continue;
    std::string reason = trimmed_line(lines[i]);
    for (std::size_t j = i + 1;
         j < lines.size() && !lines[j].empty() && (lines[j].front() == ' ' || lines[j].front() == '\t'); ++j)
      reason += " " + trimmed_line(lines[j]);
    return reason;
  }
  return "";
}

Error tool_failure(const std::string& what, const ProcessResult& result) {
  const bool pgbackrest = what.rfind("pgbackrest", 0) == 0;
  std::string excerpt = pgbackrest ? pgbackrest_reason(result) : "";
  if (pgbackrest)
    if (auto refusal = version_mismatch_refusal(excerpt)) return *refusal;
  if (excerpt.empty()) excerpt = result.error_excerpt();
  ErrorKind kind = ErrorKind::external_tool;
  std::string hint = "read the " + what + " lines above in the log";
  std::string cause;
  const auto classified = classify_failure(excerpt);
  // pgBackRest's exit code is its error code.
  if (what == "pgbackrest restore" && result.exit_code == 75) {
    kind = ErrorKind::target_window;
    hint = "choose a target after the oldest backup's stop time (pgbackrest info)";
  } else if (what == "pgbackrest restore" && result.exit_code == 38) {
    kind = ErrorKind::environment;
    hint = "a server is running on the scratch directory; stop it first";
  } else if (classified == FailureCause::out_of_space) {
    kind = ErrorKind::environment;
    cause = "the disk is full";
    hint = "free space where " + what +
           " writes (the scratch directory, or the output's), or choose a larger volume";
  } else if (what == "pg_dump" && excerpt.find("no matching") != std::string::npos) {
    kind = ErrorKind::usage;  // --strict-names: a --table or --schema pattern matched nothing
    hint =
        "check the --table and --schema patterns (pg_dump's: schema.table, * and ?, double quotes "
        "keep case); nothing was written";
  } else if (pgbackrest && classified == FailureCause::archive_unreadable) {
    cause = "the repository cannot be read";
    hint =
        "check that this user can read the repository (pgbackrest info, pgbackrest check), then run the dump "
        "again";
  } else if (pgbackrest && classified == FailureCause::repository_unreachable) {
    cause = "the repository cannot be reached";
    hint = "check the repository host or bucket and the network (pgbackrest info), then run the dump again";
  }
  const std::string head = cause.empty() ? what + " " + result.describe()
                                         : what + " failed: " + cause + " (it " + result.describe() + ")";
  return make_error(kind, head + (excerpt.empty() ? "" : ": " + excerpt), hint);
}

// --- the live volume: its reserve watched while the job runs; the copy kept or removed -----
void watch_live_filesystems(DumpContext& c) {
  auto watched = filesystems_to_watch(c.facts, c.job);
  for (const auto& filesystem : watched)
    c.logger->info("keeping {} free on {} ({}); the dump stops if free space falls below it",
                   human_bytes(filesystem.reserve_bytes), filesystem.path, filesystem.description);
  if (c.disk_watch != nullptr) c.disk_watch->watch(std::move(watched));
}

// The scratch directory may be the root of a volume of its own mounted there (README: Deploy),
// which belongs to root and which the pod's group may write: used as it is, since only its
// owner may set its mode. The copy, its socket and the logs are in directories of mode 0700.
Status ensure_scratch_root(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid != geteuid() &&
      access(path.c_str(), W_OK | X_OK) == 0)
    return {};
  return ensure_private_directory(path);
}

// The restore step's teardown (after the server is stopped): keeps the restored copy for the
// next --delta restore, or removes it (restore.keep_scratch).
void keep_or_remove_copy(DumpContext& c) {
  if (c.layout.data.empty()) return;
  bool scratch_below_reserve = false;
  const auto trip = c.disk_watch != nullptr ? c.disk_watch->tripped() : std::nullopt;
  if (trip && c.facts.disk.scratch >= 0)
    scratch_below_reserve = trip->filesystem.device ==
                            c.facts.disk.filesystems[static_cast<std::size_t>(c.facts.disk.scratch)].device;
  const auto decision =
      decide_scratch_keeping(c.facts, c.job.config.restore.keep_scratch, scratch_below_reserve);
  if (decision.keep) {
    c.logger->info("the restored copy stays in {} for the next restore with --delta ({})", c.layout.root,
                   decision.reason);
    return;
  }
  std::error_code ec;
  for (const auto& dir : {c.layout.data, c.layout.tablespaces}) {
    std::filesystem::remove_all(dir, ec);
    if (ec) c.logger->warn("could not remove {}: {}", dir, ec.message());
  }
  c.logger->info("removed the restored copy from {}: {}", c.layout.root, decision.reason);
}

// --- check -------------------------------------------------------------------------------
// postgres.user must be a role of the cluster that may log in: asked of the live server when
// it answers, rather than found after the restore. Any other failure to connect says nothing
// about the role (the live server may be down, or want a password the copy does not), so it
// is only logged.
Status check_live_role(DumpContext& c) {
  const auto& pg = c.job.config.postgres;
  auto session =
      c.services.connector.connect(conninfo(pg.host, pg.port, pg.user, "postgres") + " connect_timeout=5");
  if (session) {
    c.logger->debug("postgres.user '{}' can log in to the live server", pg.user);
    return {};
  }
  const std::string& message = session.error().message;
  const bool about_the_role = (message.find("role \"") != std::string::npos &&
                               message.find("\" does not exist") != std::string::npos) ||
                              message.find("is not permitted to log in") != std::string::npos;
  if (about_the_role)
    if (auto fatal =
            fatal_connection_error(message, ConnectionSubject{pg.user, "postgres", "", "the live server"}))
      return *fatal;
  c.logger->info(
      "could not ask the live server whether postgres.user '{}' may log in ({}); the copy will tell", pg.user,
      message);
  return {};
}

// The live server's databases, or nullopt when it does not answer (it may be why a dump is made).
std::optional<std::vector<std::string>> live_databases(DumpContext& c) {
  const auto& pg = c.job.config.postgres;
  auto session =
      c.services.connector.connect(conninfo(pg.host, pg.port, pg.user, "postgres") + " connect_timeout=5");
  if (!session) return std::nullopt;
  auto names = (*session)->databases();
  if (!names) return std::nullopt;
  return *names;
}

// pgBackRest treats databases below FirstNormalObjectId as system databases: always restored,
// never to be named in --db-include.
constexpr std::uint32_t kFirstNormalObjectId = 16384;

// restore.only_dumped_database: restore the dumped database alone when that leaves out another
// user database; pgBackRest restores template0, template1 and postgres anyway.
void choose_databases_to_restore(DumpContext& c, const BackupDatabase& dumped) {
  if (!c.job.config.restore.only_dumped_database) return;
  std::vector<std::string> left_out;
  for (const auto& d : c.backup_databases)
    if (d.oid >= kFirstNormalObjectId && d.name != dumped.name) left_out.push_back(d.name);
  if (dumped.oid < kFirstNormalObjectId || left_out.empty()) return;
  c.include_oid = dumped.oid;
  std::string names;
  for (const auto& name : left_out) names += (names.empty() ? "" : ", ") + name;
  c.logger->info(
      "restoring only database '{}' and the system databases; left out (zeroed): {} "
      "(restore.only_dumped_database)",
      dumped.name, names);
}

// A pgBackRest command whose output the agent reads (info, repo-get), within
// pgbackrest.timeout_seconds.
Result<ProcessResult> run_pgbackrest_captured(DumpContext& c, std::vector<std::string> argv) {
  ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.tag = "pgbackrest";
  spec.stdout_mode = StdoutMode::capture;
  spec.timeout = std::chrono::seconds(c.job.config.pgbackrest.timeout_seconds);
  return c.services.runner.run(spec, c.services.cancel);
}

// --database against the chosen set's database list (`pgbackrest info --set`), so that a
// misspelt name is refused before the restore and replay rather than after them.
Status check_database_in_backup(DumpContext& c) {
  auto result = run_pgbackrest_captured(
      c, pgbackrest_info_set_argv(pgbackrest_target(c.job.config, c.backup.repo), c.backup.label));
  if (!result) return result.error();
  if (!result->succeeded()) return tool_failure("pgbackrest info", *result);
  auto databases = parse_backup_databases(result->stdout_text, c.job.config.stanza, c.backup.label);
  if (!databases) return databases.error();
  if (!*databases) {
    c.logger->info(
        "pgbackrest info does not list the databases of backup set {}; the copy will tell whether "
        "database '{}' exists",
        c.backup.label, c.job.database);
    return {};
  }
  c.backup_databases = **databases;
  const auto in_set = std::find_if(c.backup_databases.begin(), c.backup_databases.end(),
                                   [&](const BackupDatabase& d) { return d.name == c.job.database; });
  if (in_set != c.backup_databases.end()) {
    c.logger->info("database '{}' (OID {}) is in backup set {}", c.job.database, in_set->oid, c.backup.label);
    choose_databases_to_restore(c, *in_set);
    return {};
  }
  const auto live = live_databases(c);
  if (auto refusal = check_database_name(c.job.database, c.backup_databases, live, c.backup.label))
    return *refusal;
  if (c.job.database != "template0" && c.job.database != "template1")
    c.logger->warn(
        "database '{}' is not in backup set {}; {}: the copy will tell whether it existed at the target",
        c.job.database, c.backup.label,
        live ? "the live server has it (created after the backup?)" : "the live server did not answer");
  return {};
}

// An LSN target: the newest set whose WAL ends at or before it, in --repo's repository or the
// first readable one in key order that has one. The restore names it with --set: pgBackRest
// 2.56 chooses so itself, 2.45 takes the newest set whatever the LSN.
std::optional<std::string> set_for_lsn(const StanzaInfo& stanza, std::uint64_t lsn, int repo) {
  for (const auto& status : repositories(stanza)) {
    if (repo > 0 ? status.key != repo : !status.readable()) continue;
    const BackupRecord* best = nullptr;
    for (const auto& b : stanza.backups)
      if (!b.error && repo_of(b) == status.key && !b.lsn_stop.empty() && lsn_position(b.lsn_stop) <= lsn &&
          (best == nullptr || b.stop_epoch > best->stop_epoch))
        best = &b;
    if (best != nullptr) return best->label;
  }
  return std::nullopt;
}

std::string target_description(const DumpJob& job) {
  switch (job.recovery.kind) {
    case TargetKind::time:
      return format_iso_utc(job.target.instant) + " (" + job.target.as_typed + ")";
    case TargetKind::latest:
      return "latest (the end of the WAL archived by " + format_iso_utc(job.target.instant) + ")";
    case TargetKind::lsn:
      return "WAL location " + job.recovery.value;
    case TargetKind::xid:
      return "the commit of transaction " + job.recovery.value;
    case TargetKind::name:
      return "restore point '" + job.recovery.value + "'";
  }
  return job.target.as_typed;
}

// What a restore with --db-include writes: the set's files but the zeroed databases', from its
// manifest. `stanza`'s record of the set then says that size, which the disk check counts.
Status count_selective_restore(DumpContext& c, StanzaInfo& stanza) {
  auto result = run_pgbackrest_captured(
      c, pgbackrest_manifest_get_argv(pgbackrest_target(c.job.config, c.backup.repo), c.backup.label));
  if (!result) return result.error();
  std::set<std::uint32_t> zeroed;
  for (const auto& d : c.backup_databases)
    if (d.oid >= kFirstNormalObjectId && d.oid != c.include_oid) zeroed.insert(d.oid);
  auto bytes = result->succeeded() ? restored_bytes(result->stdout_text, zeroed)
                                   : Result<std::uint64_t>(tool_failure("pgbackrest repo-get", *result));
  if (!bytes) {
    // The full size stays in the estimate: an overestimate, never an underestimate.
    log::error(*c.logger, bytes.error(),
               "could not read the backup manifest; the disk check counts every database",
               spdlog::level::warn);
    return {};
  }
  for (auto& record : stanza.backups)
    if (record.label == c.backup.label && repo_of(record) == c.backup.repo) {
      c.logger->info(
          "the restore writes {} of backup set {}'s {} (only database '{}' and the system databases)",
          human_bytes(*bytes), c.backup.label, human_bytes(record.database_bytes), c.job.database);
      record.database_bytes = std::min(record.database_bytes, *bytes);
    }
  return {};
}

Status check(DumpContext& c) {
  c.facts = gather_local_facts(c.job);
  if (auto errors = check_local_facts(c.facts, c.job); !errors.empty()) return combine(errors);
  if (auto s = check_live_role(c); !s) return s;
  if (auto s = check_pgbackrest_config_files(c.job.config); !s) return s;
  auto version = read_pgbackrest_version(c.job.config, c.services.runner, c.services.cancel);
  if (!version) return version.error();

  // Every repository, each with its own status: one that cannot be read is not the end.
  auto every_repository = c.pgbackrest();
  every_repository.repo = 0;
  auto result = run_pgbackrest_captured(c, pgbackrest_info_argv(every_repository));
  if (!result) return result.error();
  if (!result->succeeded()) return tool_failure("pgbackrest info", *result);
  auto stanzas = parse_info_json(result->stdout_text);
  if (!stanzas) return stanzas.error();
  const auto found = std::find_if(stanzas->begin(), stanzas->end(),
                                  [&](const StanzaInfo& s) { return s.name == c.job.config.stanza; });
  if (found == stanzas->end())
    return make_error(ErrorKind::usage, "pgbackrest info does not know stanza '" + c.job.config.stanza + "'",
                      "set `stanza` in the config to the stanza of the live cluster");
  if (auto readable = check_stanza_readable(*found); !readable) return readable.error();
  DumpJob judged = c.job;
  if (c.job.recovery.kind == TargetKind::lsn && !c.job.backup_set) {
    c.lsn_set = set_for_lsn(*found, lsn_position(c.job.recovery.value), c.job.repo);
    if (!c.lsn_set)
      return make_error(ErrorKind::target_window,
                        "no backup set ends at or before WAL location " + c.job.recovery.value,
                        "choose a later LSN (pgbackrest info shows each set's lsn start/stop)");
    judged.backup_set = c.lsn_set;
  }
  // The set pgBackRest will restore (check_against_repository chooses the same): its database
  // list is checked first, and with only the dumped database restored the disk check counts what
  // that restore writes.
  StanzaInfo judged_stanza = *found;
  const auto choice = choose_backup(*found, judged.target.instant, judged.backup_set, judged.repo);
  if (choice.backup != nullptr) {
    c.backup = *choice.backup;
    c.backup.repo = choice.repo;
    if (auto s = check_database_in_backup(c); !s) return s;
    if (c.include_oid != 0)
      if (auto s = count_selective_restore(c, judged_stanza); !s) return s;
  }
  auto backup = check_against_repository(judged_stanza, judged, c.facts, c.services.clock.now());
  if (!backup) return backup.error();
  c.backup = *backup;
  // pgBackRest's percentage is of the whole set (zeroed databases too): its size before the
  // selective count above.
  for (const auto& record : found->backups)
    if (record.label == c.backup.label && repo_of(record) == c.backup.repo)
      c.restore_total_bytes = record.database_bytes;
  if (auto refusal = older_than_writer_refusal(*version, c.backup, "restore from")) return *refusal;
  for (const auto& repo : repositories(*found))
    if (!repo.readable())
      c.logger->warn("repo{} cannot be read ({}){}", repo.key, repo.status_message,
                     c.job.repo > 0 ? "" : "; pgBackRest skips it as the agent does");
  watch_live_filesystems(c);
  c.logger->info("target {} will be restored from backup set {} ({}, finished {}) in repo{} ({})",
                 target_description(c.job), c.backup.label, c.backup.type,
                 format_iso_utc(SysMicros{std::chrono::seconds{c.backup.stop_epoch}}), c.backup.repo,
                 c.job.repo > 0 ? "--repo"
                                : "pgBackRest's choice: the first repository in key order with a set for the "
                                  "target");
  return {};
}

// --- prepare: the scratch layout, its marker and its lock ----------------------------------
Status prepare(DumpContext& c) {
  c.layout = ScratchLayout::under(c.facts.scratch);
  for (const auto& dir :
       {c.layout.root, c.layout.data, c.layout.run, c.layout.tablespaces, c.layout.pgbackrest,
        c.layout.pgbackrest_lock, c.layout.pgbackrest_log, c.layout.pgbackrest_spool, c.layout.wal_scan})
    if (auto s = dir == c.layout.root ? ensure_scratch_root(dir) : ensure_private_directory(dir); !s)
      return s;
  if (auto s = write_file_atomically(c.layout.marker, "created by agent for point-in-time copies\n"); !s)
    return s;
  c.lock_fd = open(c.layout.lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (c.lock_fd < 0 || flock(c.lock_fd, LOCK_EX | LOCK_NB) != 0)
    return make_error(ErrorKind::environment,
                      "another agent job is using the scratch directory " + c.layout.root,
                      "wait for it to finish, or choose another --scratch");
  // A server of ours that died without cleaning up leaves its pid file; pgBackRest would
  // refuse to restore over it. The check step made sure no such process is alive.
  const std::string pid_file = c.layout.data + "/postmaster.pid";
  if (c.facts.scratch_server_pid && !c.facts.scratch_server_alive && unlink(pid_file.c_str()) == 0)
    c.logger->warn("removed the stale {} of a server that is no longer running", pid_file);
  return {};
}

void release_lock(DumpContext& c) {
  if (c.lock_fd >= 0) close(c.lock_fd);
  c.lock_fd = -1;
}

// --- restore -------------------------------------------------------------------------------
// Bytes read and written so far by the processes of process group `group` (a restore and its
// worker processes), from /proc/PID/io: what a restore does between two lines of output, when
// it copies a large file.
std::uint64_t group_io_bytes(pid_t group) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat_file(it->path() / "stat");
    std::string stat;
    std::getline(stat_file, stat);
    const auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(close_paren + 2));
    std::string state;
    long parent = 0, process_group = 0;
    if (!(fields >> state >> parent >> process_group) || process_group != group) continue;
    std::ifstream io(it->path() / "io");
    std::string key;
    std::uint64_t value = 0;
    while (io >> key >> value)
      if (key == "rchar:" || key == "wchar:") total += value;
  }
  return total;
}

// Runs `pgbackrest restore` and ends it when it has made no progress for
// restore.restore_timeout_seconds: no line of output (there is one per file restored or
// checked) and no byte read or written by it or its worker processes. A repository that stops
// answering otherwise leaves it waiting, silently.
Result<ProcessResult> run_restore(DumpContext& c, ProcessSpec spec, bool& stalled) {
  using Steady = std::chrono::steady_clock;
  auto last_line = std::make_shared<std::atomic<Steady::rep>>(Steady::now().time_since_epoch().count());
  spec.on_line = [last_line, forward = spec.on_line](std::string_view line) {
    last_line->store(Steady::now().time_since_epoch().count());
    if (forward) forward(line);
  };
  auto started = c.services.runner.start(spec);
  if (!started) return started.error();
  auto& process = *started.value();
  const std::chrono::seconds limit{c.job.config.restore.restore_timeout_seconds};
  auto last_io = group_io_bytes(process.pid());
  auto last_progress = Steady::now();
  for (;;) {
    if (auto result = process.wait(c.services.cancel, std::chrono::seconds(1))) return *result;
    if (c.services.cancel.get().cancelled()) {
      auto result = process.stop(SIGTERM, spec.kill_grace);
      result.cancelled = true;
      return result;
    }
    const auto now = Steady::now();
    if (const auto io = group_io_bytes(process.pid()); io != last_io) {
      last_io = io;
      last_progress = now;
    }
    last_progress = std::max(last_progress, Steady::time_point(Steady::duration(last_line->load())));
    if (now - last_progress >= limit) {
      stalled = true;
      process.signal_group(SIGCONT);  // a stopped process could not even end
      auto result = process.stop(SIGTERM, spec.kill_grace);
      result.timed_out = true;
      return result;
    }
  }
}

// The set pgBackRest restored must be the one the window, disk and tablespace checks were made
// for: with two repositories its choice (the first in key order with a set for the target)
// differs from the newest set over all of them.
Status check_restored_set(DumpContext& c, const std::optional<RestoredSet>& restored) {
  const std::string expected = "backup set " + c.backup.label + " in repo" + std::to_string(c.backup.repo);
  const std::string hint =
      "nothing was dumped; name the repository and the set with --repo and --set (pgbackrest info lists "
      "them), or report this";
  if (!restored)
    return make_error(ErrorKind::verification,
                      "pgbackrest restore did not say which backup set it restored (no \"restore backup "
                      "set\" line); the agent expected " +
                          expected,
                      hint);
  if (restored->label != c.backup.label || restored->repo != c.backup.repo)
    return make_error(ErrorKind::verification,
                      "pgbackrest restore restored backup set " + restored->label + " from repo" +
                          std::to_string(restored->repo) + ", but the agent chose and checked " + expected +
                          (c.job.repo > 0 ? " (--repo " + std::to_string(c.job.repo) + ")"
                                          : " (the first repository in key order with a set for the target)"),
                      hint);
  c.logger->info("pgBackRest restored {}, as chosen", expected);
  return {};
}

Status restore(DumpContext& c) {
  RestoreRequest request;
  const bool by_time = c.job.recovery.kind == TargetKind::time || c.job.recovery.kind == TargetKind::latest;
  request.target_type = pgbackrest_target_type(c.job.recovery.kind);
  request.target_time = by_time ? format_for_pgbackrest(c.job.target.instant) : c.job.recovery.value;
  request.data_dir = c.layout.data;
  request.tablespace_dir = c.layout.tablespaces;
  request.process_max = c.job.config.pgbackrest.process_max;
  request.backup_set = c.job.backup_set ? c.job.backup_set : c.lsn_set;
  request.lock_dir = c.layout.pgbackrest_lock;
  request.log_dir = c.layout.pgbackrest_log;
  request.spool_dir = c.layout.pgbackrest_spool;
  request.include_database_oid = c.include_oid;
  ProcessSpec spec;
  spec.argv = pgbackrest_restore_argv(c.pgbackrest(), request);
  spec.tag = "pgbackrest";
  spec.kill_grace = std::chrono::seconds(10);
  // One DETAIL line per restored file ends in "(SIZE, NN.NN%)": those are logged at debug
  // (exec/child_lines.cpp), and the progress is reported instead (RestoreProgressLog). ERROR
  // and WARN lines keep their level, and the runner joins the indented lines that continue
  // them (the file and the system error) to their record.
  auto progress =
      std::make_shared<RestoreProgressLog>(c.logger, c.restore_total_bytes, c.services.on_restore_progress);
  if (!c.job.no_sync_library.empty()) {
    preload_no_sync(spec, c.job.no_sync_library);
    c.logger->info("the restore skips fsync (restore.fsync: off, {} preloaded)", c.job.no_sync_library);
  } else if (!c.job.config.restore.fsync) {
    c.logger->info(
        "libeatmydata is not installed: the restore waits for the disk after every file "
        "(install libeatmydata1 for a faster restore)");
  }
  // pgBackRest names the repository and set it restores; the checks were made for the ones the
  // agent expects.
  auto restored = std::make_shared<std::optional<RestoredSet>>();
  spec.on_line = [restored, progress](std::string_view line) {
    if (!*restored) *restored = parse_restored_set(line);
    try {
      progress->update(line);  // on the runner's reader thread: nothing may escape
    } catch (...) {
    }
  };
  c.logger->info("running {}", display_command(spec.argv));
  bool stalled = false;
  auto result = run_restore(c, spec, stalled);
  if (!result) return result.error();
  if (stalled) {
    const std::string said = pgbackrest_reason(*result);
    return make_error(
        ErrorKind::external_tool,
        "pgbackrest restore made no progress for " +
            std::to_string(c.job.config.restore.restore_timeout_seconds) +
            " s (no output, nothing read or written) and was stopped" + (said.empty() ? "" : ": " + said),
        "check that the repository answers (pgbackrest info): a repository host or bucket that "
        "stops answering looks like this; raise restore.restore_timeout_seconds if single files "
        "take longer to fetch");
  }
  if (!result->succeeded()) return tool_failure("pgbackrest restore", *result);
  if (auto s = check_restored_set(c, *restored); !s) return s;
  const auto errors = check_restored_tablespaces(c.facts.tablespaces, read_tablespace_links(c.layout.data),
                                                 c.layout.root, c.backup.label);
  if (!errors.empty()) return combine(errors);
  return {};
}

// --- start / stop the temporary server -----------------------------------------------------
// The copy's server fetches WAL with its own archive-get (scratch lock and log paths, no
// asynchronous archiving), gives every session a lock timeout, and is shut down at once on
// SIGINT or SIGTERM. `recovery_target_lsn` replaces the time target (the end of the archived WAL).
Status start_copy(DumpContext& c, const std::string& recovery_target_lsn) {
  ScratchServerSettings settings{c.job.config.postgres.bindir, c.layout.data, c.layout.run, c.job.port,
                                 c.job.config.restore.shared_buffers};
  settings.restore_command = scratch_restore_command(c.pgbackrest(), c.archive_get());
  settings.lock_timeout_seconds = c.job.config.dump.lock_timeout_seconds;
  settings.recovery_target_lsn = recovery_target_lsn;
  settings.ignore_invalid_pages = c.include_oid != 0;
  auto server = ScratchServer::start(c.services.runner, settings, c.services.cancel);
  if (!server) return server.error();
  c.server = std::move(server.value());
  return {};
}

Status start_server(DumpContext& c) {
  return start_copy(c, "");
}

void stop_server(DumpContext& c) {
  if (c.server) c.server->stop();
}

Status stop_step(DumpContext& c) {
  stop_server(c);
  return {};
}

// --- wait and verify -----------------------------------------------------------------------
ReplayWaitSettings replay_wait_settings(const DumpContext& c) {
  ReplayWaitSettings settings;
  settings.conninfo = c.scratch_conninfo("postgres");
  settings.user = c.job.config.postgres.user;
  settings.database = "postgres";
  settings.no_progress_timeout = std::chrono::seconds(c.job.config.restore.wait_timeout_seconds);
  settings.backup_end_description = format_iso_utc(SysMicros{std::chrono::seconds{c.backup.stop_epoch}}) +
                                    " (the end of backup set " + c.backup.label + ")";
  return settings;
}

// The time of the newest checkpoint in the WAL the paused copy replayed. CHECKPOINT on a copy
// in recovery makes a restartpoint at the last checkpoint record replayed, which pg_control
// then shows.
Result<SysMicros> replayed_checkpoint_time(DumpContext& c) {
  auto session = c.services.copier.connect(c.scratch_conninfo("postgres"));
  if (!session) return session.error();
  if (auto s = (*session)->execute("CHECKPOINT"); !s) return s.error();
  auto rows = (*session)->query(
      "SELECT extract(epoch FROM checkpoint_time)::bigint FROM pg_catalog.pg_control_checkpoint()");
  if (!rows) return rows.error();
  if (rows->size() != 1 || rows->front().size() != 1 || rows->front().front().empty())
    return make_error(ErrorKind::internal, "pg_control_checkpoint() gave no checkpoint time");
  return SysMicros{std::chrono::seconds{std::stoll(rows->front().front())}};
}

// Recovery's invalid-page reports, kept over the servers of the job (a second recovery to the
// end of the archived WAL starts from the first one's restartpoint and does not repeat them).
void note_invalid_pages(DumpContext& c, const RecoveryLogFacts& facts) {
  c.invalid_pages.reported += facts.invalid_pages;
  c.invalid_pages.relations.insert(c.invalid_pages.relations.end(), facts.invalid_page_relations.begin(),
                                   facts.invalid_page_relations.end());
}

// An idle database: recovery replayed the whole archived WAL without meeting a commit after
// the target, so it ended "before the target". If that WAL reaches past the target, the
// database at the target is its state at the last commit before it: recover to the end of the
// archived WAL and pause there. It reaches past the target when it holds a checkpoint that
// began after the target, since everything written before that checkpoint began precedes it.
Status recover_to_end_of_archive(DumpContext& c, const RecoveryLogFacts& facts, const Error& ended) {
  const std::string end_lsn = *facts.redo_done_lsn;
  c.logger->info(
      "the archived WAL holds no commit after {}; recovering again to its end ({}) to see whether it reaches "
      "past the target",
      facts.last_completed_transaction.value_or("the end of backup set " + c.backup.label), end_lsn);
  note_invalid_pages(c, facts);
  c.server->stop();
  c.server.reset();
  if (auto s = start_copy(c, end_lsn); !s) return s;
  auto reached = wait_for_recovery_target(replay_wait_settings(c), *c.server, c.services.connector,
                                          c.services.clock, c.services.cancel);
  if (!reached) return reached.error();
  auto checkpoint = replayed_checkpoint_time(c);
  if (!checkpoint) {
    log::error(*c.logger, checkpoint.error(), "could not read the copy's last checkpoint",
               spdlog::level::warn);
    return ended;
  }
  const auto target = c.job.target.instant;
  const bool to_the_end =
      (c.work != nullptr && c.work->to_end_of_archive) || c.job.recovery.kind == TargetKind::latest;
  if (*checkpoint < target && !to_the_end)
    return make_error(ended.kind,
                      ended.message + "; the archived WAL's last checkpoint began at " +
                          format_iso_utc(*checkpoint) +
                          ", before the target, so later commits may not be archived yet",
                      ended.hint);
  c.end_of_wal.used = true;
  c.end_of_wal.end_lsn = end_lsn;
  c.end_of_wal.checkpoint = *checkpoint;
  c.logger->info(
      "the archived WAL reaches past the target (it holds a checkpoint begun at {}) with no commit after {}: "
      "the database at the target is its state then; the copy stopped at the end of the archived WAL ({})",
      format_iso_utc(*checkpoint), facts.last_completed_transaction.value_or("the backup's end"), end_lsn);
  return {};
}

Status reach_target(DumpContext& c) {
  auto reached = wait_for_recovery_target(replay_wait_settings(c), *c.server, c.services.connector,
                                          c.services.clock, c.services.cancel);
  if (!reached) {
    const auto facts = c.server->log_facts();
    const bool at_end_of_archive = facts.ended_before_target && !facts.tool_error && facts.redo_done_lsn &&
                                   c.server->exited().has_value() && !c.services.cancel.get().cancelled();
    const bool by_time = c.job.recovery.kind == TargetKind::time || c.job.recovery.kind == TargetKind::latest;
    if (at_end_of_archive && !by_time)
      return make_error(
          reached.error().kind,
          "the archived WAL ends before " + target_description(c.job) +
              " was reached: " + reached.error().message,
          "check the " + target_kind_name(c.job.recovery.kind) +
              " (an LSN, transaction or restore point after the last archived WAL, or before the "
              "end of backup set " +
              c.backup.label + ": name an older set with --set), or dump --target latest");
    if (!at_end_of_archive) return reached.error();
    return recover_to_end_of_archive(c, facts, reached.error());
  }
  const auto facts = c.server->log_facts();
  c.logger->info("recovery reached the target and paused ({})", facts.stop_detail.value_or("target reached"));
  return {};
}

// A copy restored with only the dumped database recovers with ignore_invalid_pages: replay of
// the zeroed databases meets pages that are not there, which is expected. A report about the
// dumped database itself or a shared catalog means its data may be wrong, and a recovery that
// failed outright may have failed on the zeroed files: either way the copy is restored again in
// full and recovers again (restore.invalid_pages: restore_in_full), or the dump is refused.
Status wait_for_target(DumpContext& c) {
  auto status = reach_target(c);
  if (c.include_oid == 0) return status;
  std::optional<std::string> last_fatal;
  if (c.server) {
    const auto facts = c.server->log_facts();
    note_invalid_pages(c, facts);
    last_fatal = facts.last_fatal;
  }
  std::vector<std::string> ours;
  for (const auto& relation : c.invalid_pages.relations)
    if (relation_path_database(relation) == c.include_oid || relation.rfind("global/", 0) == 0)
      ours.push_back(relation);
  const bool crashed = !status && status.error().kind != ErrorKind::interrupted &&
                       status.error().kind != ErrorKind::target_window &&
                       !c.services.cancel.get().cancelled() && last_fatal &&
                       last_fatal->find("PANIC") != std::string::npos;
  if (status && ours.empty()) {
    if (c.invalid_pages.reported > 0)
      c.logger->info("recovery met {} page(s) of the databases left out (expected; none of '{}')",
                     c.invalid_pages.reported, c.job.database);
    return {};
  }
  if (!status && !crashed) return status;
  const std::string why = crashed ? "recovery of the copy restored with only database '" + c.job.database +
                                        "' failed (" + *last_fatal + ")"
                                  : "recovery reported " + std::to_string(ours.size()) +
                                        " invalid page(s) in database '" + c.job.database +
                                        "' or a shared catalog (first: relation " + ours.front() +
                                        "), restored with only that database";
  if (c.job.config.restore.invalid_pages == "refuse")
    return make_error(ErrorKind::verification, why + "; nothing was dumped (restore.invalid_pages: refuse)",
                      "set restore.invalid_pages: restore_in_full, or restore.only_dumped_database: off");
  c.logger->warn("{}; restoring every database and recovering again (restore.invalid_pages: restore_in_full)",
                 why);
  if (c.server) c.server->stop();
  c.server.reset();
  c.include_oid = 0;
  c.invalid_pages.restored_in_full = true;
  c.end_of_wal.used = false;
  if (auto s = restore(c); !s) return s;
  if (auto s = start_server(c); !s) return s;
  return reach_target(c);
}

// Before the dump: no lock held by recovery that pg_dump would wait for (see recovery_locks.hpp).
Status check_recovery_locks(DumpContext& c, std::uint64_t replay_lsn) {
  if (c.job.config.dump.recovery_locks == "wait") {
    c.logger->warn(
        "dump.recovery_locks is 'wait': locks held by recovery are not checked; a dump that meets "
        "one waits up to dump.lock_timeout_seconds");
    return {};
  }
  auto session = c.services.copier.connect(c.scratch_conninfo(c.job.database));
  if (!session) {
    const ConnectionSubject subject{c.job.config.postgres.user, c.job.database, "--database (dump.database)",
                                    "the copy at the target"};
    if (auto fatal = fatal_connection_error(session.error().message, subject)) return *fatal;
    return session.error().with_context("connecting to the temporary server");
  }
  auto rows = (*session)->query(kRecoveryLocksQuery);
  if (!rows) return rows.error().with_context("reading the locks recovery holds");
  auto locks = parse_recovery_locks(*rows);
  if (!locks) return locks.error();
  if (locks->empty()) return {};
  c.logger->warn(
      "recovery holds an ACCESS EXCLUSIVE lock on {} relation(s) of the copy, first {}; reading the "
      "archived WAL for the transaction that took it",
      locks->size(), locks->front().name);
  WalScanSettings scan;
  scan.pgbackrest = c.pgbackrest();
  scan.archive_get = c.archive_get();
  scan.bindir = c.job.config.postgres.bindir;
  scan.directory = c.layout.wal_scan;
  auto origin = scan_for_lock_origin(c.services.runner, c.services.cancel, scan, *locks, replay_lsn,
                                     c.server->log_facts().restored_segments);
  if (!origin) {
    if (origin.error().kind == ErrorKind::interrupted) return origin.error();
    log::error(*c.logger, origin.error(), "could not read the archived WAL", spdlog::level::warn);
  }
  return recovery_lock_error(*locks, origin ? *origin : std::nullopt, c.job.target.instant);
}

// A target other than a time: recovery stopped where it names, as the server's log and the
// replay position say. (`latest` stopped at the end of the archived WAL, or before a commit
// after the dump's start: the time checks below.)
Status verify_target_kind(DumpContext& c, const RecoveryStatus& status) {
  const auto& target = c.job.recovery;
  const std::string stop = c.server->log_facts().stop_detail.value_or("");
  const auto fail = [&](const std::string& what) {
    return make_error(ErrorKind::verification,
                      "recovery did not stop at " + target_description(c.job) + ": " + what +
                          (stop.empty() ? "" : " (the server said: " + stop + ")"),
                      "keep the log and report it; nothing was dumped");
  };
  switch (target.kind) {
    case TargetKind::lsn:
      // The log names the location as PostgreSQL prints it (upper case, no leading zeros).
      if (status.replay_lsn < lsn_position(target.value)) return fail("replay is before it");
      if (stop.find("WAL location") == std::string::npos)
        return fail("the server did not say it stopped at a WAL location");
      break;
    case TargetKind::xid:
      if (stop.find("transaction " + target.value + ",") == std::string::npos)
        return fail("the server did not say it stopped after that transaction");
      break;
    case TargetKind::name:
      if (stop.find("restore point \"" + target.value + "\"") == std::string::npos)
        return fail("the server did not say it stopped at that restore point");
      break;
    case TargetKind::time:
    case TargetKind::latest:
      break;
  }
  if (target.kind != TargetKind::time && target.kind != TargetKind::latest)
    c.logger->info("recovery stopped at {} ({})", target_description(c.job), stop);
  return {};
}

Status verify(DumpContext& c) {
  auto session = c.services.connector.connect(c.scratch_conninfo("postgres"));
  if (!session) return session.error().with_context("connecting to the temporary server");
  auto status = (*session)->recovery_status();
  if (!status) return status.error();
  if (!status->in_recovery || status->pause_state != "paused")
    return make_error(ErrorKind::verification, "the temporary server is no longer paused at the target",
                      "nothing else may connect to the scratch server; run the dump again");
  if (auto s = verify_target_kind(c, *status); !s) return s;
  const auto target = c.job.target.instant;
  if (status->last_replayed) {
    if (*status->last_replayed > target)
      return make_error(ErrorKind::verification,
                        "the last replayed transaction (" + format_iso_utc(*status->last_replayed) +
                            ") is after the target (" + format_iso_utc(target) + ")",
                        "this should not happen; keep the log and report it");
    c.summary.replayed_to = status->last_replayed;
    c.summary.gap_seconds = std::chrono::duration<double>(target - *status->last_replayed).count();
    c.logger->info("last replayed transaction committed at {}, {:.3f} s before the target",
                   format_iso_utc(*status->last_replayed), c.summary.gap_seconds);
  } else {
    const SysMicros stop{std::chrono::seconds{c.backup.stop_epoch}};
    c.summary.gap_seconds = std::chrono::duration<double>(target - stop).count();
    c.logger->info(
        "no transaction was replayed after backup {}: the copy is as of its end at {}, "
        "{:.3f} s before the target",
        c.backup.label, format_iso_utc(stop), c.summary.gap_seconds);
  }
  auto databases = (*session)->databases();
  if (!databases) return databases.error();
  if (std::find(databases->begin(), databases->end(), c.job.database) == databases->end()) {
    std::string names;
    for (const auto& name : *databases) names += (names.empty() ? "" : ", ") + name;
    return make_error(ErrorKind::usage,
                      "database '" + c.job.database + "' does not exist in the copy at the target",
                      "choose --database from: " + names);
  }
  return check_recovery_locks(c, status->replay_lsn);
}

// --- dump ----------------------------------------------------------------------------------
// One pg_dump (or pg_restore of the schema archive) into the sink. To a file, the program
// writes the file itself and the sink hashes it behind it; to standard output (a pipe to
// `oc exec`, say) every byte passes through the agent.
Status run_pg_dump(DumpContext& c, DumpSink& sink, std::vector<std::string> argv) {
  ProcessSpec spec;
  spec.tag = std::filesystem::path(argv.front()).filename().string();
  spec.argv = std::move(argv);
  // A compressed dump passes through the agent's compressor.
  if (c.job.to_stdout() || sink.compressing()) {
    spec.stdout_mode = StdoutMode::pipe;
  } else {
    spec.stdout_mode = StdoutMode::file;
    spec.stdout_file = c.output_fd;
  }
  auto started = c.services.runner.start(spec);
  if (!started) return started.error();
  auto& process = *started.value();
  auto copied = c.job.to_stdout() || sink.compressing()
                    ? sink.pump(process.stdout_fd())
                    : sink.follow([&process] { return process.poll().has_value(); });
  if (!copied) {
    process.stop(SIGTERM, std::chrono::seconds(5));
    return copied.error();
  }
  auto result = process.wait(c.services.cancel, std::chrono::milliseconds(0));
  if (!result) {
    process.stop(SIGTERM, std::chrono::seconds(5));
    return make_error(ErrorKind::interrupted, "interrupted while " + spec.tag + " was finishing");
  }
  if (!result->succeeded()) return tool_failure(spec.tag, *result);
  return {};
}

// A pg_dump or pg_restore whose output the agent reads itself (a version, a list of entries).
Result<std::string> run_captured(DumpContext& c, std::vector<std::string> argv) {
  ProcessSpec spec;
  spec.tag = std::filesystem::path(argv.front()).filename().string();
  spec.argv = std::move(argv);
  spec.stdout_mode = StdoutMode::capture;
  auto result = c.services.runner.run(spec, c.services.cancel);
  if (!result) return result.error();
  if (!result->succeeded()) return tool_failure(spec.tag, *result);
  return result->stdout_text;
}

// A program that writes the file `fd` itself and may seek back in it (pg_dump's custom format
// writes its table of contents again at the end, with the data offsets): hashed once it ended.
Status run_into_file(DumpContext& c, DumpSink& sink, int fd, std::vector<std::string> argv) {
  ProcessSpec spec;
  spec.tag = std::filesystem::path(argv.front()).filename().string();
  spec.argv = std::move(argv);
  spec.stdout_mode = StdoutMode::file;
  spec.stdout_file = fd;
  auto result = c.services.runner.run(spec, c.services.cancel);
  if (!result) return result.error();
  if (result->cancelled) return make_error(ErrorKind::interrupted, "interrupted while " + spec.tag + " ran");
  if (!result->succeeded()) return tool_failure(spec.tag, *result);
  return sink.follow([] { return true; });
}

// --globals to a file: the roles of the copy in OUTPUT.globals.sql(.partial until published).
Status dump_globals_file(DumpContext& c, ChecksumAlgorithm checksum) {
  c.globals_partial = c.facts.output + ".globals.sql.partial";
  auto created = create_private_file(c.globals_partial);
  if (!created) return created.error();
  c.globals_fd = *created;
  DumpSink sink(c.globals_fd, checksum, c.services.cancel, CopyProgress{});
  const auto argv = pg_dumpall_globals_argv(c.job.config.postgres.bindir, c.scratch_conninfo("postgres"));
  if (auto s = run_into_file(c, sink, c.globals_fd, argv); !s) return s;
  c.globals = sink.finish();
  return {};
}

// The directory format: pg_dump --jobs writes OUTPUT.partial/, every file is flushed and
// hashed, and publish renames the directory.
Status dump_directory(DumpContext& c, DumpRequest whole, ChecksumAlgorithm checksum) {
  c.partial_dir = c.facts.output + ".partial";
  whole.file = c.partial_dir;
  if (auto s = run_captured(c, pg_dump_argv(whole)); !s) return s.error();
  auto sealed = seal_dump_directory(c.partial_dir, checksum, c.services.cancel);
  if (!sealed) return sealed.error();
  c.directory = std::move(*sealed);
  c.copy.bytes = c.copy.raw_bytes = c.directory.bytes;
  return {};
}

// The tables whose rows the agent copies itself, over several connections; none when
// dump.connections is 1 or no table is large enough. `session` is left open for the dump.
Result<std::vector<SplitTable>> tables_to_split(DumpContext& c, std::unique_ptr<CopySession>& session) {
  if (c.job.config.dump.connections <= 1) return std::vector<SplitTable>{};
  auto connected = c.services.copier.connect(c.scratch_conninfo(c.job.database));
  if (!connected) return connected.error().with_context("connecting to the temporary server");
  session = std::move(connected.value());
  const auto min_bytes = static_cast<std::uint64_t>(c.job.config.dump.split_table_mb) * 1024 * 1024;
  return find_split_tables(*session, min_bytes);
}

// pg_dump --restrict-key exists since the fixes for CVE-2025-8714 (15.14, 16.10, 17.6).
bool pg_dump_takes_restrict_key(DumpContext& c) {
  ProcessSpec spec;
  spec.argv = {c.job.config.postgres.bindir + "/pg_dump", "--help"};
  spec.tag = "pg_dump";
  spec.stdout_mode = StdoutMode::capture;
  spec.timeout = std::chrono::seconds(30);
  auto result = c.services.runner.run(spec, c.services.cancel);
  return result && result->succeeded() && result->stdout_text.find("--restrict-key") != std::string::npos;
}

// The schema archive and the entry lists the pieces are restored from, in the scratch
// directory; removed when the dump step ends, however it ends.
struct SchemaFiles {
  explicit SchemaFiles(const std::string& root)
      : archive(root + "/dump-schema.pgdump"),
        post_data(root + "/dump-post-data.list"),
        acls(root + "/dump-acls.list"),
        database_acl(root + "/dump-database-acl.list"),
        nothing(root + "/dump-nothing.list") {
    remove();
  }
  ~SchemaFiles() { remove(); }
  SchemaFiles(const SchemaFiles&) = delete;
  SchemaFiles& operator=(const SchemaFiles&) = delete;
  void remove() const {
    for (const auto* path : {&archive, &post_data, &acls, &database_acl, &nothing}) unlink(path->c_str());
  }
  std::string archive, post_data, acls, database_acl, nothing;
};

// The database's own privileges as pg_restore writes them: only with --create, which also
// writes CREATE DATABASE and \connect; those are cut off against the same restore without
// the entry.
Result<std::string> database_privileges(DumpContext& c, const PgRestoreRequest& base,
                                        const SchemaFiles& files, const std::string& entry) {
  if (auto s = write_file_atomically(files.database_acl, entry); !s) return s.error();
  if (auto s = write_file_atomically(files.nothing, ""); !s) return s.error();
  PgRestoreRequest with_entry = base, without = base;
  with_entry.create = without.create = true;
  with_entry.use_list = files.database_acl;
  without.use_list = files.nothing;
  auto with_text = run_captured(c, pg_restore_argv(with_entry));
  if (!with_text) return with_text.error();
  auto without_text = run_captured(c, pg_restore_argv(without));
  if (!without_text) return without_text.error();
  auto inserted = inserted_before_footer(*with_text, *without_text);
  if (!inserted)
    return make_error(ErrorKind::internal,
                      "pg_restore wrote the database's privileges in a form the agent does not know",
                      "report this; dump.connections: 1 dumps with pg_dump alone");
  return *inserted;
}

// Where pg_dump's own output would be one stream, here it is pieces in pg_dump's order:
// the schema without privileges (pre-data, restored from an archive of the schema taken
// once), pg_dump's rows of every other table, the large tables' rows, the indexes,
// constraints and triggers (post-data), then the privileges and what pg_dump writes after
// them. Restoring it with psql, as any user who can restore pg_dump's single output, creates
// the same database.
Status dump_in_pieces(DumpContext& c, DumpSink& sink, const DumpRequest& whole,
                      const std::vector<SplitTable>& tables, CopySession& control) {
  ParallelCopySettings settings;
  settings.conninfo = c.scratch_conninfo(c.job.database);
  settings.connections = c.job.config.dump.connections;
  // The scratch directory already holds a copy of the database: room for the rows that wait.
  settings.spill_directory = c.layout.root;
  const auto chunks = plan_copy_chunks(tables, settings.connections);
  DumpRequest schema = whole, other_rows = whole;
  other_rows.section = "data";
  std::uint64_t split_bytes = 0;
  for (const auto& table : tables) {
    other_rows.exclude_table_data.push_back(exact_table_pattern(table));
    c.split_tables.push_back(table.qualified);
    split_bytes += table.bytes;
  }
  c.logger->info(
      "copying the rows of {} table(s) ({:.1f} MiB on disk, largest {}) over {} connections in {} row "
      "ranges; pg_dump writes the rest",
      tables.size(), static_cast<double>(split_bytes) / (1024.0 * 1024.0), tables.front().qualified,
      connections_for(settings.connections, chunks.size()), chunks.size());
  const std::string key = pg_dump_takes_restrict_key(c) ? random_restrict_key() : "";
  other_rows.restrict_key = key;
  SchemaFiles files(c.layout.root);
  schema.schema_archive = files.archive;
  PgRestoreRequest restore;
  restore.bindir = whole.bindir;
  restore.archive = files.archive;
  restore.restrict_key = key;
  const auto write = [&sink](const char* data, std::size_t size) { return sink.write(data, size); };
  const auto write_text = [&write](const std::string& text) { return write(text.data(), text.size()); };
  const auto restricted = [&write_text, &key](const std::string& text) -> Status {
    if (key.empty()) return write_text(text);
    if (auto s = write_text(restrict_line(key)); !s) return s;
    if (auto s = write_text(text); !s) return s;
    return write_text(unrestrict_line(key));
  };

  auto before = read_replay_state(control);
  if (!before) return before.error();
  // The connections start now and copy while pg_dump takes the schema and writes the other
  // rows; if anything fails, leaving this scope stops them.
  ParallelCopy large_rows(chunks, c.services.copier, settings, c.services.cancel);
  if (auto s = run_captured(c, pg_dump_argv(schema)); !s) return s.error();
  PgRestoreRequest list_all = restore, list_first = restore, first = restore;
  list_all.list = list_first.list = true;
  list_all.create = list_first.create = first.create = true;
  list_first.section = first.section = "pre-data";
  list_first.no_privileges = first.no_privileges = true;
  auto all_entries = run_captured(c, pg_restore_argv(list_all));
  if (!all_entries) return all_entries.error();
  auto first_entries = run_captured(c, pg_restore_argv(list_first));
  if (!first_entries) return first_entries.error();
  const auto pieces = plan_schema_pieces(*all_entries, *first_entries);
  std::string database_acl;
  if (!pieces.database_acl.empty()) {
    auto text = database_privileges(c, restore, files, pieces.database_acl);
    if (!text) return text.error();
    database_acl = std::move(*text);
  }
  if (auto s = write_file_atomically(files.post_data, pieces.post_data); !s) return s;
  if (auto s = write_file_atomically(files.acls, pieces.acls_and_after); !s) return s;

  if (auto s = run_pg_dump(c, sink, pg_restore_argv(first)); !s) return s;
  if (auto s = run_pg_dump(c, sink, pg_dump_argv(other_rows)); !s) return s;
  if (auto s = key.empty() ? Status{} : write_text(restrict_line(key)); !s) return s;
  if (auto s = large_rows.write_in_order(write); !s)
    return s.error().with_context("copying the rows of the largest tables");
  if (auto s = key.empty() ? Status{} : write_text(unrestrict_line(key)); !s) return s;
  // Every range is in: had replay moved meanwhile, the connections and pg_dump could have
  // seen different data.
  auto after = read_replay_state(control);
  if (!after) return after.error();
  if (auto moved = replay_moved(*before, *after)) return *moved;
  c.logger->info("replay stayed paused at {} while the rows were copied", after->lsn);

  PgRestoreRequest post_data = restore, acls = restore;
  post_data.use_list = files.post_data;
  acls.use_list = files.acls;
  if (!pieces.post_data.empty())
    if (auto s = run_pg_dump(c, sink, pg_restore_argv(post_data)); !s) return s;
  if (!database_acl.empty())
    if (auto s = restricted(database_acl); !s) return s;
  if (!pieces.acls_and_after.empty())
    if (auto s = run_pg_dump(c, sink, pg_restore_argv(acls)); !s) return s;
  return {};
}

Status dump(DumpContext& c) {
  const auto& shape = c.job.shape;
  const auto checksum =
      parse_checksum_algorithm(c.job.config.dump.checksum).value_or(ChecksumAlgorithm::xxh128);
  if (shape.globals && !c.job.to_stdout())
    if (auto s = dump_globals_file(c, checksum); !s) return s;
  DumpRequest whole;
  whole.bindir = c.job.config.postgres.bindir;
  whole.host = c.layout.run;
  whole.port = c.job.port;
  whole.user = c.job.config.postgres.user;
  whole.database = c.job.database;
  whole.lock_wait_timeout_seconds = c.job.config.dump.lock_timeout_seconds;
  apply_shape(shape, whole);
  if (shape.format == DumpFormat::directory) return dump_directory(c, whole, checksum);
  int fd = STDOUT_FILENO;
  if (!c.job.to_stdout()) {
    c.partial_path = c.facts.output + ".partial";
    auto created = create_private_file(c.partial_path);
    if (!created) return created.error();
    c.output_fd = fd = *created;
  }
  const int zstd_level = shape.compression.kind == DumpCompression::Kind::zstd ? shape.compression.level : 0;
  DumpSink sink(fd, checksum, c.services.cancel, dump_progress_reporter(), zstd_level);
  if (!sink.ok()) return make_error(ErrorKind::internal, "cannot initialise the checksum or zstd");
  // With --output - the roles come first in the stream (check_dump_shape: plain only).
  if (shape.globals && c.job.to_stdout())
    if (auto s = run_pg_dump(c, sink, pg_dumpall_globals_argv(whole.bindir, c.scratch_conninfo("postgres")));
        !s)
      return s;
  if (shape.format == DumpFormat::custom) {
    auto s = c.job.to_stdout() ? run_pg_dump(c, sink, pg_dump_argv(whole))
                               : run_into_file(c, sink, fd, pg_dump_argv(whole));
    if (!s) return s;
    c.copy = sink.finish();
    return {};
  }
  std::unique_ptr<CopySession> control;
  // The row ranges reproduce a whole plain dump only (pipelines/README.md: "Selection").
  if (!shape.selection.empty() && c.job.config.dump.connections > 1)
    c.logger->info(
        "a selection was given (--table, --schema, --data-only, ...): one pg_dump writes the dump");
  auto tables = shape.selection.empty() ? tables_to_split(c, control)
                                        : Result<std::vector<SplitTable>>(std::vector<SplitTable>{});
  if (!tables) return tables.error();
  if (!tables->empty()) {
    // The pieces copy pg_dump's format, session and order: only with a pg_dump they were
    // checked against.
    auto version_text = run_captured(c, {whole.bindir + "/pg_dump", "--version"});
    if (!version_text) return version_text.error();
    if (!split_copy_tested_with(parse_pg_dump_version(*version_text))) {
      std::string shown = *version_text;
      while (!shown.empty() && (shown.back() == '\n' || shown.back() == ' ')) shown.pop_back();
      c.logger->warn(
          "{} is not a version the parallel copy was tested with (PostgreSQL 15): one pg_dump writes the "
          "whole dump",
          shown);
      tables->clear();
    }
  }
  if (tables->empty()) {
    if (auto s = run_pg_dump(c, sink, pg_dump_argv(whole)); !s) return s;
  } else if (auto s = dump_in_pieces(c, sink, whole, *tables, *control); !s) {
    return s;
  }
  if (auto s = sink.end_stream(); !s) return s;
  c.copy = sink.finish();
  return {};
}

void remove_partial(DumpContext& c) {
  if (c.output_fd >= 0) close(c.output_fd);
  c.output_fd = -1;
  if (c.globals_fd >= 0) close(c.globals_fd);
  c.globals_fd = -1;
  if (!c.published && !c.globals_partial.empty()) unlink(c.globals_partial.c_str());
  std::error_code ec;
  if (!c.published && !c.partial_dir.empty() && std::filesystem::remove_all(c.partial_dir, ec) > 0)
    c.logger->info("removed the partial dump directory {}", c.partial_dir);
  if (!c.published && !c.partial_path.empty() && unlink(c.partial_path.c_str()) == 0)
    c.logger->info("removed the partial dump {}", c.partial_path);
}

std::string manifest_json(const DumpContext& c) {
  nlohmann::json durations = nlohmann::json::object();
  for (const auto& t : c.timings) durations[t.step] = t.seconds;
  nlohmann::json manifest = {
      {"agent_version", kAgentVersion},
      {"stanza", c.job.config.stanza},
      {"database", c.job.database},
      {"target", format_iso_utc(c.job.target.instant)},
      {"target_as_typed", c.job.target.as_typed},
      // time, latest (target: the dump's start), lsn, xid or name (target_value: which).
      {"target_type", target_kind_name(c.job.recovery.kind)},
      {"target_value",
       c.job.recovery.value.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.job.recovery.value)},
      // The set pgBackRest restored and its repository; `repo_requested`: --repo (or
      // pgbackrest.repo), null when pgBackRest chose.
      {"backup_set",
       {{"label", c.backup.label},
        {"repo", c.backup.repo},
        {"type", c.backup.type},
        {"stop", format_iso_utc(SysMicros{std::chrono::seconds{c.backup.stop_epoch}})}}},
      {"repo_requested", c.job.repo > 0 ? nlohmann::json(c.job.repo) : nlohmann::json(nullptr)},
      {"replay_timestamp", c.summary.replayed_to ? nlohmann::json(format_iso_utc(*c.summary.replayed_to))
                                                 : nlohmann::json(nullptr)},
      {"gap_seconds", c.summary.gap_seconds},
      // Where recovery stopped: at the target, or (an idle database) at the end of the archived
      // WAL, which reaches past the target and holds no commit after the replayed one.
      {"recovery_stop", c.end_of_wal.used ? nlohmann::json{{"at", "end_of_archived_wal"},
                                                           {"wal_location", c.end_of_wal.end_lsn},
                                                           {"checkpoint_after_target",
                                                            format_iso_utc(c.end_of_wal.checkpoint)}}
                                          : nlohmann::json{{"at", "target"}}},
      {"dump",
       {{"path", c.job.to_stdout() ? "-" : c.facts.output},
        {"bytes", c.copy.bytes},
        {"checksum", c.copy.checksum.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.copy.checksum)},
        {"uncompressed_bytes", c.copy.raw_bytes},
        {"tables_copied_in_parallel", c.split_tables}}},
      // What was restored: only the dumped database (pgbackrest --db-include) or every one.
      {"restore",
       {{"databases", c.include_oid != 0 ? "only the dumped database and the system databases" : "all"},
        {"invalid_pages_reported", c.invalid_pages.reported},
        {"restored_in_full_after_invalid_pages", c.invalid_pages.restored_in_full}}},
      {"durations_seconds", durations},
      {"created_at", format_iso_utc(std::chrono::floor<Microseconds>(c.services.clock.now()))},
  };
  manifest["dump"].update(dump_shape_json(c.job.shape));
  if (c.job.shape.format == DumpFormat::directory) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : c.directory.files)
      files.push_back(
          {{"name", f.name},
           {"bytes", f.bytes},
           {"checksum", f.checksum.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.checksum)}});
    manifest["dump"]["files"] = files;
  }
  if (c.job.shape.globals)
    manifest["globals"] =
        c.job.to_stdout()
            ? nlohmann::json{{"in_stream", true}}
            : nlohmann::json{{"path", c.facts.output + ".globals.sql"},
                             {"bytes", c.globals.bytes},
                             {"checksum", c.globals.checksum.empty() ? nlohmann::json(nullptr)
                                                                     : nlohmann::json(c.globals.checksum)}};
  // Written after the dump is published: a byte that is not UTF-8 (a database name of a
  // SQL_ASCII cluster) becomes U+FFFD rather than an exception that leaves no manifest.
  return manifest.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Status publish(DumpContext& c) {
  c.summary.bytes = c.copy.bytes;
  c.summary.checksum = c.copy.checksum;
  c.summary.backup_label = c.backup.label;
  c.summary.repo = c.backup.repo;
  if (c.job.to_stdout()) {
    c.summary.output = "-";
    c.logger->info("manifest: {}", nlohmann::json::parse(manifest_json(c)).dump());
    return {};
  }
  if (c.globals_fd >= 0) {
    const int globals_fd = c.globals_fd;
    c.globals_fd = -1;
    if (auto s = publish_file(globals_fd, c.globals_partial, c.facts.output + ".globals.sql"); !s) return s;
  }
  if (!c.partial_dir.empty()) {
    if (auto s = publish_directory(c.partial_dir, c.facts.output); !s) return s;
  } else {
    const int fd = c.output_fd;
    c.output_fd = -1;
    if (auto s = publish_file(fd, c.partial_path, c.facts.output); !s) return s;
  }
  c.published = true;
  c.summary.output = c.facts.output;
  c.summary.manifest_path = c.facts.output + ".manifest.json";
  return write_file_atomically(c.summary.manifest_path, manifest_json(c));
}

// --- keep-running: the paused copy stays up for a person, then stops ----------------------
// The copy stays as the dump left it: paused at the target, never promoted, on its private
// socket only, with archiving off, the disk watchdog still watching. It ends at the deadline,
// on `agent dump --stop`, on SIGINT or SIGTERM (the job's cancel, which also shuts the server
// down at once), when the watchdog trips, or when the server ends by itself. The dump is
// already published: however the copy ends, the dump stands, and the step succeeds.
Status keep_running(DumpContext& c) {
  auto& clock = c.services.clock;
  KeptCopy kept;
  kept.socket_dir = c.layout.run;
  kept.port = c.job.port;
  kept.user = c.job.config.postgres.user;
  kept.database = c.job.database;
  const char* hostname = std::getenv("HOSTNAME");
  kept.pod = hostname != nullptr && *hostname != '\0' ? hostname : "POD";
  kept.since = clock.now();
  kept.until = kept.since + c.job.keep_running;
  const std::string psql = kept_copy_psql(kept.socket_dir, kept.port, kept.user, kept.database);
  c.logger->info(
      "the paused copy stays up for inspection until {} (`agent dump --stop` stops it earlier); connect "
      "in the container with: {}; from outside the pod: {}",
      format_iso_utc(std::chrono::floor<Microseconds>(kept.until)), psql, kept_copy_oc_exec(kept.pod, psql));
  if (c.services.on_kept) c.services.on_kept(kept);

  KeepWatch watch;
  watch.stop = c.services.stop_keeping;
  watch.exited = [&c] { return c.server ? c.server->exited() : std::optional<std::string>("not started"); };
  watch.disk_tripped = [&c] { return c.disk_watch != nullptr && c.disk_watch->tripped().has_value(); };
  const std::string ended = wait_while_kept(clock, c.services.cancel, c.job.keep_running, watch);
  if (auto trip = c.disk_watch != nullptr ? c.disk_watch->tripped() : std::nullopt)
    log::error(*c.logger, trip->error, "stopped the kept copy", spdlog::level::err);
  else if (ended.starts_with("the server"))
    c.logger->warn("the kept copy's {}", ended);
  c.summary.kept_copy_ended = ended;
  c.logger->info("stopping the kept copy: {}", ended);
  stop_server(c);
  return {};
}

// --- run_on_paused_copy: the drill's steps after verify -----------------------------------
PausedCopy paused_copy(const DumpContext& c) {
  PausedCopy copy;
  copy.data_dir = c.layout.data;
  copy.socket_dir = c.layout.run;
  copy.port = c.job.port;
  copy.user = c.job.config.postgres.user;
  copy.backup_label = c.backup.label;
  copy.backup_type = c.backup.type;
  copy.backup_repo = c.backup.repo;
  copy.backup_stop_epoch = c.backup.stop_epoch;
  copy.replayed_to = c.summary.replayed_to;
  copy.gap_seconds = c.summary.gap_seconds;
  copy.end_of_archive = c.end_of_wal.used;
  copy.clean_shutdown = c.clean_shutdown;
  return copy;
}

Status check_repository(DumpContext& c) {
  return c.work->repository_check ? c.work->repository_check(paused_copy(c)) : Status{};
}

Status inspect_copy(DumpContext& c) {
  return c.work->inspect ? c.work->inspect(paused_copy(c)) : Status{};
}

Status stop_copy_cleanly(DumpContext& c) {
  c.clean_shutdown = c.server && c.server->stop_clean(std::chrono::seconds(60));
  return {};
}

Status after_stop(DumpContext& c) {
  return c.work->after_stop ? c.work->after_stop(paused_copy(c)) : Status{};
}

}  // namespace

CopyOutcome run_on_paused_copy(const DumpJob& job, DumpServices& services, const CopyWork& work) {
  DiskWatch disk_watch(services.cancel, std::chrono::milliseconds(250));
  DumpServices watched = services;
  watched.cancel = disk_watch.token();
  DumpContext context(job, watched);
  context.disk_watch = &disk_watch;
  context.work = &work;
  context.logger = log::get(work.logger);
  const std::vector<Step<DumpContext>> steps = {
      {"check", check, nullptr},
      {"prepare", prepare, release_lock},
      {"restore", restore, keep_or_remove_copy},
      {"start", start_server, stop_server},
      {"wait", wait_for_target, nullptr},
      {"verify", verify, nullptr},
      {work.repository_step, check_repository, nullptr},
      {work.inspect_step, inspect_copy, nullptr},
      {"stop", stop_copy_cleanly, nullptr},
      {work.after_stop_step, after_stop, nullptr},
  };
  CopyOutcome outcome;
  outcome.status = run_steps<DumpContext>(steps, context, watched.cancel, *context.logger, watched.on_step);
  if (!outcome.status)
    if (auto trip = disk_watch.tripped())
      outcome.status =
          context.timings.empty() ? trip->error : trip->error.with_context(context.timings.back().step);
  outcome.copy = paused_copy(context);
  outcome.timings = context.timings;
  return outcome;
}

Result<DumpSummary> run_dump(const DumpJob& job, DumpServices& services) {
  // The steps wait on the watchdog's token: it forwards the caller's cancellation and adds its
  // own when free space on a live filesystem falls below the reserve. Once the dump is
  // published, nothing is written any more.
  DiskWatch disk_watch(services.cancel, std::chrono::milliseconds(250));
  DumpServices watched = services;
  watched.cancel = disk_watch.token();
  // A kept copy goes on being watched: a person's queries may write temporary files there.
  const bool keep = job.keep_running.count() > 0;
  watched.on_step = [&](const std::string& step, const std::string& state, double seconds) {
    if (step == "publish" && state == "done" && !keep) disk_watch.watch({});
    if (services.on_step) services.on_step(step, state, seconds);
  };
  DumpContext context(job, watched);
  context.disk_watch = &disk_watch;
  static const std::vector<Step<DumpContext>> steps = {
      {"check", check, nullptr},
      {"prepare", prepare, release_lock},
      {"restore", restore, keep_or_remove_copy},
      {"start", start_server, stop_server},
      {"wait", wait_for_target, nullptr},
      {"verify", verify, nullptr},
      {"dump", dump, remove_partial},
      {"publish", publish, nullptr},
      {"stop", stop_step, nullptr},
  };
  // --keep-running: the copy stays up after publish and the step stops it itself: a signal
  // that ends the wait is how a person stops it, not an interruption of the dump.
  static const std::vector<Step<DumpContext>> keeping_steps = [] {
    auto list = steps;
    list.back() = {"keep-running", keep_running, nullptr};
    return list;
  }();
  auto status = run_steps<DumpContext>(keep ? keeping_steps : steps, context, watched.cancel, *context.logger,
                                       watched.on_step);
  if (!status) {
    if (auto trip = disk_watch.tripped())
      return context.timings.empty() ? trip->error : trip->error.with_context(context.timings.back().step);
    return status.error();
  }
  context.summary.timings = context.timings;
  return context.summary;
}

}  // namespace agent
