#pragma once
// How a child program's output line is logged: at the level the program itself printed, and
// as part of the line before it when it only continues that one. Pure, so each program's
// formats are unit-tested.
//
//   pgBackRest   "P00   WARN: ...", "2024-11-04 09:40:00.123 P00  ERROR: [075]: ..." (console),
//                "WARN: ...", "ERROR: [075]: ..." (stderr); lines that continue a message
//                (its HINT, say) are indented
//   PostgreSQL   "[123] FATAL:  ...", "ERROR:", "PANIC:", "WARNING:", "LOG:"; DETAIL, HINT,
//                CONTEXT, STATEMENT, QUERY and LOCATION lines continue the message before
//   pg_dump etc. "pg_dump: error: ...", "pg_dump: warning: ..."; "pg_dump: detail: ..." and
//                "pg_dump: hint: ..." continue it
#include <spdlog/common.h>

#include <optional>
#include <string_view>

namespace agent {

struct ChildLine {
  std::optional<spdlog::level::level_enum> level;  // the level its words give it; none: plain output
  bool continues = false;                          // belongs to the record of the line before it
};

ChildLine pgbackrest_line(std::string_view line);
ChildLine postgres_line(std::string_view line);
// PostgreSQL's client programs (pg_dump, pg_restore, pg_waldump, pg_ctl, ...): "NAME: error: ...".
ChildLine client_program_line(std::string_view line);

// By the program's log tag: "pgbackrest", "postgres" (whose restore_command runs pgBackRest, so
// its lines are read both ways), "pg_*" and anything else as a PostgreSQL client program.
ChildLine classify_child_line(std::string_view program, std::string_view line);

}  // namespace agent
