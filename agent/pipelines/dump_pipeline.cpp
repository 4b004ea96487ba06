#include "pipelines/dump_pipeline.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/files.hpp"
#include "core/log.hpp"
#include "core/version.hpp"
#include "exec/commands.hpp"
#include "exec/no_sync.hpp"
#include "pg/replay_wait.hpp"
#include "pgbackrest/info.hpp"
#include "pipelines/dump_preflight.hpp"
#include "pipelines/parallel_copy.hpp"
#include "pipelines/scratch_server.hpp"
#include "pipelines/split_tables.hpp"
#include "pipelines/stream_copy.hpp"

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
  int lock_fd = -1;
  std::unique_ptr<ScratchServer> server;
  int output_fd = -1;
  std::string partial_path;
  bool published = false;
  CopyStats copy;
  std::vector<std::string> split_tables;  // copied by the agent over several connections
  DumpSummary summary;
  std::vector<StepTiming> timings;

  PgBackRestTarget pgbackrest() const {
    return PgBackRestTarget{job.config.pgbackrest.bin, job.config.pgbackrest.config, job.config.stanza,
                            job.config.pgbackrest.repo};
  }
  std::string scratch_conninfo(const std::string& database) const {
    return conninfo(layout.run, job.port, job.config.postgres.user, database);
  }
};

// Logs "<what> NN%" at most every ten seconds from lines that end in "NN.NN%)".
class ThrottledProgress {
 public:
  ThrottledProgress(std::shared_ptr<spdlog::logger> logger, std::string what)
      : logger_(std::move(logger)), what_(std::move(what)) {}
  void update(std::string_view line) {
    const auto percent_end = line.rfind("%)");
    if (percent_end == std::string_view::npos) return;
    const auto start = line.find_last_of(" (", percent_end);
    if (start == std::string_view::npos) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(10)) return;
    last_ = now;
    logger_->info("{} {}%", what_, line.substr(start + 1, percent_end - start - 1));
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  std::string what_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

Error combine(const std::vector<Error>& errors) {
  if (errors.size() == 1) return errors.front();
  std::string message = "refusing to go on, " + std::to_string(errors.size()) + " problems:";
  for (const auto& e : errors) message += "\n  - " + e.message + (e.hint.empty() ? "" : " (" + e.hint + ")");
  return make_error(errors.front().kind, message, "fix each problem above; nothing was written");
}

Error tool_failure(const std::string& what, const ProcessResult& result) {
  const std::string excerpt = result.error_excerpt();
  ErrorKind kind = ErrorKind::external_tool;
  std::string hint = "read the " + what + " lines above in the log";
  // pgBackRest's exit code is its error code.
  if (what == "pgbackrest restore" && result.exit_code == 75) {
    kind = ErrorKind::target_window;
    hint = "choose a target after the oldest backup's stop time (pgbackrest info)";
  } else if (what == "pgbackrest restore" && result.exit_code == 38) {
    kind = ErrorKind::environment;
    hint = "a server is running on the scratch directory; stop it first";
  }
  return make_error(kind, what + " " + result.describe() + (excerpt.empty() ? "" : ": " + excerpt), hint);
}

// --- check -------------------------------------------------------------------------------
Status check(DumpContext& c) {
  c.facts = gather_local_facts(c.job);
  if (auto errors = check_local_facts(c.facts, c.job); !errors.empty()) return combine(errors);

  ProcessSpec spec;
  spec.argv = pgbackrest_info_argv(c.pgbackrest());
  spec.tag = "pgbackrest";
  spec.stdout_mode = StdoutMode::capture;
  spec.timeout = std::chrono::seconds(c.job.config.pgbackrest.timeout_seconds);
  auto result = c.services.runner.run(spec, c.services.cancel);
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
  auto backup = check_against_repository(*found, c.job, c.facts, c.services.clock.now());
  if (!backup) return backup.error();
  c.backup = *backup;
  c.logger->info("target {} ({}) will be restored from backup set {} ({}, finished {})",
                 format_iso_utc(c.job.target.instant), c.job.target.as_typed, c.backup.label, c.backup.type,
                 format_iso_utc(SysMicros{std::chrono::seconds{c.backup.stop_epoch}}));
  return {};
}

// --- prepare: the scratch layout, its marker and its lock ----------------------------------
Status prepare(DumpContext& c) {
  c.layout = ScratchLayout::under(c.facts.scratch);
  for (const auto& dir : {c.layout.root, c.layout.data, c.layout.run, c.layout.tablespaces})
    if (auto s = ensure_private_directory(dir); !s) return s;
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
Status restore(DumpContext& c) {
  RestoreRequest request;
  request.target_time = format_for_pgbackrest(c.job.target.instant);
  request.data_dir = c.layout.data;
  request.tablespace_dir = c.layout.tablespaces;
  request.process_max = c.job.config.pgbackrest.process_max;
  request.backup_set = c.job.backup_set;
  ProcessSpec spec;
  spec.argv = pgbackrest_restore_argv(c.pgbackrest(), request);
  spec.tag = "pgbackrest";
  spec.kill_grace = std::chrono::seconds(10);
  // One DETAIL line per restored file ends in "(SIZE, NN.NN%)": log those at debug and
  // report the percentage every ten seconds instead.
  auto progress = std::make_shared<ThrottledProgress>(c.logger, "restored");
  spec.level_for_line = [progress](std::string_view line) {
    if (line.find(" DETAIL: ") == std::string_view::npos) return spdlog::level::info;
    if (line.find(" DETAIL: restore file ") != std::string_view::npos) progress->update(line);
    return spdlog::level::debug;
  };
  if (!c.job.no_sync_library.empty()) {
    preload_no_sync(spec, c.job.no_sync_library);
    c.logger->info("the restore skips fsync (restore.fsync: off, {} preloaded)", c.job.no_sync_library);
  } else if (!c.job.config.restore.fsync) {
    c.logger->info(
        "libeatmydata is not installed: the restore waits for the disk after every file "
        "(install libeatmydata1 for a faster restore)");
  }
  c.logger->info("running {}", display_command(spec.argv));
  auto result = c.services.runner.run(spec, c.services.cancel);
  if (!result) return result.error();
  if (!result->succeeded()) return tool_failure("pgbackrest restore", *result);
  const auto errors = check_restored_tablespaces(c.facts.tablespaces, read_tablespace_links(c.layout.data),
                                                 c.layout.root, c.backup.label);
  if (!errors.empty()) return combine(errors);
  return {};
}

// --- start / stop the temporary server -----------------------------------------------------
Status start_server(DumpContext& c) {
  ScratchServerSettings settings{c.job.config.postgres.bindir, c.layout.data, c.layout.run, c.job.port,
                                 c.job.config.restore.shared_buffers};
  auto server = ScratchServer::start(c.services.runner, settings);
  if (!server) return server.error();
  c.server = std::move(server.value());
  return {};
}

void stop_server(DumpContext& c) {
  if (c.server) c.server->stop();
}

Status stop_step(DumpContext& c) {
  stop_server(c);
  return {};
}

// --- wait and verify -----------------------------------------------------------------------
Status wait_for_target(DumpContext& c) {
  ReplayWaitSettings settings;
  settings.conninfo = c.scratch_conninfo("postgres");
  settings.no_progress_timeout = std::chrono::seconds(c.job.config.restore.wait_timeout_seconds);
  settings.backup_end_description = format_iso_utc(SysMicros{std::chrono::seconds{c.backup.stop_epoch}}) +
                                    " (the end of backup set " + c.backup.label + ")";
  auto reached = wait_for_recovery_target(settings, *c.server, c.services.connector, c.services.clock,
                                          c.services.cancel);
  if (!reached) return reached.error();
  const auto facts = c.server->log_facts();
  c.logger->info("recovery reached the target and paused ({})", facts.stop_detail.value_or("target reached"));
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
  return {};
}

// --- dump ----------------------------------------------------------------------------------
// One pg_dump into the sink. To a file, pg_dump writes the file itself and the sink hashes it
// behind it; to standard output (a pipe to `oc exec`, say) every byte passes through the agent.
Status run_pg_dump(DumpContext& c, DumpSink& sink, const DumpRequest& request) {
  ProcessSpec spec;
  spec.argv = pg_dump_argv(request);
  spec.tag = "pg_dump";
  if (c.job.to_stdout()) {
    spec.stdout_mode = StdoutMode::pipe;
  } else {
    spec.stdout_mode = StdoutMode::file;
    spec.stdout_file = c.output_fd;
  }
  auto started = c.services.runner.start(spec);
  if (!started) return started.error();
  auto& process = *started.value();
  auto copied = c.job.to_stdout() ? sink.pump(process.stdout_fd())
                                  : sink.follow([&process] { return process.poll().has_value(); });
  if (!copied) {
    process.stop(SIGTERM, std::chrono::seconds(5));
    return copied.error();
  }
  auto result = process.wait(c.services.cancel, std::chrono::milliseconds(0));
  if (!result) {
    process.stop(SIGTERM, std::chrono::seconds(5));
    return make_error(ErrorKind::interrupted, "interrupted while pg_dump was finishing");
  }
  if (!result->succeeded()) return tool_failure("pg_dump", *result);
  return {};
}

// The tables whose rows the agent copies itself, over several connections; none when
// dump.connections is 1 or no table is large enough.
Result<std::vector<SplitTable>> tables_to_split(DumpContext& c) {
  if (c.job.config.dump.connections <= 1) return std::vector<SplitTable>{};
  auto session = c.services.copier.connect(c.scratch_conninfo(c.job.database));
  if (!session) return session.error().with_context("connecting to the temporary server");
  const auto min_bytes = static_cast<std::uint64_t>(c.job.config.dump.split_table_mb) * 1024 * 1024;
  return find_split_tables(**session, min_bytes);
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

// Where pg_dump's own output would be one stream, here it is four pieces in the same order:
// pg_dump's schema (pre-data), pg_dump's rows of every other table, the large tables' rows,
// then pg_dump's indexes, constraints and triggers (post-data). Restoring it with psql
// creates the same database as restoring pg_dump's single output.
Status dump(DumpContext& c) {
  int fd = STDOUT_FILENO;
  if (!c.job.to_stdout()) {
    c.partial_path = c.facts.output + ".partial";
    auto created = create_private_file(c.partial_path);
    if (!created) return created.error();
    c.output_fd = fd = *created;
  }
  const auto checksum =
      parse_checksum_algorithm(c.job.config.dump.checksum).value_or(ChecksumAlgorithm::xxh128);
  DumpSink sink(fd, checksum, c.services.cancel, dump_progress_reporter());
  if (!sink.ok()) return make_error(ErrorKind::internal, "cannot initialise the checksum");
  DumpRequest whole;
  whole.bindir = c.job.config.postgres.bindir;
  whole.host = c.layout.run;
  whole.port = c.job.port;
  whole.user = c.job.config.postgres.user;
  whole.database = c.job.database;
  auto tables = tables_to_split(c);
  if (!tables) return tables.error();
  if (tables->empty()) {
    if (auto s = run_pg_dump(c, sink, whole); !s) return s;
    c.copy = sink.finish();
    return {};
  }

  ParallelCopySettings settings;
  settings.conninfo = c.scratch_conninfo(c.job.database);
  settings.connections = c.job.config.dump.connections;
  // The scratch directory already holds a copy of the database: room for the rows that wait.
  settings.spill_directory = c.layout.root;
  const auto chunks = plan_copy_chunks(*tables, settings.connections);
  DumpRequest schema = whole, other_rows = whole, post_data = whole;
  schema.section = "pre-data";
  other_rows.section = "data";
  post_data.section = "post-data";
  std::uint64_t split_bytes = 0;
  for (const auto& table : *tables) {
    other_rows.exclude_table_data.push_back(exact_table_pattern(table));
    c.split_tables.push_back(table.qualified);
    split_bytes += table.bytes;
  }
  c.logger->info(
      "copying the rows of {} table(s) ({:.1f} MiB on disk, largest {}) over {} connections in {} row "
      "ranges; pg_dump writes the rest",
      tables->size(), static_cast<double>(split_bytes) / (1024.0 * 1024.0), tables->front().qualified,
      connections_for(settings.connections, chunks.size()), chunks.size());
  const std::string key = pg_dump_takes_restrict_key(c) ? random_restrict_key() : "";
  for (auto* request : {&schema, &other_rows, &post_data}) request->restrict_key = key;
  const auto write = [&sink](const char* data, std::size_t size) { return sink.write(data, size); };
  const auto write_text = [&write](const std::string& text) { return write(text.data(), text.size()); };
  // The connections start now and copy while pg_dump writes what goes before their rows; if
  // pg_dump fails, leaving this scope stops them.
  ParallelCopy large_rows(chunks, c.services.copier, settings, c.services.cancel);
  if (auto s = run_pg_dump(c, sink, schema); !s) return s;
  if (auto s = run_pg_dump(c, sink, other_rows); !s) return s;
  if (auto s = key.empty() ? Status{} : write_text(restrict_line(key)); !s) return s;
  if (auto s = large_rows.write_in_order(write); !s)
    return s.error().with_context("copying the rows of the largest tables");
  if (auto s = key.empty() ? Status{} : write_text(unrestrict_line(key)); !s) return s;
  if (auto s = run_pg_dump(c, sink, post_data); !s) return s;
  c.copy = sink.finish();
  return {};
}

void remove_partial(DumpContext& c) {
  if (c.output_fd >= 0) close(c.output_fd);
  c.output_fd = -1;
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
      {"backup_set",
       {{"label", c.backup.label},
        {"type", c.backup.type},
        {"stop", format_iso_utc(SysMicros{std::chrono::seconds{c.backup.stop_epoch}})}}},
      {"replay_timestamp", c.summary.replayed_to ? nlohmann::json(format_iso_utc(*c.summary.replayed_to))
                                                 : nlohmann::json(nullptr)},
      {"gap_seconds", c.summary.gap_seconds},
      {"dump",
       {{"path", c.job.to_stdout() ? "-" : c.facts.output},
        {"bytes", c.copy.bytes},
        {"checksum", c.copy.checksum.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.copy.checksum)},
        {"format", "plain"},
        {"tables_copied_in_parallel", c.split_tables}}},
      {"durations_seconds", durations},
      {"created_at", format_iso_utc(std::chrono::floor<Microseconds>(c.services.clock.now()))},
  };
  return manifest.dump(2) + "\n";
}

Status publish(DumpContext& c) {
  c.summary.bytes = c.copy.bytes;
  c.summary.checksum = c.copy.checksum;
  c.summary.backup_label = c.backup.label;
  if (c.job.to_stdout()) {
    c.summary.output = "-";
    c.logger->info("manifest: {}", nlohmann::json::parse(manifest_json(c)).dump());
    return {};
  }
  const int fd = c.output_fd;
  c.output_fd = -1;
  if (auto s = publish_file(fd, c.partial_path, c.facts.output); !s) return s;
  c.published = true;
  c.summary.output = c.facts.output;
  c.summary.manifest_path = c.facts.output + ".manifest.json";
  return write_file_atomically(c.summary.manifest_path, manifest_json(c));
}

}  // namespace

Result<DumpSummary> run_dump(const DumpJob& job, DumpServices& services) {
  DumpContext context(job, services);
  static const std::vector<Step<DumpContext>> steps = {
      {"check", check, nullptr},          {"prepare", prepare, release_lock},
      {"restore", restore, nullptr},      {"start", start_server, stop_server},
      {"wait", wait_for_target, nullptr}, {"verify", verify, nullptr},
      {"dump", dump, remove_partial},     {"publish", publish, nullptr},
      {"stop", stop_step, nullptr},
  };
  auto status = run_steps<DumpContext>(steps, context, services.cancel, *context.logger, services.on_step);
  if (!status) return status.error();
  context.summary.timings = context.timings;
  return context.summary;
}

}  // namespace agent
