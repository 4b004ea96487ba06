#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <memory>

#include "pg/copy_session.hpp"

namespace agent {
namespace {

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

std::string trimmed(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

class LibpqCopySession final : public CopySession {
 public:
  explicit LibpqCopySession(PGconn* connection) : connection_(connection) {}
  ~LibpqCopySession() override { PQfinish(connection_); }
  LibpqCopySession(const LibpqCopySession&) = delete;
  LibpqCopySession& operator=(const LibpqCopySession&) = delete;

  Status execute(const std::string& sql) override {
    ResultPtr result(PQexec(connection_, sql.c_str()), PQclear);
    const auto status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return failure(result.get());
    return {};
  }

  Result<std::vector<std::vector<std::string>>> query(const std::string& sql) override {
    ResultPtr result(PQexec(connection_, sql.c_str()), PQclear);
    if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) return failure(result.get());
    std::vector<std::vector<std::string>> rows;
    const int fields = PQnfields(result.get());
    for (int row = 0; row < PQntuples(result.get()); ++row) {
      auto& out = rows.emplace_back();
      for (int field = 0; field < fields; ++field) out.emplace_back(PQgetvalue(result.get(), row, field));
    }
    return rows;
  }

  Status copy_out(const std::string& sql, const std::function<bool(const char*, std::size_t)>& on_data,
                  const CancelToken& cancel) override {
    if (PQsendQuery(connection_, sql.c_str()) != 1)
      return make_error(ErrorKind::external_tool,
                        "cannot send " + sql + ": " + trimmed(PQerrorMessage(connection_)));
    ResultPtr started(wait_for_result(cancel), PQclear);
    if (cancel.cancelled()) return interrupted();
    if (PQresultStatus(started.get()) != PGRES_COPY_OUT) return failure(started.get());
    for (;;) {
      char* data = nullptr;
      // Asynchronous: returns 0 when nothing is buffered, so a cancellation is seen while the
      // server is slow.
      const int size = PQgetCopyData(connection_, &data, 1);
      if (size > 0) {
        const bool keep_going = on_data(data, static_cast<std::size_t>(size));
        PQfreemem(data);
        if (!keep_going) return abandon("the copy was stopped");
        continue;
      }
      if (size == 0) {
        if (!wait_readable(cancel)) return interrupted();
        if (PQconsumeInput(connection_) != 1)
          return make_error(ErrorKind::external_tool, "COPY failed: " + trimmed(PQerrorMessage(connection_)));
        continue;
      }
      if (size == -2)
        return make_error(ErrorKind::external_tool, "COPY failed: " + trimmed(PQerrorMessage(connection_)));
      break;  // -1: the COPY ended; its final result says how.
    }
    ResultPtr finished(PQgetResult(connection_), PQclear);
    const bool ok = PQresultStatus(finished.get()) == PGRES_COMMAND_OK;
    Status status = ok ? Status{} : failure(finished.get());
    while (PGresult* rest = PQgetResult(connection_)) PQclear(rest);
    return status;
  }

 private:
  Error failure(const PGresult* result) const {
    const char* message = result ? PQresultErrorMessage(result) : PQerrorMessage(connection_);
    return make_error(ErrorKind::external_tool, "query failed: " + trimmed(message));
  }

  Error interrupted() {
    cancel_query();
    return make_error(ErrorKind::interrupted, "interrupted while copying table rows");
  }

  Error abandon(const std::string& why) {
    cancel_query();
    return make_error(ErrorKind::interrupted, why);
  }

  // Asks the server to stop sending; the session is not reused after this.
  void cancel_query() {
    if (PGcancel* handle = PQgetCancel(connection_)) {
      char message[256];
      PQcancel(handle, message, sizeof message);
      PQfreeCancel(handle);
    }
  }

  // False when cancelled first.
  bool wait_readable(const CancelToken& cancel) {
    for (;;) {
      pollfd fds[2] = {{PQsocket(connection_), POLLIN, 0}, {cancel.fd(), POLLIN, 0}};
      const int rc = poll(fds, 2, -1);
      if (cancel.cancelled()) return false;
      if (rc < 0 && errno == EINTR) continue;
      return true;
    }
  }

  PGresult* wait_for_result(const CancelToken& cancel) {
    while (PQisBusy(connection_) == 1) {
      if (!wait_readable(cancel)) return nullptr;
      if (PQconsumeInput(connection_) != 1) break;
    }
    return PQgetResult(connection_);
  }

  PGconn* connection_;
};

class LibpqCopyConnector final : public CopyConnector {
 public:
  Result<std::unique_ptr<CopySession>> connect(const std::string& conninfo) override {
    PGconn* connection = PQconnectdb(conninfo.c_str());
    if (connection == nullptr) return make_error(ErrorKind::external_tool, "cannot connect: out of memory");
    if (PQstatus(connection) != CONNECTION_OK) {
      const std::string message = trimmed(PQerrorMessage(connection));
      PQfinish(connection);
      return make_error(ErrorKind::external_tool, "cannot connect: " + message);
    }
    return std::unique_ptr<CopySession>(std::make_unique<LibpqCopySession>(connection));
  }
};

}  // namespace

std::unique_ptr<CopyConnector> make_libpq_copy_connector() {
  return std::make_unique<LibpqCopyConnector>();
}

}  // namespace agent
