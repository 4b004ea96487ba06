#include "pipelines/recovery_target.hpp"

#include <charconv>
#include <cstdint>
#include <optional>
#include <regex>

namespace agent {

const char* const kRecoveryTargetForms =
    "latest (the end of the archived WAL), lsn:0/3000028, xid:1234, name:RESTORE_POINT, or a time";

std::string pgbackrest_target_type(TargetKind kind) {
  switch (kind) {
    case TargetKind::lsn:
      return "lsn";
    case TargetKind::xid:
      return "xid";
    case TargetKind::name:
      return "name";
    case TargetKind::time:
    case TargetKind::latest:
      break;
  }
  return "time";
}

std::string target_kind_name(TargetKind kind) {
  return kind == TargetKind::latest ? "latest" : pgbackrest_target_type(kind);
}

std::uint64_t lsn_position(std::string_view lsn) {
  const auto slash = lsn.find('/');
  if (slash == std::string_view::npos) return 0;
  // Each half is at most 32 bits; anything else (empty, not hexadecimal, too long) is 0.
  const auto half = [](std::string_view text) -> std::optional<std::uint32_t> {
    std::uint32_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
  };
  const auto high = half(lsn.substr(0, slash));
  const auto low = half(lsn.substr(slash + 1));
  if (!high || !low) return 0;
  return (std::uint64_t{*high} << 32) | *low;
}

Result<std::optional<RecoveryTarget>> parse_recovery_target(std::string_view text) {
  const auto refuse = [&](const std::string& what) -> Error {
    return make_error(ErrorKind::usage, "--target '" + std::string(text) + "': " + what,
                      std::string("give ") + kRecoveryTargetForms);
  };
  if (text == "latest") return std::optional<RecoveryTarget>{RecoveryTarget{TargetKind::latest, ""}};
  const auto value_after = [&](std::string_view prefix) -> std::optional<std::string> {
    if (text.substr(0, prefix.size()) != prefix) return std::nullopt;
    return std::string(text.substr(prefix.size()));
  };
  if (auto lsn = value_after("lsn:")) {
    // PostgreSQL's pg_lsn text: two hexadecimal numbers of at most 8 digits.
    static const std::regex kLsn("[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}");
    if (!std::regex_match(*lsn, kLsn)) return refuse("an LSN is two hexadecimal numbers, e.g. lsn:0/3000028");
    if (lsn_position(*lsn) == 0) return refuse("LSN 0/0 is before any WAL");
    return std::optional<RecoveryTarget>{RecoveryTarget{TargetKind::lsn, *lsn}};
  }
  if (auto xid = value_after("xid:")) {
    // A 32-bit transaction id; 0..2 are not transactions (invalid, bootstrap, frozen).
    static const std::regex kXid("[1-9][0-9]{0,9}");
    if (!std::regex_match(*xid, kXid) || std::stoull(*xid) > 0xFFFFFFFFull || std::stoull(*xid) < 3)
      return refuse("a transaction id is a whole number from 3 to 4294967295, e.g. xid:1234");
    return std::optional<RecoveryTarget>{RecoveryTarget{TargetKind::xid, *xid}};
  }
  if (auto name = value_after("name:")) {
    // pg_create_restore_point takes up to 63 bytes. The agent takes a conservative subset, so
    // that the name is the same word in pgBackRest's argv, postgresql.auto.conf and the log.
    static const std::regex kName("[A-Za-z0-9_][A-Za-z0-9_.:@+-]{0,62}");
    if (!std::regex_match(*name, kName))
      return refuse(
          "a restore point name here is 1 to 63 of A-Z a-z 0-9 _ . : @ + - (not starting with one of . : @ + "
          "-)");
    return std::optional<RecoveryTarget>{RecoveryTarget{TargetKind::name, *name}};
  }
  return std::optional<RecoveryTarget>{};
}

}  // namespace agent
