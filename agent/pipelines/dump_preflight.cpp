#include "pipelines/dump_preflight.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

// Empty, or the fresh root of a volume of its own mounted there: nothing but lost+found.
bool holds_nothing_of_its_own(const std::string& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename() != "lost+found") return false;
  return !ec;
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

// The filesystems of the scratch directory, the output and every live path, by device.
class DiskFactsBuilder {
 public:
  // The index of the filesystem holding `path` (or, while it does not exist, its nearest
  // existing parent), -1 if it cannot be read.
  int add(const std::string& path) {
    const std::string existing = nearest_existing(path);
    struct stat st {};
    if (stat(existing.c_str(), &st) != 0) return -1;
    const auto device = static_cast<std::uint64_t>(st.st_dev);
    for (std::size_t i = 0; i < disk.filesystems.size(); ++i)
      if (disk.filesystems[i].device == device) return static_cast<int>(i);
    FilesystemFacts filesystem;
    filesystem.device = device;
    filesystem.path = existing;
    struct statvfs vfs {};
    if (statvfs(existing.c_str(), &vfs) == 0) {
      filesystem.size_bytes = static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize;
      filesystem.free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    }
    disk.filesystems.push_back(std::move(filesystem));
    return static_cast<int>(disk.filesystems.size() - 1);
  }
  // A live path that does not exist uses no filesystem.
  void add_live(const std::string& path, const std::string& use) {
    std::error_code ec;
    if (path.empty() || !fs::exists(path, ec)) return;
    const int index = add(path);
    if (index < 0) return;
    auto& uses = disk.filesystems[static_cast<std::size_t>(index)].live_uses;
    if (std::find(uses.begin(), uses.end(), use) == uses.end()) uses.push_back(use);
  }
  DiskFacts disk;
};

// The live cluster's WAL segment size: the size of a segment in pg_wal (16 MiB by default).
std::uint64_t wal_segment_size(const std::string& wal_dir) {
  std::error_code ec;
  for (fs::directory_iterator it(wal_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code size_ec;
    if (name.size() != 24 || name.find_first_not_of("0123456789ABCDEF") != std::string::npos ||
        !it->is_regular_file(size_ec))
      continue;
    const auto size = it->file_size(size_ec);
    if (!size_ec && size >= 1024 * 1024 && (size & (size - 1)) == 0) return size;
  }
  return 16 * 1024 * 1024;
}

// The byte position where a WAL segment file starts (timeline ignored: positions only grow).
std::optional<std::uint64_t> wal_position(const std::string& segment, std::uint64_t segment_bytes) {
  if (segment.size() < 24 || segment.find_first_not_of("0123456789ABCDEF") < 24) return std::nullopt;
  const std::uint64_t log = std::stoull(segment.substr(8, 8), nullptr, 16);
  const std::uint64_t seg = std::stoull(segment.substr(16, 8), nullptr, 16);
  return (log << 32) + seg * segment_bytes;
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
    facts.scratch_empty = facts.scratch_is_dir && holds_nothing_of_its_own(facts.scratch);
    const auto layout = ScratchLayout::under(facts.scratch);
    facts.scratch_has_marker = fs::exists(layout.marker, ec);
    facts.scratch_parent_writable = access(facts.scratch.c_str(), W_OK | X_OK) == 0;
    std::ifstream pid_file(layout.data + "/postmaster.pid");
    long pid = 0;
    if (pid_file >> pid && pid > 0) {
      facts.scratch_server_pid = pid;
      facts.scratch_server_alive = kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
    }
    facts.scratch_data_bytes = tree_bytes(layout.data) + tree_bytes(layout.tablespaces);
  } else {
    facts.scratch_parent_writable = access(nearest_existing(facts.scratch).c_str(), W_OK | X_OK) == 0;
  }

  if (!job.to_stdout()) {
    facts.output = canonical(job.output);
    const std::string dir = fs::path(facts.output).parent_path().string();
    facts.output_dir_is_dir = fs::is_directory(dir, ec);
    facts.output_dir_writable = facts.output_dir_is_dir && access(dir.c_str(), W_OK | X_OK) == 0;
    facts.output_exists = fs::exists(facts.output, ec);
    for (const auto& path : {facts.output, facts.output + ".partial", facts.output + ".manifest.json"}) {
      const auto status = fs::status(path, ec);
      if (ec || !fs::exists(status) || fs::is_regular_file(status)) continue;
      facts.output_paths_in_the_way.push_back(
          path + (fs::is_directory(status) ? " is a directory" : " is not a regular file"));
    }
  }
  facts.port_in_use = tcp_port_in_use(job.port);

  DiskFactsBuilder disk;
  disk.disk.scratch = disk.add(facts.scratch);
  if (!job.to_stdout()) disk.disk.output = disk.add(fs::path(facts.output).parent_path().string());
  disk.add_live(facts.live_data, "live data directory " + facts.live_data);
  const std::string wal_link = facts.live_data + "/pg_wal";
  const std::string wal_dir = canonical(wal_link);
  if (fs::is_symlink(wal_link, ec)) disk.add_live(wal_dir, "live WAL directory " + wal_dir);
  for (const auto& tablespace : facts.tablespaces)
    disk.add_live(tablespace.path, "live tablespace " + tablespace.oid + " " + tablespace.path);
  std::size_t start = 0;
  const std::string& extra = job.config.disk.live_paths;
  while (!extra.empty() && start <= extra.size()) {
    const auto comma = std::min(extra.find(',', start), extra.size());
    const std::string path = canonical(extra.substr(start, comma - start));
    disk.add_live(path, "live path " + path);
    start = comma + 1;
  }
  disk.disk.wal_segment_bytes = wal_segment_size(wal_dir);
  facts.disk = std::move(disk.disk);
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
    for (const auto& in_the_way : facts.output_paths_in_the_way)
      usage(in_the_way,
            "choose another --output (a file name; the dump is written to OUTPUT.partial, renamed to OUTPUT, "
            "with OUTPUT.manifest.json beside it), or --output - for standard output");
    const bool output_in_the_way =
        std::any_of(facts.output_paths_in_the_way.begin(), facts.output_paths_in_the_way.end(),
                    [&](const std::string& s) { return s.rfind(facts.output + " is ", 0) == 0; });
    if (facts.output_exists && !job.overwrite && !output_in_the_way)
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
  // Where pgBackRest will look: --repo's repository, else every one it can read.
  const auto repos = repositories(stanza);
  StanzaInfo scope = stanza;
  std::string where = "the repository";
  if (job.repo > 0) {
    const auto it =
        std::find_if(repos.begin(), repos.end(), [&](const RepoStatus& r) { return r.key == job.repo; });
    if (it == repos.end())
      return make_error(ErrorKind::usage,
                        "--repo " + std::to_string(job.repo) + ": stanza '" + stanza.name + "' has no repo" +
                            std::to_string(job.repo) + " (pgbackrest info lists " + repository_names(repos) +
                            ")",
                        "choose one of those, or leave --repo out to let pgBackRest choose");
    if (!it->readable())
      return make_error(ErrorKind::external_tool,
                        "repo" + std::to_string(job.repo) + " cannot be read (status " +
                            std::to_string(it->status_code) + ": " + it->status_message + ")",
                        "fix that repository, or leave --repo out: pgBackRest then restores from the first "
                        "repository it can read that holds a backup set for the target");
    scope = repository_view(stanza, job.repo);
    where = "repo" + std::to_string(job.repo);
  } else if (repos.size() > 1) {
    std::erase_if(scope.backups, [&](const BackupRecord& b) {
      return std::none_of(repos.begin(), repos.end(),
                          [&](const RepoStatus& r) { return r.key == repo_of(b) && r.readable(); });
    });
    where = "any repository that can be read";
  }
  const BackupRecord* oldest = oldest_backup(scope);
  if (oldest == nullptr)
    return make_error(ErrorKind::target_window,
                      "stanza '" + stanza.name + "' has no usable backup in " + where +
                          (scope.status_message.empty() ? "" : " (" + scope.status_message + ")"),
                      "take a backup first: pgbackrest --stanza=" + stanza.name + " backup");
  // Compared in microseconds: system_clock's nanoseconds overflow past the year 2262.
  const SysMicros now_micros = std::chrono::floor<Microseconds>(now);
  const std::string window = "the recoverable window is from " + epoch_text(oldest->stop_epoch + 1) +
                             " to now (" + format_iso_utc(now_micros) + ")" +
                             (job.repo > 0 ? " in " + where : "");
  const auto target = job.target.instant;
  if (target > now_micros)
    return make_error(ErrorKind::target_window, "target " + format_iso_utc(target) + " is in the future",
                      window + "; choose a time inside it, or --target latest for everything archived");
  const RepoChoice choice = choose_backup(stanza, target, job.backup_set, job.repo);
  if (choice.backup == nullptr) {
    if (job.backup_set) {
      const bool exists = std::any_of(scope.backups.begin(), scope.backups.end(),
                                      [&](const BackupRecord& b) { return b.label == *job.backup_set; });
      if (!exists)
        return make_error(ErrorKind::usage, "backup set " + *job.backup_set + " is not in " + where,
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
  BackupRecord chosen = *choice.backup;
  chosen.repo = choice.repo;
  // The WAL to replay comes from the same repository as the set.
  const auto estimate =
      estimate_disk_use(repository_view(stanza, choice.repo), chosen, job, facts.disk.wal_segment_bytes);
  if (auto errors = check_disk(facts, job, estimate, chosen.label); !errors.empty()) {
    if (errors.size() == 1) return errors.front();
    std::string message = "not enough disk, " + std::to_string(errors.size()) + " problems:";
    for (const auto& e : errors) message += "\n  - " + e.message;
    return make_error(ErrorKind::environment, message, errors.front().hint);
  }
  return chosen;
}

std::optional<Error> check_database_name(const std::string& database,
                                         const std::vector<BackupDatabase>& in_backup,
                                         const std::optional<std::vector<std::string>>& live_databases,
                                         const std::string& backup_label) {
  if (database == "template0" || database == "template1") return std::nullopt;
  const auto named = [&](const std::string& name) { return name == database; };
  if (std::any_of(in_backup.begin(), in_backup.end(), [&](const BackupDatabase& d) { return named(d.name); }))
    return std::nullopt;
  // Not in the set: perhaps created after it. Only the live server can say; when it does not
  // answer (it may be the reason for the dump), the copy tells in `verify`.
  if (!live_databases || std::any_of(live_databases->begin(), live_databases->end(), named))
    return std::nullopt;
  const auto folded = [](std::string text) {
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  };
  std::string names;
  std::string same_but_case;
  for (const auto& d : in_backup) {
    names += (names.empty() ? "" : ", ") + d.name;
    if (folded(d.name) == folded(database)) same_but_case = d.name;
  }
  // Databases made after the set: the live server has them, the copy may too.
  std::string made_since;
  for (const auto& name : *live_databases) {
    if (std::any_of(in_backup.begin(), in_backup.end(),
                    [&](const BackupDatabase& d) { return d.name == name; }))
      continue;
    made_since += (made_since.empty() ? "" : ", ") + name;
    if (same_but_case.empty() && folded(name) == folded(database)) same_but_case = name;
  }
  std::string hint = same_but_case.empty()
                         ? "choose --database from: " + names
                         : "names are case-sensitive: did you mean --database " + same_but_case + "?";
  if (same_but_case.empty() && !made_since.empty())
    hint += " (or, made after backup set " + backup_label + ", " + made_since + ")";
  return make_error(ErrorKind::usage,
                    "database '" + database + "' is not in backup set " + backup_label + " (it holds " +
                        (names.empty() ? std::string("no database pgBackRest lists") : names) +
                        ") and the live server has no such database either",
                    hint + "; nothing was restored");
}

DiskEstimate estimate_disk_use(const StanzaInfo& stanza, const BackupRecord& chosen, const DumpJob& job,
                               std::uint64_t wal_segment_bytes) {
  DiskEstimate estimate;
  estimate.restore = chosen.database_bytes;
  // The WAL replayed up to the target ends before the end of the first backup that finished
  // after the target; without one, before the newest archived segment.
  const auto target_seconds =
      std::chrono::floor<std::chrono::seconds>(job.target.instant).time_since_epoch().count();
  const auto wal_of = [&](const BackupRecord& backup) {
    const auto found = stanza.backup_wal.find(backup.label);
    return found == stanza.backup_wal.end() ? BackupWalRange{} : found->second;
  };
  const BackupRecord* bound = nullptr;
  for (const auto& backup : stanza.backups)
    if (!backup.error && backup.stop_epoch > target_seconds && !wal_of(backup).stop.empty() &&
        (bound == nullptr || backup.stop_epoch < bound->stop_epoch))
      bound = &backup;
  const auto chosen_wal = wal_of(chosen);
  const auto from =
      wal_position(chosen_wal.start.empty() ? chosen_wal.stop : chosen_wal.start, wal_segment_bytes);
  const auto to =
      wal_position(bound != nullptr ? wal_of(*bound).stop : stanza.archive_max, wal_segment_bytes);
  if (from && to && *to >= *from) estimate.wal = *to - *from + wal_segment_bytes;
  // Rows of the largest tables that wait for their turn: the connections run ahead of the one
  // writer, so at most all but one connection's share of them (the whole copy, at most).
  const auto connections = static_cast<std::uint64_t>(std::max(job.config.dump.connections, 1));
  const auto split_bytes = static_cast<std::uint64_t>(job.config.dump.split_table_mb) * 1024 * 1024;
  if (connections > 1 && estimate.restore >= split_bytes)
    estimate.spill = estimate.restore / connections * (connections - 1);
  if (!job.to_stdout()) estimate.dump = estimate.restore;
  return estimate;
}

std::uint64_t live_reserve_bytes(const FilesystemFacts& filesystem, const AgentConfig& config) {
  if (filesystem.live_uses.empty()) return 0;
  const std::uint64_t share =
      filesystem.size_bytes / 100 * static_cast<std::uint64_t>(std::max(config.disk.reserve_percent, 0));
  const std::uint64_t floor = static_cast<std::uint64_t>(std::max(config.disk.reserve_mb, 0)) * 1024 * 1024;
  return std::max(share, floor);
}

namespace {

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string text;
  for (const auto& part : parts) text += (text.empty() ? "" : separator) + part;
  return text;
}

// The filesystems the job writes to, each once.
std::vector<int> job_filesystems(const LocalFacts& facts) {
  std::vector<int> indexes;
  for (const int index : {facts.disk.scratch, facts.disk.output})
    if (index >= 0 && static_cast<std::size_t>(index) < facts.disk.filesystems.size() &&
        std::find(indexes.begin(), indexes.end(), index) == indexes.end())
      indexes.push_back(index);
  return indexes;
}

// "the scratch directory and the dump, and the live data directory /pgdata/pg15"
std::string describe_filesystem(const LocalFacts& facts, int index) {
  std::vector<std::string> job_uses;
  if (facts.disk.scratch == index) job_uses.push_back("the scratch directory");
  if (facts.disk.output == index) job_uses.push_back("the dump");
  const auto& live = facts.disk.filesystems[static_cast<std::size_t>(index)].live_uses;
  return join(job_uses, " and ") + (live.empty() ? "" : ", and the " + join(live, ", the "));
}

}  // namespace

std::vector<Error> check_disk(const LocalFacts& facts, const DumpJob& job, const DiskEstimate& estimate,
                              const std::string& backup_label) {
  std::vector<Error> errors;
  const auto& filesystems = facts.disk.filesystems;
  for (const int index : job_filesystems(facts)) {
    const auto& filesystem = filesystems[static_cast<std::size_t>(index)];
    std::uint64_t needed = 0;
    std::uint64_t available = filesystem.free_bytes;
    std::vector<std::string> parts;
    const auto part = [&](std::uint64_t bytes, const std::string& what) {
      if (bytes == 0) return;
      needed += bytes;
      parts.push_back(human_bytes(bytes) + " " + what);
    };
    if (index == facts.disk.scratch) {
      part(estimate.restore, "to restore backup " + backup_label);
      part(estimate.wal, "of WAL to replay after it (at most)");
      part(estimate.spill, "of rows waiting for their turn in the parallel copy (at most)");
      available += facts.scratch_data_bytes;  // the last copy, which --delta reuses
    }
    if (index == facts.disk.output) part(estimate.dump, "for the dump (estimated as the restored size)");
    const std::uint64_t reserve = live_reserve_bytes(filesystem, job.config);
    const std::string needs = human_bytes(needed) + " (" + join(parts, ", ") + ")";
    const std::string has = human_bytes(available) + " available" +
                            (index == facts.disk.scratch && facts.scratch_data_bytes > 0
                                 ? " (counting the last copy, which the restore reuses)"
                                 : "");
    if (reserve == 0) {
      if (needed <= available) continue;
      const bool restore_there = index == facts.disk.scratch;
      errors.push_back(make_error(ErrorKind::environment,
                                  std::string("not enough disk for the ") +
                                      (restore_there ? "restore" : "dump") + " on " + filesystem.path + " (" +
                                      describe_filesystem(facts, index) + "): it needs " + needs +
                                      " but has " + has,
                                  restore_there ? "free space there, or choose a --scratch on a larger volume"
                                                : "free space there, or write the dump elsewhere or to "
                                                  "standard output (--output -)"));
      continue;
    }
    if (needed <= available && available - needed >= reserve) continue;
    std::vector<std::string> hints;
    if (index == facts.disk.scratch)
      hints.push_back(
          "put restore.scratch on a volume of its own (PGO: spec.instances[].volumes.temp; README: Deploy)");
    if (index == facts.disk.output)
      hints.push_back("write the dump elsewhere or to standard output (--output -)");
    hints.push_back("free space there, or lower disk.reserve_percent / disk.reserve_mb");
    errors.push_back(make_error(ErrorKind::environment,
                                "the dump would cut into the " + human_bytes(reserve) +
                                    " kept free for the live cluster on " + filesystem.path +
                                    ", which holds " + describe_filesystem(facts, index) + ": it needs " +
                                    needs + " of the " + has + ", which would leave " +
                                    human_bytes(needed < available ? available - needed : 0),
                                "nothing was written; " + join(hints, ", or ")));
  }
  return errors;
}

std::vector<WatchedFilesystem> filesystems_to_watch(const LocalFacts& facts, const DumpJob& job) {
  std::vector<WatchedFilesystem> watched;
  for (const int index : job_filesystems(facts)) {
    const auto& filesystem = facts.disk.filesystems[static_cast<std::size_t>(index)];
    const auto reserve = live_reserve_bytes(filesystem, job.config);
    if (reserve == 0) continue;
    watched.push_back(
        WatchedFilesystem{filesystem.device, filesystem.path, describe_filesystem(facts, index), reserve});
  }
  return watched;
}

ScratchKeeping decide_scratch_keeping(const LocalFacts& facts, const std::string& setting,
                                      bool scratch_below_reserve) {
  if (scratch_below_reserve)
    return {false, "free space on its filesystem fell below the reserve for the live cluster"};
  if (setting == "never") return {false, "restore.keep_scratch: never"};
  if (setting == "always") return {true, "restore.keep_scratch: always"};
  const int index = facts.disk.scratch;
  if (index < 0 || static_cast<std::size_t>(index) >= facts.disk.filesystems.size())
    return {false, "its filesystem could not be read (restore.keep_scratch: auto)"};
  const auto& live = facts.disk.filesystems[static_cast<std::size_t>(index)].live_uses;
  if (live.empty())
    return {true, "restore.keep_scratch: auto, on a filesystem the live cluster does not use"};
  return {false, "restore.keep_scratch: auto, and it shares a filesystem with the " + live.front() +
                     " (set restore.keep_scratch: always to keep it, or put restore.scratch on a volume of "
                     "its own)"};
}

}  // namespace agent
