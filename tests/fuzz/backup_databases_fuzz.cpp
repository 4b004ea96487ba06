// Fuzz target: `pgbackrest info --set=LABEL --output=json` as the dump's check step reads it
// (parse_backup_databases): the set's databases and their OIDs, which choose what
// restore.only_dumped_database restores (--db-include OID) and name the choices when --database
// is misspelt. Input: the label (the first line), then pgBackRest's JSON. Properties:
//  - a refusal has a message and is one the dump maps to a documented exit code: usage (the set
//    or stanza is not listed) or external_tool (output that is not pgBackRest's), never internal;
//  - the same bytes parse to the same answer (nothing depends on state left by an earlier call).
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "pgbackrest/info.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = agent::fuzz::as_text(data, size);
  const auto newline = text.find('\n');
  const std::string label(newline == std::string_view::npos ? std::string_view{} : text.substr(0, newline));
  const std::string_view json = newline == std::string_view::npos ? text : text.substr(newline + 1);
  const auto parsed = agent::parse_backup_databases(json, "demo", label);
  const auto again = agent::parse_backup_databases(json, "demo", label);
  agent::fuzz::check(parsed.ok() == again.ok(), "the same output parsed twice gives two answers", label);
  if (!parsed) {
    agent::fuzz::check(!parsed.error().message.empty(), "a refusal without a message");
    agent::fuzz::check(parsed.error().kind == agent::ErrorKind::usage ||
                           parsed.error().kind == agent::ErrorKind::external_tool,
                       "a refusal of another kind than usage or external_tool", parsed.error().message);
    return 0;
  }
  agent::fuzz::check(parsed->has_value() == again->has_value(),
                     "the same output parsed twice gives two answers");
  if (!*parsed) return 0;
  const auto& databases = **parsed;
  agent::fuzz::check(databases.size() == (*again)->size(), "the same output parsed twice gives two lists");
  for (std::size_t i = 0; i < databases.size(); ++i)
    agent::fuzz::check(databases[i].name == (**again)[i].name && databases[i].oid == (**again)[i].oid,
                       "the same output parsed twice gives two lists", databases[i].name);
  return 0;
}
