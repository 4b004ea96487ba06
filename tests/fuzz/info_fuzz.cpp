// Fuzz target: `pgbackrest info --output=json` as the agent reads it (parse_info_json), then
// what the agent does with the result: the readability verdict, the backup set for a target,
// the oldest backup, the arithmetic the metrics and the dump do on the epochs (a duration,
// the recoverable window's start, microseconds for the manifest) and the WAL position of each
// set's lsn.stop that an LSN target is compared with. pgBackRest's output is trusted
// more than a client's, but a repository can hold anything, and a crash here takes down the
// metrics and every dump.
#include <chrono>
#include <optional>
#include <string>

#include "fuzz_check.hpp"
#include "pgbackrest/info.hpp"
#include "pipelines/recovery_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parsed = agent::parse_info_json(agent::fuzz::as_text(data, size));
  if (!parsed) {
    agent::fuzz::check(!parsed.error().message.empty(), "a refusal without a message");
    return 0;
  }
  for (const auto& stanza : *parsed) {
    const auto readable = agent::check_stanza_readable(stanza);
    if (!readable) (void)readable.error().describe();
    const auto* oldest = agent::oldest_backup(stanza);
    if (oldest != nullptr) {
      agent::fuzz::check(!oldest->error, "the oldest backup is one that failed");
      (void)agent::format_iso_utc(agent::SysMicros{std::chrono::seconds{oldest->stop_epoch + 1}});
    }
    for (const auto& backup : stanza.backups) {
      (void)static_cast<double>(backup.stop_epoch - backup.start_epoch);  // the metrics' duration
      const agent::SysMicros stop{std::chrono::seconds{backup.stop_epoch}};
      (void)agent::format_iso_utc(stop);
      const auto* chosen = agent::backup_for_target(stanza, stop + std::chrono::seconds{1}, std::nullopt);
      // As pgBackRest's restore: a set flagged `error` (page checksum errors) is chosen like any
      // other, and the set chosen stopped before the target's second.
      agent::fuzz::check(chosen != nullptr, "no set chosen for a target after a backup's stop", backup.label);
      if (chosen != nullptr)
        agent::fuzz::check(chosen->stop_epoch <= backup.stop_epoch,
                           "a set that stopped after the target was chosen", chosen->label);
      (void)agent::backup_for_target(stanza, stop + std::chrono::seconds{1}, backup.label);
      // An LSN target compares each set's lsn.stop with it (the dump's set_for_lsn).
      if (!backup.lsn_stop.empty()) (void)agent::lsn_position(backup.lsn_stop);
    }
  }
  return 0;
}
