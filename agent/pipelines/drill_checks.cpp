#include "pipelines/drill_checks.hpp"

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>

#include "core/log.hpp"

namespace agent {

const char* const kDrillDatabasesQuery =
    "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname";
// Tables and materialized views with storage that a copy in recovery can read: unlogged ones
// are empty in a backup and cannot be opened during recovery; an unpopulated materialized view
// has nothing to read. System catalogs are read too.
const char* const kDrillTablesQuery =
    "SELECT format('%I.%I', n.nspname, c.relname), c.oid::text FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'm') AND c.relpersistence = 'p' AND (c.relkind <> 'm' OR c.relispopulated) "
    "ORDER BY n.nspname, c.relname";
const char* const kDrillUnloggedQuery =
    "SELECT count(*)::text FROM pg_catalog.pg_class WHERE relkind IN ('r', 'm') AND relpersistence = 'u'";
const char* const kDrillAmcheckQuery =
    "SELECT quote_ident(n.nspname), e.extversion FROM pg_catalog.pg_extension e "
    "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'";
const char* const kDrillIndexesQuery =
    "SELECT format('%I.%I', n.nspname, c.relname), c.oid::text FROM pg_catalog.pg_index i "
    "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_catalog.pg_am a ON a.oid = c.relam "
    "WHERE a.amname = 'btree' AND c.relpersistence = 'p' AND i.indisvalid AND i.indisready "
    "ORDER BY n.nspname, c.relname";
const char* const kDrillChecksumVersionQuery =
    "SELECT data_page_checksum_version::text FROM pg_catalog.pg_control_init()";

bool DrillFindings::failed() const {
  return std::any_of(checks.begin(), checks.end(), [](const DrillCheck& c) { return c.result == "failed"; });
}

namespace {

using Rows = std::vector<std::vector<std::string>>;

struct Relation {
  std::string name;
  std::string oid;
};

std::vector<Relation> relations(const Rows& rows) {
  std::vector<Relation> out;
  for (const auto& row : rows)
    if (row.size() >= 2) out.push_back({row[0], row[1]});
  return out;
}

// amcheck's version as a number: "1.3" -> 103.
int version_number(const std::string& text) {
  int major = 0, minor = 0;
  char dot = 0;
  std::istringstream in(text);
  in >> major >> dot >> minor;
  return major * 100 + minor;
}

DrillCheck new_check(std::string name, std::string database, std::string result = "",
                     std::string reason = "") {
  DrillCheck check;
  check.name = std::move(name);
  check.database = std::move(database);
  check.result = std::move(result);
  check.reason = std::move(reason);
  return check;
}

void fail_object(DrillCheck& check, const std::string& object, const std::string& message) {
  ++check.failed;
  if (check.first_failure.empty()) {
    check.first_failure = object;
    check.reason = message;
  }
}

void finish(DrillCheck& check) {
  if (check.result.empty()) check.result = check.failed > 0 ? "failed" : "passed";
}

// One database's session, opened again after a failure left it in doubt.
class DatabaseSession {
 public:
  DatabaseSession(CopyConnector& connector, std::string conninfo)
      : connector_(connector), conninfo_(std::move(conninfo)) {}
  Result<CopySession*> get() {
    if (session_) return session_.get();
    auto connected = connector_.connect(conninfo_);
    if (!connected) return connected.error();
    session_ = std::move(connected.value());
    // Row-level security would hide rows silently: off, a policy makes the read fail instead.
    if (auto s = session_->execute("SET row_security = off; SET statement_timeout = 0"); !s) {
      session_.reset();
      return s.error();
    }
    return session_.get();
  }
  void reset() { session_.reset(); }

 private:
  CopyConnector& connector_;
  std::string conninfo_;
  std::unique_ptr<CopySession> session_;
};

Status interrupted(const CancelToken& cancel) {
  if (cancel.cancelled()) return make_error(ErrorKind::interrupted, "interrupted during the drill's checks");
  return {};
}

// Every table read in full through COPY: each value is fetched (TOAST too) and turned into
// text, which count(*) would not do. In text format a row is one line (newlines in values are
// escaped), so the rows are the newlines.
Status read_tables(DatabaseSession& db, const std::string& database, const std::vector<Relation>& tables,
                   const std::string& unlogged, const CancelToken& cancel, DrillFindings& findings) {
  DrillCheck check = new_check("tables", database);
  for (const auto& table : tables) {
    if (auto s = interrupted(cancel); !s) return s;
    auto session = db.get();
    if (!session) {
      fail_object(check, database + "." + table.name, session.error().message);
      continue;
    }
    std::uint64_t rows = 0;
    const auto status = (*session)->copy_out(
        "COPY (SELECT * FROM ONLY " + table.name + ") TO STDOUT",
        [&rows](const char* data, std::size_t size) {
          rows += static_cast<std::uint64_t>(std::count(data, data + size, '\n'));
          return true;
        },
        cancel);
    ++check.checked;
    if (!status) {
      if (auto s = interrupted(cancel); !s) return s;
      fail_object(check, database + "." + table.name, status.error().message);
      db.reset();
      continue;
    }
    findings.tables.push_back({database, table.name, rows});
  }
  if (!unlogged.empty() && unlogged != "0" && check.reason.empty())
    check.reason = unlogged + " unlogged table(s) not read: a backup holds none of their rows";
  finish(check);
  findings.checks.push_back(check);
  return {};
}

Status run_amcheck(DatabaseSession& db, const std::string& database, const std::vector<Relation>& tables,
                   const CancelToken& cancel, DrillFindings& findings) {
  DrillCheck indexes = new_check("amcheck-indexes", database);
  DrillCheck heap = new_check("amcheck-heap", database);
  auto session = db.get();
  if (!session) {
    indexes.result = heap.result = "failed";
    indexes.reason = heap.reason = session.error().message;
    findings.checks.push_back(indexes);
    findings.checks.push_back(heap);
    return {};
  }
  auto extension = (*session)->query(kDrillAmcheckQuery);
  if (!extension || extension->empty() || extension->front().size() < 2) {
    const std::string reason =
        extension
            ? "amcheck is not installed in database " + database +
                  " (a paused copy cannot CREATE EXTENSION: run CREATE EXTENSION amcheck on the primary)"
            : "could not read pg_extension: " + extension.error().message;
    indexes.result = heap.result = extension ? "skipped" : "failed";
    indexes.reason = heap.reason = reason;
    findings.checks.push_back(indexes);
    findings.checks.push_back(heap);
    return {};
  }
  const std::string schema = extension->front()[0];
  const std::string version = extension->front()[1];
  auto index_rows = (*session)->query(kDrillIndexesQuery);
  if (!index_rows) {
    indexes.result = "failed";
    indexes.reason = "could not list the indexes: " + index_rows.error().message;
  } else {
    for (const auto& index : relations(*index_rows)) {
      if (auto s = interrupted(cancel); !s) return s;
      auto current = db.get();
      if (!current) {
        fail_object(indexes, database + "." + index.name, current.error().message);
        continue;
      }
      ++indexes.checked;
      auto checked = (*current)->query("SELECT " + schema + ".bt_index_check(index => " + index.oid +
                                       "::pg_catalog.regclass, heapallindexed => true)");
      if (!checked) {
        if (auto s = interrupted(cancel); !s) return s;
        fail_object(indexes, database + "." + index.name, checked.error().message);
        db.reset();
      }
    }
  }
  finish(indexes);
  findings.checks.push_back(indexes);

  if (version_number(version) < 103) {
    heap.result = "skipped";
    heap.reason =
        "amcheck " + version + " has no verify_heapam (1.3, PostgreSQL 14): ALTER EXTENSION amcheck UPDATE";
  } else {
    for (const auto& table : tables) {
      if (auto s = interrupted(cancel); !s) return s;
      auto current = db.get();
      if (!current) {
        fail_object(heap, database + "." + table.name, current.error().message);
        continue;
      }
      ++heap.checked;
      auto corrupt = (*current)->query("SELECT blkno::text, coalesce(offnum::text, ''), msg FROM " + schema +
                                       ".verify_heapam(relation => " + table.oid +
                                       "::pg_catalog.regclass, check_toast => true) LIMIT 1");
      if (!corrupt) {
        if (auto s = interrupted(cancel); !s) return s;
        fail_object(heap, database + "." + table.name, corrupt.error().message);
        db.reset();
      } else if (!corrupt->empty() && corrupt->front().size() >= 3) {
        const auto& row = corrupt->front();
        fail_object(heap, database + "." + table.name,
                    "block " + row[0] + (row[1].empty() ? "" : ", item " + row[1]) + ": " + row[2]);
      }
    }
  }
  finish(heap);
  findings.checks.push_back(heap);
  return {};
}

void run_assertion(CopyConnector& connector, const CopyCheckSettings& settings,
                   const DrillAssertion& assertion, DrillFindings& findings) {
  DrillCheck check = new_check("assertion", assertion.database);
  check.checked = 1;
  const std::string object = assertion.database + ": " + assertion.sql;
  auto session = connector.connect(settings.conninfo(assertion.database));
  if (!session) {
    fail_object(check, object, session.error().message);
  } else if (auto s = (*session)->execute("SET row_security = off; SET statement_timeout = '" +
                                          std::to_string(settings.statement_timeout_seconds) + "s'");
             !s) {
    fail_object(check, object, s.error().message);
  } else {
    auto rows = (*session)->query(assertion.sql);
    if (!rows)
      fail_object(check, object, rows.error().message);
    else if (rows->size() != 1 || rows->front().size() != 1)
      fail_object(check, object,
                  "returned " + std::to_string(rows->size()) + " row(s); an assertion returns one boolean");
    else if (rows->front().front() != "t")
      fail_object(
          check, object,
          rows->front().front() == "f" ? "is false" : "returned '" + rows->front().front() + "', not true");
  }
  finish(check);
  findings.checks.push_back(check);
}

// A program whose printed lines a check reads (the first `limit` of them), with its outcome.
struct ToolReport {
  ProcessResult result;
  std::vector<std::string> lines;
};

Result<ToolReport> run_reading_lines(ProcessRunner& runner, ProcessSpec spec, std::size_t limit,
                                     const CancelToken& cancel) {
  auto lines = std::make_shared<std::vector<std::string>>();
  auto mutex = std::make_shared<std::mutex>();
  spec.on_line = [lines, mutex, limit](std::string_view line) {
    std::lock_guard lock(*mutex);
    if (lines->size() < limit) lines->emplace_back(line);
  };
  auto result = runner.run(spec, cancel);
  if (!result) return result.error();
  std::lock_guard lock(*mutex);
  return ToolReport{std::move(*result), *lines};
}

// "pg_checksums exited with code 1: <its last error lines>".
std::string tool_failure_reason(const std::string& tool, const ProcessResult& result) {
  return tool + " " + result.describe() +
         (result.error_excerpt().empty() ? "" : ": " + result.error_excerpt());
}
}  // namespace

Status run_copy_checks(CopyConnector& connector, const CopyCheckSettings& settings, const CancelToken& cancel,
                       DrillFindings& findings) {
  auto logger = log::get("drill");
  std::vector<std::string> databases = settings.databases;
  {
    auto session = connector.connect(settings.conninfo("postgres"));
    if (!session) return session.error().with_context("connecting to the paused copy");
    auto rows = (*session)->query(kDrillDatabasesQuery);
    if (!rows) return rows.error().with_context("listing the copy's databases");
    std::vector<std::string> present;
    for (const auto& row : *rows)
      if (!row.empty()) present.push_back(row.front());
    if (databases.empty()) databases = present;
    for (const auto& name : settings.databases)
      if (std::find(present.begin(), present.end(), name) == present.end()) {
        DrillCheck missing =
            new_check("tables", name, "failed", "database " + name + " does not exist in the copy");
        missing.failed = 1;
        missing.first_failure = name;
        findings.checks.push_back(missing);
      }
    auto version = (*session)->query(kDrillChecksumVersionQuery);
    if (version && !version->empty() && !version->front().empty())
      findings.data_checksum_version = std::atoi(version->front().front().c_str());
  }
  for (const auto& database : databases) {
    if (std::any_of(findings.checks.begin(), findings.checks.end(),
                    [&](const DrillCheck& c) { return c.database == database; }))
      continue;  // named but missing
    if (auto s = interrupted(cancel); !s) return s;
    DatabaseSession db(connector, settings.conninfo(database));
    auto session = db.get();
    if (!session) {
      DrillCheck check = new_check("tables", database, "failed", session.error().message);
      check.failed = 1;
      check.first_failure = database;
      findings.checks.push_back(check);
      continue;
    }
    auto table_rows = (*session)->query(kDrillTablesQuery);
    if (!table_rows) {
      DrillCheck check =
          new_check("tables", database, "failed", "could not list the tables: " + table_rows.error().message);
      check.failed = 1;
      check.first_failure = database;
      findings.checks.push_back(check);
      continue;
    }
    auto unlogged = (*session)->query(kDrillUnloggedQuery);
    const std::string unlogged_count =
        unlogged && !unlogged->empty() && !unlogged->front().empty() ? unlogged->front().front() : "";
    const auto tables = relations(*table_rows);
    logger->info("database {}: reading {} table(s) in full", database, tables.size());
    if (auto s = read_tables(db, database, tables, unlogged_count, cancel, findings); !s) return s;
    if (auto s = run_amcheck(db, database, tables, cancel, findings); !s) return s;
    for (auto it = findings.checks.end() - 3; it != findings.checks.end(); ++it)
      logger->info("database {}: {} {} ({} checked, {} failed{}{})", database, it->name, it->result,
                   it->checked, it->failed, it->first_failure.empty() ? "" : ", first " + it->first_failure,
                   it->reason.empty() ? "" : ": " + it->reason);
  }
  for (const auto& assertion : settings.assertions) {
    if (auto s = interrupted(cancel); !s) return s;
    run_assertion(connector, settings, assertion, findings);
    const auto& check = findings.checks.back();
    logger->info("assertion on {}: {}{}", assertion.database, check.result,
                 check.reason.empty() ? "" : " (" + check.reason + ")");
  }
  return {};
}

ChecksumsOutput parse_checksums_output(const std::vector<std::string>& lines) {
  ChecksumsOutput out;
  const auto number_after = [](const std::string& line,
                               const std::string& key) -> std::optional<std::uint64_t> {
    if (line.rfind(key, 0) != 0) return std::nullopt;
    const auto digits = line.find_first_of("0123456789", key.size());
    if (digits == std::string::npos) return std::nullopt;
    return std::stoull(line.substr(digits));
  };
  for (const auto& line : lines) {
    if (auto n = number_after(line, "Blocks scanned:")) out.blocks = *n;
    if (auto n = number_after(line, "Bad checksums:")) out.bad = *n;
    const auto at = line.find("checksum verification failed in file \"");
    if (at != std::string::npos && out.first_bad.empty()) {
      const auto start = at + std::string("checksum verification failed in file \"").size();
      const auto end = line.find('"', start);
      out.first_bad = line.substr(start, end == std::string::npos ? std::string::npos : end - start);
      const auto block = line.find(", block ", start);
      if (block != std::string::npos) {
        const auto colon = line.find(':', block);
        out.first_bad += line.substr(block, colon == std::string::npos ? std::string::npos : colon - block);
      }
    }
  }
  return out;
}

DrillCheck run_checksums_check(ProcessRunner& runner, const std::string& bindir, const std::string& data_dir,
                               int data_checksum_version, bool clean_shutdown, const CancelToken& cancel) {
  DrillCheck check = new_check("checksums", "");
  if (data_checksum_version == 0) {
    check.result = "skipped";
    check.reason =
        "the cluster has no data checksums (initdb --data-checksums, or pg_checksums --enable on the stopped "
        "primary)";
    return check;
  }
  if (!clean_shutdown) {
    check.result = "skipped";
    check.reason = "the copy did not shut down cleanly; pg_checksums needs a cleanly stopped cluster";
    return check;
  }
  ProcessSpec spec;
  spec.argv = {bindir + "/pg_checksums", "--check", "--pgdata", data_dir};
  spec.tag = "pg_checksums";
  auto report = run_reading_lines(runner, std::move(spec), 10000, cancel);
  if (!report) {
    check.result = "failed";
    check.reason = report.error().message;
    return check;
  }
  const auto parsed = parse_checksums_output(report->lines);
  check.checked = parsed.blocks;
  check.failed = parsed.bad;
  if (!parsed.first_bad.empty()) check.first_failure = parsed.first_bad;
  if (report->result.succeeded()) {
    check.result = "passed";
  } else {
    check.result = "failed";
    check.reason = tool_failure_reason("pg_checksums", report->result);
    if (check.failed == 0 && check.first_failure.empty()) check.failed = 1;
  }
  return check;
}

namespace {
// "... total files checked: 12, total valid files: 11": the number after `key`.
std::optional<std::uint64_t> number_after(const std::string& line, const std::string& key) {
  const auto at = line.find(key);
  if (at == std::string::npos) return std::nullopt;
  std::size_t pos = at + key.size();
  std::uint64_t value = 0;
  bool any = false;
  while (pos < line.size() && line[pos] >= '0' && line[pos] <= '9') {
    value = value * 10 + static_cast<std::uint64_t>(line[pos] - '0');
    any = true;
    ++pos;
  }
  return any ? std::optional<std::uint64_t>(value) : std::nullopt;
}
}  // namespace

VerifyOutput parse_verify_output(const std::vector<std::string>& lines) {
  VerifyOutput out;
  for (const auto& line : lines) {
    if (line.find("status: ok") != std::string::npos && line.find("backup:") == std::string::npos) {
      out.status_seen = true;
    } else if (line.find("status: error") != std::string::npos) {
      out.status_seen = true;
      out.status_error = true;
    }
    static const std::pair<const char*, const char*> kCounts[] = {
        {"total files checked: ", "total valid files: "}, {"total WAL checked: ", "total valid WAL: "}};
    for (const auto& [checked, valid] : kCounts) {
      const auto files = number_after(line, checked);
      const auto good = number_after(line, valid);
      if (files && good) {
        out.files += *files;
        out.valid += *good;
      }
    }
    // verifyLogInvalidResult: a missing WAL segment is a warning (expire may have removed it);
    // the rest are errors, at info.
    if (out.first_invalid.empty())
      for (const char* what :
           {"invalid checksum '", "invalid size '", "invalid result '", "file missing '"}) {
        const auto at = line.find(what);
        if (at != std::string::npos && line.find("WARN:") == std::string::npos) {
          out.first_invalid = line.substr(at);
          break;
        }
      }
  }
  return out;
}

DrillCheck run_repository_verify(ProcessRunner& runner, const PgBackRestTarget& target,
                                 const PgBackRestVersion& version, const std::string& label,
                                 const CancelToken& cancel) {
  DrillCheck check = new_check("pgbackrest-verify", "");
  if (version < kVerifySetVersion) {
    check.result = "skipped";
    check.reason = "pgBackRest " + version.text +
                   " cannot verify one backup set (verify --set needs 2.55 or later; PGO 5.8 ships 2.56.0)";
    return check;
  }
  ProcessSpec spec;
  spec.argv = pgbackrest_verify_set_argv(target, label);
  spec.tag = "pgbackrest";
  auto report = run_reading_lines(runner, std::move(spec), 100000, cancel);
  if (!report) {
    check.result = "failed";
    check.reason = report.error().message;
    return check;
  }
  const auto parsed = parse_verify_output(report->lines);
  check.checked = parsed.files;
  check.failed = parsed.files - std::min(parsed.valid, parsed.files);
  check.first_failure = parsed.first_invalid;
  const bool ran = report->result.succeeded();
  if (ran && parsed.status_seen && !parsed.status_error) {
    check.result = "passed";
    return check;
  }
  check.result = "failed";
  if (!ran)
    check.reason = tool_failure_reason("pgbackrest verify", report->result);
  else if (!parsed.status_seen)
    check.reason = "pgbackrest verify printed no result";
  else
    check.reason = "pgbackrest verify reports status: error for backup set " + label;
  if (check.failed == 0) check.failed = 1;
  return check;
}

}  // namespace agent
