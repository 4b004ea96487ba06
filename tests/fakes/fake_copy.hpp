#pragma once
// A scripted COPY source: each row-range query answers with the rows of its range,
// in pieces, after an optional delay; a query can be made to fail. Thread-safe, as the
// parallel copy uses one session per connection.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "pg/copy_session.hpp"

namespace agent::testing {

struct FakeCopyScript {
  // How many rows each table really has (a table not listed has 10); its rows are
  // "<table> row <n>" in order, so a row range answers what a sequential scan would.
  std::map<std::string, unsigned long> table_rows;
  // The rows a query answers with; by default the rows of its range of the table.
  std::function<std::string(const std::string& query)> rows_for = [this](const std::string& query) {
    static const std::regex range(R"(FROM ONLY (\S+)(?: OFFSET (\d+))?(?: LIMIT (\d+))?\) TO STDOUT)");
    std::smatch m;
    if (!std::regex_search(query, m, range)) return std::string("?\n");
    const std::string table = m[1];
    const auto known = table_rows.find(table);
    const unsigned long total = known == table_rows.end() ? 10 : known->second;
    const unsigned long first = m[2].matched ? std::stoul(m[2]) : 0;
    const unsigned long end = m[3].matched ? std::min(total, first + std::stoul(m[3])) : total;
    std::string out;
    for (unsigned long row = first; row < end; ++row) out += table + " row " + std::to_string(row) + "\n";
    return out;
  };
  std::function<std::chrono::milliseconds(const std::string& query)> delay_for = [](const std::string&) {
    return std::chrono::milliseconds(0);
  };
  std::string failing_query_part;  // a query containing it fails after its first piece
  std::size_t piece_bytes = 7;     // the size of the pieces handed to on_data
  bool refuse_connections = false;
  std::vector<std::vector<std::string>> query_rows;  // what query() answers
  // What `EXPLAIN (FORMAT JSON) SELECT ...` answers: by default the plain sequential scan the
  // copy sessions' settings pin every range to.
  std::function<std::string(const std::string& select)> plan_for = [](const std::string& select) {
    const std::string scan = R"({"Node Type": "Seq Scan", "Parallel Aware": false, "Relation Name": "t"})";
    if (select.find(" OFFSET ") == std::string::npos && select.find(" LIMIT ") == std::string::npos)
      return "[{\"Plan\": " + scan + "}]";
    return R"([{"Plan": {"Node Type": "Limit", "Parallel Aware": false, "Plans": [)" + scan + "]}}]";
  };

  std::mutex mutex;
  std::vector<std::string> executed;
  std::vector<std::string> queries;
  std::vector<std::string> explained;  // the SELECTs whose plans were asked for
  std::set<std::thread::id> threads;
  std::atomic<int> sessions{0};
  std::atomic<int> abandoned{0};
};

class FakeCopySession final : public CopySession {
 public:
  explicit FakeCopySession(FakeCopyScript& script) : script_(script) {}
  Status execute(const std::string& sql) override {
    std::lock_guard lock(script_.mutex);
    script_.executed.push_back(sql);
    return {};
  }
  Result<std::vector<std::vector<std::string>>> query(const std::string& sql) override {
    std::lock_guard lock(script_.mutex);
    static const std::string explain = "EXPLAIN (FORMAT JSON) ";
    if (sql.rfind(explain, 0) == 0) {
      script_.explained.push_back(sql.substr(explain.size()));
      return std::vector<std::vector<std::string>>{{script_.plan_for(sql.substr(explain.size()))}};
    }
    script_.queries.push_back(sql);
    return script_.query_rows;
  }
  Status copy_out(const std::string& sql, const std::function<bool(const char*, std::size_t)>& on_data,
                  const CancelToken& cancel) override {
    {
      std::lock_guard lock(script_.mutex);
      script_.queries.push_back(sql);
      script_.threads.insert(std::this_thread::get_id());
    }
    // As the server's first row may take long: a cancellation ends the wait.
    if (cancel.wait_for(script_.delay_for(sql))) return make_error(ErrorKind::interrupted, "interrupted");
    const std::string rows = script_.rows_for(sql);
    const bool fail =
        !script_.failing_query_part.empty() && sql.find(script_.failing_query_part) != std::string::npos;
    for (std::size_t at = 0; at < rows.size(); at += script_.piece_bytes) {
      if (cancel.cancelled()) return make_error(ErrorKind::interrupted, "interrupted");
      if (!on_data(rows.data() + at, std::min(script_.piece_bytes, rows.size() - at))) {
        ++script_.abandoned;
        return make_error(ErrorKind::interrupted, "the copy was stopped");
      }
      if (fail) return make_error(ErrorKind::external_tool, "query failed: ERROR:  could not read block");
    }
    return {};
  }

 private:
  FakeCopyScript& script_;
};

class FakeCopyConnector final : public CopyConnector {
 public:
  explicit FakeCopyConnector(FakeCopyScript& script) : script_(script) {}
  Result<std::unique_ptr<CopySession>> connect(const std::string&) override {
    if (script_.refuse_connections) return make_error(ErrorKind::external_tool, "cannot connect: refused");
    ++script_.sessions;
    return std::unique_ptr<CopySession>(std::make_unique<FakeCopySession>(script_));
  }

 private:
  FakeCopyScript& script_;
};

}  // namespace agent::testing
