#pragma once
// A scripted PostgreSQL: each connect() and each recovery_status() answers from a queue set
// up by the test; anything unscripted fails the test.
#include <gtest/gtest.h>

#include <deque>

#include "pg/session.hpp"

namespace agent::testing {

struct FakePgScript {
  std::deque<bool> connect_results;  // true: connection succeeds
  std::deque<Result<RecoveryStatus>> statuses;
  std::vector<std::string> databases{"postgres", "api"};
  bool in_recovery = false;
  int connects = 0;
  int status_queries = 0;
};

class FakePgSession final : public PgSession {
 public:
  explicit FakePgSession(FakePgScript& script) : script_(script) {}
  Result<RecoveryStatus> recovery_status() override {
    ++script_.status_queries;
    if (script_.statuses.empty()) {
      ADD_FAILURE() << "unscripted recovery_status()";
      return make_error(ErrorKind::internal, "unscripted");
    }
    auto next = script_.statuses.front();
    if (script_.statuses.size() > 1) script_.statuses.pop_front();  // the last answer repeats
    return next;
  }
  Result<std::vector<std::string>> databases() override { return script_.databases; }
  Result<bool> is_in_recovery() override { return script_.in_recovery; }
  Result<ArchiverStats> archiver_stats() override { return ArchiverStats{}; }

 private:
  FakePgScript& script_;
};

class FakePgConnector final : public PgConnector {
 public:
  explicit FakePgConnector(FakePgScript& script) : script_(script) {}
  Result<std::unique_ptr<PgSession>> connect(const std::string&) override {
    ++script_.connects;
    bool ok = true;
    if (!script_.connect_results.empty()) {
      ok = script_.connect_results.front();
      script_.connect_results.pop_front();
    }
    if (!ok)
      return make_error(ErrorKind::external_tool, "cannot connect: the database system is starting up");
    return std::unique_ptr<PgSession>(std::make_unique<FakePgSession>(script_));
  }

 private:
  FakePgScript& script_;
};

inline RecoveryStatus recovering(std::uint64_t lsn, const std::string& pause = "not paused") {
  RecoveryStatus status;
  status.in_recovery = true;
  status.pause_state = pause;
  status.replay_lsn = lsn;
  return status;
}

}  // namespace agent::testing
