#pragma once
// The seam for copying table rows out of the temporary server: one libpq connection per
// worker, streaming `COPY ... TO STDOUT` without holding a table in memory. libpqxx 6.4's
// stream classes take a table name, not a query, hence plain libpq. A scripted fake stands in
// for it in unit tests.
//
// Why two PostgreSQL seams (this and pg/session.hpp): PgSession asks a few typed questions
// (recovery state, databases, the archiver) that fakes answer as data, through libpqxx; the
// copy needs what libpqxx 6.4 does not give for a query: COPY data in pieces as it arrives and
// a cancel request from another thread (PQcancel). One seam would put libpq's byte stream
// under every question, or libpqxx's row parsing under every copied row.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/cancel.hpp"
#include "core/error.hpp"

namespace agent {

class CopySession {
 public:
  virtual ~CopySession() = default;
  // Runs one or more statements that return no rows (SET, BEGIN).
  virtual Status execute(const std::string& sql) = 0;
  // The rows of a query, each field as text; NULL reads as "".
  virtual Result<std::vector<std::vector<std::string>>> query(const std::string& sql) = 0;
  // Runs `COPY ... TO STDOUT`, handing the data over in pieces as it arrives. `on_data`
  // returning false abandons the COPY (the connection is then unusable), as does `cancel`.
  virtual Status copy_out(const std::string& sql,
                          const std::function<bool(const char*, std::size_t)>& on_data,
                          const CancelToken& cancel) = 0;
};

class CopyConnector {
 public:
  virtual ~CopyConnector() = default;
  virtual Result<std::unique_ptr<CopySession>> connect(const std::string& conninfo) = 0;
};

std::unique_ptr<CopyConnector> make_libpq_copy_connector();

}  // namespace agent
