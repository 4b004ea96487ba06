// Fuzz target: a `--target` that is not a time (parse_recovery_target): latest, lsn:X/Y, xid:N,
// name:POINT, from the command line or the control socket. The value becomes one argv element
// of pgbackrest restore (--target=VALUE), a line of the copy's postgresql.auto.conf and a word
// of the log. Properties:
//  - text without one of the four forms is left to the time parser (nullopt), and a form with
//    a bad value is refused with a usage error naming the forms;
//  - an accepted value is never an option (no leading '-'), holds no blank, quote, backslash or
//    control character, and is empty exactly for latest;
//  - an LSN is past 0/0 and lsn_position reads it without throwing; an xid is in 3..2^32-1;
//  - the form the agent names it by (target_kind_name + ":" + value) reads back as the same
//    target, and pgBackRest's --type is one it knows.
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "pipelines/recovery_target.hpp"

namespace {

bool has_form(std::string_view text) {
  for (const std::string_view prefix : {"lsn:", "xid:", "name:"})
    if (text.substr(0, prefix.size()) == prefix) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = agent::fuzz::as_text(data, size);
  const std::string shown(text);
  const auto parsed = agent::parse_recovery_target(text);
  if (!parsed) {
    agent::fuzz::check(parsed.error().kind == agent::ErrorKind::usage, "a refusal that is not a usage error",
                       shown);
    agent::fuzz::check(!parsed.error().message.empty() && !parsed.error().hint.empty(),
                       "a refusal without a message or hint", shown);
    agent::fuzz::check(has_form(text), "text without a target form was refused instead of read as a time",
                       shown);
    return 0;
  }
  if (!*parsed) {
    agent::fuzz::check(text != "latest" && !has_form(text), "a target form was left to the time parser",
                       shown);
    return 0;
  }
  const agent::RecoveryTarget& target = **parsed;
  const std::string& value = target.value;
  agent::fuzz::check(value.empty() == (target.kind == agent::TargetKind::latest),
                     "a target value is empty for another kind than latest", shown);
  if (target.kind == agent::TargetKind::latest) {
    agent::fuzz::check(text == "latest", "latest read from other text", shown);
    return 0;
  }
  agent::fuzz::check(value.front() != '-', "a target value that reads as an option", value);
  for (const char ch : value) {
    const auto byte = static_cast<unsigned char>(ch);
    agent::fuzz::check(byte > 0x20 && byte < 0x7f && ch != '\'' && ch != '"' && ch != '\\',
                       "a target value with a blank, quote, backslash, control or non-ASCII byte", value);
  }
  const std::string type = agent::pgbackrest_target_type(target.kind);
  agent::fuzz::check(type == "lsn" || type == "xid" || type == "name", "an unknown pgBackRest --type", type);
  if (target.kind == agent::TargetKind::lsn)
    agent::fuzz::check(agent::lsn_position(value) > 0, "an LSN target at 0/0", value);
  if (target.kind == agent::TargetKind::xid) {
    const unsigned long long xid = std::stoull(value);
    agent::fuzz::check(xid >= 3 && xid <= 0xFFFFFFFFull, "an xid outside 3..2^32-1", value);
  }
  const std::string named = agent::target_kind_name(target.kind) + ":" + value;
  const auto again = agent::parse_recovery_target(named);
  agent::fuzz::check(again.ok() && again->has_value(), "a target as the agent names it is not read back",
                     named);
  agent::fuzz::check((*again)->kind == target.kind && (*again)->value == value,
                     "a target as the agent names it reads back as another", named);
  return 0;
}
