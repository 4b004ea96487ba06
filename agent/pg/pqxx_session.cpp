#include <pqxx/pqxx>

#include "pg/session.hpp"

namespace agent {
namespace {

class PqxxSession final : public PgSession {
 public:
  explicit PqxxSession(std::unique_ptr<pqxx::connection> connection) : connection_(std::move(connection)) {}

  Result<RecoveryStatus> recovery_status() override {
    try {
      pqxx::nontransaction tx(*connection_);
      // Pause state and replay functions raise "recovery is not in progress" after a
      // promotion, hence the CASE.
      const auto row = tx.exec1(
          "SELECT pg_is_in_recovery(),"
          " CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() ELSE '' END,"
          " (extract(epoch FROM pg_last_xact_replay_timestamp()) * 1000000)::bigint,"
          " COALESCE(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'), 0)::bigint");
      RecoveryStatus status;
      status.in_recovery = row[0].as<bool>();
      status.pause_state = row[1].as<std::string>();
      if (!row[2].is_null()) status.last_replayed = SysMicros{Microseconds{row[2].as<long long>()}};
      status.replay_lsn = row[3].as<std::uint64_t>();
      return status;
    } catch (const std::exception& e) {
      return make_error(ErrorKind::external_tool, std::string("query failed: ") + e.what());
    }
  }

  Result<bool> is_in_recovery() override {
    try {
      pqxx::nontransaction tx(*connection_);
      return tx.exec1("SELECT pg_is_in_recovery()")[0].as<bool>();
    } catch (const std::exception& e) {
      return make_error(ErrorKind::external_tool, std::string("query failed: ") + e.what());
    }
  }

  Result<ArchiverStats> archiver_stats() override {
    try {
      pqxx::nontransaction tx(*connection_);
      const auto row = tx.exec1(
          "SELECT archived_count, failed_count, extract(epoch FROM last_archived_time)::bigint,"
          " extract(epoch FROM last_failed_time)::bigint FROM pg_stat_archiver");
      ArchiverStats stats;
      stats.archived_count = row[0].as<std::uint64_t>();
      stats.failed_count = row[1].as<std::uint64_t>();
      if (!row[2].is_null()) stats.last_archived_epoch = row[2].as<std::int64_t>();
      if (!row[3].is_null()) stats.last_failed_epoch = row[3].as<std::int64_t>();
      return stats;
    } catch (const std::exception& e) {
      return make_error(ErrorKind::external_tool, std::string("query failed: ") + e.what());
    }
  }

  Result<std::vector<std::string>> databases() override {
    try {
      pqxx::nontransaction tx(*connection_);
      std::vector<std::string> names;
      for (const auto& row :
           tx.exec("SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
                   "ORDER BY datname"))
        names.push_back(row[0].as<std::string>());
      return names;
    } catch (const std::exception& e) {
      return make_error(ErrorKind::external_tool, std::string("query failed: ") + e.what());
    }
  }

 private:
  std::unique_ptr<pqxx::connection> connection_;
};

class PqxxConnector final : public PgConnector {
 public:
  Result<std::unique_ptr<PgSession>> connect(const std::string& conninfo) override {
    try {
      auto connection = std::make_unique<pqxx::connection>(conninfo);
      // A server that accepts the connection and then hangs (stalled storage) must not wedge
      // the agent: every question it asks is short.
      pqxx::nontransaction(*connection).exec("SET statement_timeout = '30s'");
      return std::unique_ptr<PgSession>(std::make_unique<PqxxSession>(std::move(connection)));
    } catch (const std::exception& e) {
      std::string message = e.what();
      while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
      return make_error(ErrorKind::external_tool, "cannot connect: " + message);
    }
  }
};

}  // namespace

std::unique_ptr<PgConnector> make_pqxx_connector() {
  return std::make_unique<PqxxConnector>();
}

}  // namespace agent
