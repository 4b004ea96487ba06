#include "pipelines/scratch_server.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

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
                       root + "/.agent-scratch.lock"};
}

namespace {

Status write_private_file(const std::string& path, const std::string& content) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(ErrorKind::environment, "cannot write " + path + ": " + std::strerror(errno));
  const auto written = write(fd, content.data(), content.size());
  close(fd);
  if (written != static_cast<ssize_t>(content.size()))
    return make_error(ErrorKind::environment, "cannot write " + path);
  return {};
}

// Recovery milestones are worth a person's attention; per-WAL-file chatter is not.
spdlog::level::level_enum level_for_server_line(std::string_view line) {
  // The agent's own connection attempts while the server starts up are expected.
  if (line.find("the database system is not yet accepting connections") != std::string_view::npos ||
      line.find("the database system is starting up") != std::string_view::npos)
    return spdlog::level::debug;
  for (std::string_view word : {"FATAL:", "PANIC:", "ERROR:", "WARNING:"})
    if (line.find(word) != std::string_view::npos) return spdlog::level::warn;
  for (std::string_view milestone :
       {"starting point-in-time recovery", "consistent recovery state reached", "redo starts",
        "recovery stopping", "pausing at the end of recovery", "last completed transaction",
        "database system is ready", "shutting down", "database system is shut down"})
    if (line.find(milestone) != std::string_view::npos) return spdlog::level::info;
  return spdlog::level::debug;
}

}  // namespace

Result<std::unique_ptr<ScratchServer>> ScratchServer::start(ProcessRunner& runner,
                                                            const ScratchServerSettings& settings) {
  if (auto s = write_private_file(settings.socket_dir + "/pg_hba.conf", kScratchHbaConf); !s)
    return s.error();
  if (auto s = write_private_file(settings.socket_dir + "/pg_ident.conf", ""); !s) return s.error();

  auto log = std::make_shared<RecoveryLog>();
  ProcessSpec spec;
  spec.argv = scratch_postgres_argv(settings);
  spec.tag = "postgres";
  spec.level_for_line = level_for_server_line;
  spec.on_line = [log](std::string_view line) { log->feed(line); };
  // If the agent dies, the copy goes down at once (immediate shutdown): it is disposable.
  spec.death_signal = SIGQUIT;
  auto process = runner.start(spec);
  if (!process) return process.error();
  log::get("dump")->info("temporary server pid {} on socket {}/.s.PGSQL.{}", process.value()->pid(),
                         settings.socket_dir, settings.port);
  return std::unique_ptr<ScratchServer>(new ScratchServer(std::move(process.value()), log));
}

std::optional<std::string> ScratchServer::exited() const {
  if (auto result = process_->poll()) return result->describe();
  return std::nullopt;
}

void ScratchServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (process_->poll()) return;
  // SIGQUIT is PostgreSQL's immediate shutdown: no shutdown checkpoint, and no waiting for
  // the paused startup process, which notices a fast shutdown only about once a second. The
  // copy is disposable (the next run restores over it with --delta), so nothing is lost.
  // The escalation to SIGKILL of the whole group is for a server that hangs.
  const auto result = process_->stop(SIGQUIT, std::chrono::seconds(60));
  log::get("dump")->info("temporary server stopped ({})", result.describe());
}

ScratchServer::~ScratchServer() {
  stop();
}

}  // namespace agent
