#include "pipelines/scratch_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/files.hpp"
#include "core/log.hpp"

namespace agent {

ScratchLayout ScratchLayout::under(const std::string& scratch) {
  std::string root = scratch;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return ScratchLayout{root,
                       root + "/data",
                       root + "/run",
                       root + "/tablespaces",
                       root + "/.agent-scratch",
                       root + "/.agent-scratch.lock",
                       root + "/pgbackrest",
                       root + "/pgbackrest/lock",
                       root + "/pgbackrest/log",
                       root + "/pgbackrest/spool",
                       root + "/wal-scan"};
}

namespace {

Status write_private_file(const std::string& path, const std::string& content) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(ErrorKind::environment, "cannot write " + path + ": " + std::strerror(errno));
  const int error = write_all(fd, content.data(), content.size());
  close(fd);
  if (error != 0)
    return make_error(ErrorKind::environment, "cannot write " + path + ": " + std::strerror(error));
  return {};
}

// The level of each server line. Recovery milestones are worth a person's attention;
// per-WAL-file chatter is not. Reasons keep their level: PostgreSQL's FATAL, PANIC and ERROR,
// and pgBackRest's ERROR lines (from archive-get, which the server runs) are errors, their
// WARNING and WARN lines warnings, and the indented lines that continue a pgBackRest message
// keep its level. The agent's own connection attempts while the server starts up are expected.
class ServerLineLevels {
 public:
  spdlog::level::level_enum operator()(std::string_view line) {
    const bool prefixed = server_line_pid(line).has_value();
    if (!prefixed && !line.empty() && (line.front() == ' ' || line.front() == '\t')) return continued_;
    continued_ = spdlog::level::debug;
    const auto level = level_of(line, prefixed);
    if (!prefixed) continued_ = level;
    return level;
  }

 private:
  static bool has(std::string_view line, std::string_view part) {
    return line.find(part) != std::string_view::npos;
  }

  static spdlog::level::level_enum level_of(std::string_view line, bool prefixed) {
    if (has(line, "the database system is not yet accepting connections") ||
        has(line, "the database system is starting up") ||
        has(line, "Consistent recovery state has not been yet reached"))
      return spdlog::level::debug;
    // A session of the agent's that the shutdown ends as it closes: only the agent stops the copy.
    if (has(line, "terminating connection due to administrator command")) return spdlog::level::info;
    // The agent reads it and says what it means (the WAL ends early, or it recovers to the end).
    if (has(line, "recovery ended before configured recovery target was reached")) return spdlog::level::warn;
    if (!prefixed) {
      if (has(line, "ERROR:") || has(line, "FATAL:") || has(line, "PANIC:")) return spdlog::level::err;
      if (has(line, "WARN:")) return spdlog::level::warn;
      return spdlog::level::info;  // whatever else a program the server runs says
    }
    for (std::string_view word : {"FATAL:", "PANIC:", "ERROR:"})
      if (has(line, word)) return spdlog::level::err;
    if (has(line, "WARNING:")) return spdlog::level::warn;
    for (std::string_view milestone :
         {"starting point-in-time recovery", "consistent recovery state reached", "redo starts",
          "recovery stopping", "pausing at the end of recovery", "last completed transaction", "redo done at",
          "database system is ready", "shutting down", "database system is shut down"})
      if (has(line, milestone)) return spdlog::level::info;
    return spdlog::level::debug;
  }

  spdlog::level::level_enum continued_ = spdlog::level::debug;
};

}  // namespace

Result<std::unique_ptr<ScratchServer>> ScratchServer::start(ProcessRunner& runner,
                                                            const ScratchServerSettings& settings,
                                                            const CancelToken& cancel) {
  if (auto s = write_private_file(settings.socket_dir + "/pg_hba.conf", kScratchHbaConf); !s)
    return s.error();
  if (auto s = write_private_file(settings.socket_dir + "/pg_ident.conf", ""); !s) return s.error();

  auto log = std::make_shared<RecoveryLog>();
  ProcessSpec spec;
  spec.argv = scratch_postgres_argv(settings);
  spec.tag = "postgres";
  spec.level_for_line = [levels = std::make_shared<ServerLineLevels>()](std::string_view line) {
    return (*levels)(line);
  };
  spec.on_line = [log](std::string_view line) { log->feed(line); };
  // If the agent dies, the copy goes down at once (immediate shutdown): it is disposable.
  spec.death_signal = SIGQUIT;
  auto process = runner.start(spec);
  if (!process) return process.error();
  log::get("dump")->info("temporary server pid {} on socket {}/.s.PGSQL.{}", process.value()->pid(),
                         settings.socket_dir, settings.port);
  std::unique_ptr<ScratchServer> server(new ScratchServer(std::move(process.value()), log));
  if (&cancel != &CancelToken::never()) server->watch_cancel(cancel);
  return server;
}

void ScratchServer::watch_cancel(const CancelToken& cancel) {
  watcher_ = std::thread([this, &cancel] {
    pollfd fds[2] = {{cancel.fd(), POLLIN, 0}, {watch_stop_.fd(), POLLIN, 0}};
    while (!cancel.cancelled() && !watch_stop_.cancelled()) {
      if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    }
    std::lock_guard lock(mutex_);
    if (stopped_ || !cancel.cancelled() || process_->poll()) return;
    log::get("dump")->info(
        "interrupted: immediate shutdown of the temporary server, which ends every "
        "connection to it");
    process_->signal_group(SIGQUIT);
  });
}

std::optional<std::string> ScratchServer::exited() const {
  if (auto result = process_->poll()) return result->describe();
  return std::nullopt;
}

void ScratchServer::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  watch_stop_.cancel();
  if (watcher_.joinable()) watcher_.join();
  if (process_->poll()) return;
  // SIGQUIT is PostgreSQL's immediate shutdown: no shutdown checkpoint, and no waiting for
  // the paused startup process, which notices a fast shutdown only about once a second. The
  // copy is disposable (the next run restores over it with --delta), so nothing is lost.
  // The escalation to SIGKILL of the whole group is for a server that hangs.
  const auto result = process_->stop(SIGQUIT, std::chrono::seconds(60));
  log::get("dump")->info("temporary server stopped ({})", result.describe());
}

bool ScratchServer::stop_clean(std::chrono::seconds grace) {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return false;
    stopped_ = true;
  }
  watch_stop_.cancel();
  if (watcher_.joinable()) watcher_.join();
  if (process_->poll()) return false;
  const auto result = process_->stop(SIGINT, grace);
  log::get("dump")->info("temporary server shut down ({})", result.describe());
  return result.exit_code == 0;
}

ScratchServer::~ScratchServer() {
  stop();
}

}  // namespace agent
