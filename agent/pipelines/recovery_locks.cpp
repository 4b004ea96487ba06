#include "pipelines/recovery_locks.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <set>

#include "core/log.hpp"

namespace agent {

const char* const kRecoveryLocksQuery =
    "SELECT l.database::text, l.relation::text,"
    " pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)"
    " FROM pg_catalog.pg_locks l"
    // A relation the locking transaction created is not visible at the target: pg_dump does
    // not see it, and does not wait for it.
    " JOIN pg_catalog.pg_class c ON c.oid = l.relation"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE l.locktype = 'relation' AND l.granted AND l.mode = 'AccessExclusiveLock'"
    " AND l.pid <> pg_catalog.pg_backend_pid()"
    " AND l.database IN (0, (SELECT oid FROM pg_catalog.pg_database"
    " WHERE datname = pg_catalog.current_database()))"
    " ORDER BY 3";

namespace {

template <typename T>
std::optional<T> number(std::string_view text, int base = 10) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::string_view field_after(std::string_view line, std::string_view key) {
  const auto at = line.find(key);
  if (at == std::string_view::npos) return {};
  auto rest = line.substr(at + key.size());
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  const auto end = rest.find_first_of(", ");
  return rest.substr(0, end);
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// "xid 783 db 16385 rel 16386 xid ..." of a Standby LOCK record.
std::vector<WalLock> parse_locks(std::string_view text) {
  std::vector<WalLock> locks;
  std::vector<std::string_view> words;
  while (!text.empty()) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    const auto end = text.find(' ');
    if (!text.empty()) words.push_back(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end);
  }
  for (std::size_t i = 0; i + 5 < words.size(); i += 6) {
    if (words[i] != "xid" || words[i + 2] != "db" || words[i + 4] != "rel") break;
    const auto xid = number<std::uint32_t>(words[i + 1]);
    const auto db = number<std::uint32_t>(words[i + 3]);
    const auto rel = number<std::uint32_t>(words[i + 5]);
    if (!xid || !db || !rel) break;
    locks.push_back(WalLock{*xid, *db, *rel});
  }
  return locks;
}

bool newer_or_same(std::uint32_t a, std::uint32_t b) {  // a >= b, modulo 2^32
  return static_cast<std::int32_t>(a - b) >= 0;
}

}  // namespace

Result<std::vector<RecoveryLock>> parse_recovery_locks(const std::vector<std::vector<std::string>>& rows) {
  std::vector<RecoveryLock> locks;
  for (const auto& row : rows) {
    if (row.size() != 3) return make_error(ErrorKind::internal, "unexpected answer to the lock query");
    const auto database = number<std::uint32_t>(row[0]);
    const auto relation = number<std::uint32_t>(row[1]);
    if (!database || !relation) return make_error(ErrorKind::internal, "unexpected answer to the lock query");
    locks.push_back(RecoveryLock{*database, *relation, row[2]});
  }
  return locks;
}

std::optional<std::uint64_t> parse_lsn(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto high = number<std::uint32_t>(text.substr(0, slash), 16);
  const auto low = number<std::uint32_t>(text.substr(slash + 1), 16);
  if (!high || !low) return std::nullopt;
  return (std::uint64_t{*high} << 32) | *low;
}

std::string format_lsn(std::uint64_t lsn) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%X/%X", static_cast<unsigned>(lsn >> 32),
                static_cast<unsigned>(lsn & 0xFFFFFFFFu));
  return buffer;
}

std::optional<std::uint64_t> segment_start(std::string_view name, std::uint64_t segment_bytes) {
  if (name.size() != 24 || segment_bytes == 0 || (std::uint64_t{1} << 32) % segment_bytes != 0)
    return std::nullopt;
  const auto log = number<std::uint32_t>(name.substr(8, 8), 16);
  const auto seg = number<std::uint32_t>(name.substr(16, 8), 16);
  if (!log || !seg) return std::nullopt;
  return (std::uint64_t{*log} << 32) + std::uint64_t{*seg} * segment_bytes;
}

std::optional<std::string> previous_segment(std::string_view name, std::uint64_t segment_bytes) {
  if (name.size() != 24 || segment_bytes == 0 || (std::uint64_t{1} << 32) % segment_bytes != 0)
    return std::nullopt;
  const auto timeline = number<std::uint32_t>(name.substr(0, 8), 16);
  auto log = number<std::uint32_t>(name.substr(8, 8), 16);
  auto seg = number<std::uint32_t>(name.substr(16, 8), 16);
  if (!timeline || !log || !seg) return std::nullopt;
  if (*seg > 0) {
    --*seg;
  } else if (*log > 0) {
    --*log;
    seg = static_cast<std::uint32_t>((std::uint64_t{1} << 32) / segment_bytes - 1);
  } else {
    return std::nullopt;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%08X%08X%08X", *timeline, *log, *seg);
  return std::string(buffer);
}

std::vector<WalRecord> parse_waldump(std::string_view output) {
  std::vector<WalRecord> records;
  while (!output.empty()) {
    const auto newline = output.find('\n');
    const auto line = output.substr(0, newline);
    output = newline == std::string_view::npos ? std::string_view{} : output.substr(newline + 1);
    if (!starts_with(line, "rmgr: ")) continue;
    const auto desc_at = line.find("desc: ");
    const auto lsn = parse_lsn(field_after(line, "lsn: "));
    if (desc_at == std::string_view::npos || !lsn) continue;
    const auto desc = line.substr(desc_at + 6);
    const auto rmgr = field_after(line, "rmgr: ");
    WalRecord record;
    record.lsn = *lsn;
    record.xid = number<std::uint32_t>(field_after(line, "tx: ")).value_or(0);
    if (rmgr == "Standby" && starts_with(desc, "LOCK ")) {
      record.kind = WalRecord::Kind::lock;
      record.locks = parse_locks(desc.substr(5));
      if (record.locks.empty()) continue;
    } else if (rmgr == "Standby" && starts_with(desc, "RUNNING_XACTS ")) {
      record.kind = WalRecord::Kind::running_xacts;
      const auto next = number<std::uint32_t>(field_after(desc, "nextXid "));
      if (!next) continue;
      record.xid = *next;
    } else if (rmgr == "Transaction" && (starts_with(desc, "COMMIT") || starts_with(desc, "ABORT"))) {
      record.kind = starts_with(desc, "COMMIT") ? WalRecord::Kind::commit : WalRecord::Kind::abort;
      auto rest = desc.substr(desc.find(' ') == std::string_view::npos ? desc.size() : desc.find(' ') + 1);
      // COMMIT_PREPARED and ABORT_PREPARED name the prepared transaction first: "748: ".
      if (const auto colon = rest.find(": ");
          colon != std::string_view::npos && number<std::uint32_t>(rest.substr(0, colon)))
        rest = rest.substr(colon + 2);
      rest = rest.substr(0, rest.find(';'));
      while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
      if (rest.size() < 19 || !std::isdigit(static_cast<unsigned char>(rest.front()))) continue;
      record.time = std::string(rest);
    } else {
      continue;
    }
    records.push_back(std::move(record));
  }
  return records;
}

std::optional<LockOrigin> find_lock_origin(const std::vector<WalRecord>& records,
                                           const std::vector<RecoveryLock>& locks, std::uint64_t stop_lsn) {
  std::optional<LockOrigin> first;
  for (const auto& lock : locks) {
    const auto names = [&lock](const WalLock& l) {
      return l.database == lock.database && l.relation == lock.relation;
    };
    // The transaction that holds it now: the last record naming the relation.
    std::optional<std::uint32_t> holder;
    for (const auto& r : records)
      if (r.kind == WalRecord::Kind::lock && r.lsn < stop_lsn)
        for (const auto& l : r.locks)
          if (names(l)) holder = l.xid;
    if (!holder) continue;
    // Where it took the lock: its first record of that lock.
    const WalRecord* taken = nullptr;
    for (const auto& r : records) {
      if (r.kind != WalRecord::Kind::lock || r.lsn >= stop_lsn) continue;
      if (std::any_of(r.locks.begin(), r.locks.end(),
                      [&](const WalLock& l) { return names(l) && l.xid == *holder; })) {
        taken = &r;
        break;
      }
    }
    LockOrigin origin;
    origin.lock = lock;
    origin.xid = *holder;
    origin.lock_lsn = taken->lsn;
    for (const auto& r : records) {
      if (r.lsn >= taken->lsn) break;
      // A snapshot from before the transaction had its id: this is where it took the lock.
      if (r.kind == WalRecord::Kind::running_xacts && newer_or_same(*holder, r.xid))
        origin.began_in_records = true;
      if (r.kind == WalRecord::Kind::commit || r.kind == WalRecord::Kind::abort)
        origin.commit_before = r.time;
    }
    if (!first || origin.lock_lsn < first->lock_lsn) first = origin;
  }
  return first;
}

std::optional<SysMicros> target_before(const std::string& commit_time) {
  auto parsed = parse_target_time(commit_time);
  if (!parsed) return std::nullopt;
  return parsed->instant - Microseconds{1};
}

Result<std::optional<LockOrigin>> scan_for_lock_origin(ProcessRunner& runner, const CancelToken& cancel,
                                                       const WalScanSettings& settings,
                                                       const std::vector<RecoveryLock>& locks,
                                                       std::uint64_t stop_lsn,
                                                       const std::deque<std::string>& segments) {
  namespace fs = std::filesystem;
  auto logger = log::get("dump");
  struct Cleanup {
    std::string directory;
    ~Cleanup() {
      std::error_code ec;
      for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec))
        fs::remove(it->path(), ec);
    }
  } cleanup{settings.directory};
  std::vector<WalRecord> records;
  std::optional<LockOrigin> origin;
  // The segments the copy replayed, newest first, then those before them: the transaction may
  // have taken its lock before the backup the copy was restored from ended, and the commit
  // before it may be older still.
  std::deque<std::string> pending(segments.begin(), segments.end());
  std::set<std::string> seen;
  std::string earliest;
  std::string newer;  // the file of the segment read before, which follows this one
  std::uint64_t bytes = 0;
  for (std::size_t read = 0; read < settings.max_segments;) {
    std::string name;
    if (!pending.empty()) {
      name = pending.back();
      pending.pop_back();
    } else if (auto previous = previous_segment(earliest, bytes)) {
      name = *previous;
    } else {
      break;
    }
    if (!seen.insert(name).second) continue;  // the server restores some segments twice
    ++read;
    earliest = name;
    const std::string path = settings.directory + "/" + name;
    ProcessSpec fetch;
    fetch.argv = scratch_archive_get_argv(settings.pgbackrest, settings.archive_get, name, path);
    fetch.tag = "pgbackrest";
    fetch.timeout = settings.fetch_timeout;
    auto fetched = runner.run(fetch, cancel);
    if (!fetched) return fetched.error();
    if (cancel.cancelled()) return make_error(ErrorKind::interrupted, "interrupted while reading the WAL");
    if (!fetched->succeeded()) {
      logger->info("could not fetch WAL segment {} to look for the locking transaction", name);
      break;
    }
    std::error_code ec;
    bytes = fs::file_size(path, ec);
    const auto start = ec ? std::nullopt : segment_start(name, bytes);
    if (!start) break;
    const std::uint64_t end = std::min<std::uint64_t>(*start + bytes, stop_lsn);
    if (end <= *start) continue;
    ProcessSpec dump;
    dump.argv = {
        settings.bindir + "/pg_waldump", "--path=" + settings.directory,
        "--timeline=" +
            std::to_string(number<std::uint32_t>(std::string_view(name).substr(0, 8), 16).value_or(1)),
        "--start=" + format_lsn(*start), "--end=" + format_lsn(end)};
    dump.tag = "pg_waldump";
    dump.env = {{"TZ", "UTC"}};
    dump.stdout_mode = StdoutMode::capture;
    // "first record is after ...", and "error: error in WAL record" where the WAL ends: expected.
    dump.level_for_line = [](std::string_view) { return spdlog::level::debug; };
    dump.timeout = settings.fetch_timeout;
    auto dumped = runner.run(dump, cancel);
    if (!dumped) return dumped.error();
    if (cancel.cancelled()) return make_error(ErrorKind::interrupted, "interrupted while reading the WAL");
    auto earlier = parse_waldump(dumped->stdout_text);
    records.insert(records.begin(), earlier.begin(), earlier.end());
    origin = find_lock_origin(records, locks, stop_lsn);
    if (origin && origin->complete()) break;
    // The segment after this one was needed only for a record that crosses into it.
    if (!newer.empty()) fs::remove(newer, ec);
    newer = path;
  }
  return origin;
}

Error recovery_lock_error(const std::vector<RecoveryLock>& locks, const std::optional<LockOrigin>& origin,
                          SysMicros target) {
  std::string names;
  for (std::size_t i = 0; i < locks.size() && i < 5; ++i) names += (i == 0 ? "" : ", ") + locks[i].name;
  if (locks.size() > 5) names += " and " + std::to_string(locks.size() - 5) + " more";
  const std::string what = locks.size() == 1 ? "relation " + names : "relations " + names;
  std::string message = "at the target " + format_iso_utc(target) +
                        " recovery holds an ACCESS EXCLUSIVE lock on " + what + ": ";
  if (origin) {
    message += "transaction " + std::to_string(origin->xid) + " took it (on " + origin->lock.name +
               " at WAL " + format_lsn(origin->lock_lsn) + ") and was still in progress,";
  } else {
    message += "a transaction in progress at the target took it,";
  }
  message += " so pg_dump would wait for it forever on the paused copy";
  if (origin && origin->complete()) {
    if (const auto before = target_before(*origin->commit_before)) {
      const std::string proposal = format_for_pgbackrest(*before);
      return make_error(ErrorKind::target_window, message,
                        "the nearest target before transaction " + std::to_string(origin->xid) +
                            " took the lock is " + proposal + " (just before the commit at " +
                            *origin->commit_before + ", the last one before it): run again with --target '" +
                            proposal + "', or choose a time after the transaction ended");
    }
  }
  return make_error(
      ErrorKind::target_window, message,
      "choose a target before that transaction began, or after it ended; the WAL read here does "
      "not reach back to where it began");
}

}  // namespace agent
