#include "pipelines/dump_preflight.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>

#include "pipelines/scratch_server.hpp"

namespace agent {

namespace fs = std::filesystem;

bool path_within(const std::string& inner, const std::string& outer) {
  if (inner.empty() || outer.empty()) return false;
  if (inner == outer) return true;
  const std::string prefix = outer.back() == '/' ? outer : outer + "/";
  return inner.compare(0, prefix.size(), prefix) == 0;
}

namespace {

std::string canonical(const std::string& path) {
  std::error_code ec;
  auto result = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec) return fs::absolute(path).lexically_normal().string();
  std::string text = result.string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return text;
}

// A TCP listener on the port anywhere on this host makes bind() to the wildcard fail.
bool tcp_port_in_use(int port) {
  bool in_use = false;
  {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(static_cast<uint16_t>(port));
      address.sin_addr.s_addr = htonl(INADDR_ANY);
      if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 && errno == EADDRINUSE)
        in_use = true;
      close(fd);
    }
  }
  {
    const int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      int v6only = 1;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
      sockaddr_in6 address{};
      address.sin6_family = AF_INET6;
      address.sin6_port = htons(static_cast<uint16_t>(port));
      address.sin6_addr = in6addr_any;
      if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 && errno == EADDRINUSE)
        in_use = true;
      close(fd);
    }
  }
  return in_use;
}

std::uint64_t tree_bytes(const std::string& root) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      const auto size = it->file_size(size_ec);
      if (!size_ec) total += size;
    }
  }
  return total;
}

std::string nearest_existing(std::string path) {
  std::error_code ec;
  while (!path.empty() && !fs::exists(path, ec)) path = fs::path(path).parent_path().string();
  return path.empty() ? "/" : path;
}

std::string human_bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f %s", value, units[unit]);
  return buffer;
}

std::string epoch_text(std::int64_t epoch) {
  return format_iso_utc(SysMicros{std::chrono::seconds{epoch}});
}

}  // namespace

std::vector<TablespaceLink> read_tablespace_links(const std::string& data_dir) {
  std::vector<TablespaceLink> links;
  std::error_code ec;
  for (fs::directory_iterator it(data_dir + "/pg_tblspc", ec), end; !ec && it != end; it.increment(ec))
    links.push_back(TablespaceLink{it->path().filename().string(), canonical(it->path().string())});
  std::sort(links.begin(), links.end(), [](const auto& a, const auto& b) { return a.oid < b.oid; });
  return links;
}

std::vector<Error> check_restored_tablespaces(const std::vector<TablespaceLink>& live,
                                              const std::vector<TablespaceLink>& restored,
                                              const std::string& scratch_root,
                                              const std::string& backup_label) {
  std::vector<Error> errors;
  for (const auto& link : restored) {
    if (!path_within(link.path, scratch_root))
      errors.push_back(make_error(ErrorKind::environment,
                                  "the restored copy's tablespace " + link.oid + " points to " + link.path +
                                      ", outside the scratch directory",
                                  "the copy was not started; report this, it should not happen with "
                                  "--tablespace-map-all"));
  }
  for (const auto& link : live) {
    const bool in_copy = std::any_of(restored.begin(), restored.end(),
                                     [&](const TablespaceLink& r) { return r.oid == link.oid; });
    if (!in_copy)
      errors.push_back(make_error(
          ErrorKind::environment,
          "live tablespace " + link.oid + " (" + link.path + ") is not in backup set " + backup_label +
              ": it was created later, and replaying its creation would point the copy at the live "
              "directory",
          "the copy was not started; choose a target after a backup that includes the tablespace "
          "(take one with `pgbackrest backup` if needed), or name such a backup with --set"));
  }
  return errors;
}

LocalFacts gather_local_facts(const DumpJob& job) {
  LocalFacts facts;
  std::error_code ec;
  facts.running_as_root = geteuid() == 0;
  for (const char* program : {"/postgres", "/pg_dump"})
    if (access((job.config.postgres.bindir + program).c_str(), X_OK) != 0) facts.bindir_has_programs = false;

  facts.live_data = canonical(job.config.postgres.data);
  facts.tablespaces = read_tablespace_links(facts.live_data);

  facts.scratch = canonical(job.scratch);
  facts.scratch_exists = fs::exists(facts.scratch, ec);
  if (facts.scratch_exists) {
    facts.scratch_is_dir = fs::is_directory(facts.scratch, ec);
    facts.scratch_empty = facts.scratch_is_dir && fs::is_empty(facts.scratch, ec);
    const auto layout = ScratchLayout::under(facts.scratch);
    facts.scratch_has_marker = fs::exists(layout.marker, ec);
    facts.scratch_parent_writable = access(facts.scratch.c_str(), W_OK | X_OK) == 0;
    std::ifstream pid_file(layout.data + "/postmaster.pid");
    long pid = 0;
    if (pid_file >> pid && pid > 0) {
      facts.scratch_server_pid = pid;
      facts.scratch_server_alive = kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
    }
    facts.scratch_data_bytes = tree_bytes(layout.data);
  } else {
    facts.scratch_parent_writable = access(nearest_existing(facts.scratch).c_str(), W_OK | X_OK) == 0;
  }
  struct statvfs vfs {};
  if (statvfs(nearest_existing(facts.scratch).c_str(), &vfs) == 0)
    facts.free_bytes_for_scratch = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;

  if (!job.to_stdout()) {
    facts.output = canonical(job.output);
    const std::string dir = fs::path(facts.output).parent_path().string();
    facts.output_dir_is_dir = fs::is_directory(dir, ec);
    facts.output_dir_writable = facts.output_dir_is_dir && access(dir.c_str(), W_OK | X_OK) == 0;
    facts.output_exists = fs::exists(facts.output, ec);
  }
  facts.port_in_use = tcp_port_in_use(job.port);
  return facts;
}

std::vector<Error> check_local_facts(const LocalFacts& facts, const DumpJob& job) {
  std::vector<Error> errors;
  const auto env = [&](std::string message, std::string hint) {
    errors.push_back(make_error(ErrorKind::environment, std::move(message), std::move(hint)));
  };
  const auto usage = [&](std::string message, std::string hint) {
    errors.push_back(make_error(ErrorKind::usage, std::move(message), std::move(hint)));
  };

  if (facts.running_as_root)
    env("the agent is running as root, and PostgreSQL refuses to run as root",
        "run it as the database's OS user, e.g. `runuser -u postgres -- agent dump ...`");
  if (!facts.bindir_has_programs)
    env("postgres and pg_dump are not both executable in " + job.config.postgres.bindir,
        "set postgres.bindir to the PostgreSQL binaries of the cluster's major version");

  // The scratch directory must never overlap anything live.
  const auto overlap = [&](const std::string& live, const std::string& what) {
    if (path_within(facts.scratch, live))
      usage("scratch path " + facts.scratch + " is or lies inside the " + what + " " + live,
            "choose a --scratch directory outside the live cluster, e.g. /pgdata/restore");
    else if (path_within(live, facts.scratch))
      usage("scratch path " + facts.scratch + " contains the " + what + " " + live,
            "choose a --scratch directory that holds nothing of the live cluster");
  };
  overlap(facts.live_data, "live data directory");
  for (const auto& tablespace : facts.tablespaces) overlap(tablespace.path, "live tablespace");

  if (facts.scratch_exists && !facts.scratch_is_dir)
    usage("scratch path " + facts.scratch + " exists and is not a directory",
          "choose a directory for --scratch");
  else if (facts.scratch_exists && !facts.scratch_empty && !facts.scratch_has_marker)
    usage("scratch directory " + facts.scratch + " is not empty and was not created by agent",
          "a restore with --delta would delete its files; choose an empty or agent-made directory");
  if (!facts.scratch_parent_writable)
    env("cannot write to " + (facts.scratch_exists ? facts.scratch : "the parent of " + facts.scratch),
        "run as the owner of the scratch location or fix its permissions");
  if (facts.scratch_server_pid && facts.scratch_server_alive)
    env("a PostgreSQL server (pid " + std::to_string(*facts.scratch_server_pid) +
            ") is running on the scratch directory " + facts.scratch +
            "/data, and this agent did not start it",
        "stop it (pg_ctl -D " + facts.scratch + "/data stop) or choose another --scratch");

  const std::size_t socket_length =
      ScratchLayout::under(facts.scratch).run.size() + std::string("/.s.PGSQL.65535").size();
  if (socket_length >= 100)
    usage("scratch path " + facts.scratch + " is too long for a Unix socket path",
          "choose a --scratch path shorter than 70 characters");

  if (job.port == job.config.postgres.port)
    usage("port " + std::to_string(job.port) + " is the live server's port",
          "choose another --port (the default is 5533)");
  else if (facts.port_in_use)
    env("port " + std::to_string(job.port) + " is already in use on this host",
        "choose a free --port, or stop what listens on it");

  if (!job.to_stdout()) {
    const std::string dir = std::filesystem::path(facts.output).parent_path().string();
    if (!facts.output_dir_is_dir)
      env("output directory " + dir + " does not exist", "create it, or choose another --output");
    else if (!facts.output_dir_writable)
      env("output directory " + dir + " is not writable by this user",
          "choose a writable --output location, or --output - for standard output");
    if (facts.output_exists && !job.overwrite)
      usage("output file " + facts.output + " already exists",
            "remove it, choose another --output, or pass --overwrite");
    if (path_within(facts.output, facts.scratch))
      usage("output file " + facts.output + " lies inside the scratch directory",
            "the next restore would delete it; write the dump elsewhere");
    if (path_within(facts.output, facts.live_data))
      usage("output file " + facts.output + " lies inside the live data directory",
            "write the dump outside the live cluster");
  }
  return errors;
}

Result<BackupRecord> check_against_repository(const StanzaInfo& stanza, const DumpJob& job,
                                              const LocalFacts& facts,
                                              std::chrono::system_clock::time_point now) {
  const BackupRecord* oldest = oldest_backup(stanza);
  if (oldest == nullptr)
    return make_error(ErrorKind::target_window,
                      "stanza '" + stanza.name + "' has no usable backup" +
                          (stanza.status_message.empty() ? "" : " (" + stanza.status_message + ")"),
                      "take a backup first: pgbackrest --stanza=" + stanza.name + " backup");
  // Compared in microseconds: system_clock's nanoseconds overflow past the year 2262.
  const SysMicros now_micros = std::chrono::floor<Microseconds>(now);
  const std::string window = "the recoverable window is from " + epoch_text(oldest->stop_epoch + 1) +
                             " to now (" + format_iso_utc(now_micros) + ")";
  const auto target = job.target.instant;
  if (target > now_micros)
    return make_error(ErrorKind::target_window, "target " + format_iso_utc(target) + " is in the future",
                      window + "; choose a time inside it");
  const BackupRecord* chosen = backup_for_target(stanza, target, job.backup_set);
  if (chosen == nullptr) {
    if (job.backup_set) {
      const bool exists = std::any_of(stanza.backups.begin(), stanza.backups.end(),
                                      [&](const BackupRecord& b) { return b.label == *job.backup_set; });
      if (!exists)
        return make_error(ErrorKind::usage, "backup set " + *job.backup_set + " is not in the repository",
                          "list the sets with `pgbackrest info`, or leave --set out");
      return make_error(
          ErrorKind::target_window,
          "target " + format_iso_utc(target) + " is before the end of backup set " + *job.backup_set,
          "choose a later target or an older --set");
    }
    return make_error(ErrorKind::target_window,
                      "target " + format_iso_utc(target) + " is before the oldest backup finished",
                      window + "; choose a time inside it");
  }
  const std::uint64_t needed = chosen->database_bytes;
  const std::uint64_t available = facts.free_bytes_for_scratch + facts.scratch_data_bytes;
  if (needed > available)
    return make_error(ErrorKind::environment,
                      "not enough disk for the restore: backup " + chosen->label + " restores " +
                          human_bytes(needed) + " but " + facts.scratch + " has " + human_bytes(available) +
                          " available",
                      "free space there, or choose a --scratch on a larger volume");
  return *chosen;
}

}  // namespace agent
