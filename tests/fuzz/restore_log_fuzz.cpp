// Fuzz target: a line of `pgbackrest restore` output (any bytes), as the dump reads each one for
// the restore's progress. Properties:
//  - parse_restore_percent never answers more than 100.00%, and only for a restore line that
//    ends in "%)" (before an optional checksum);
//  - whatever comes before it, a line ending in pgBackRest's "(8KB, 12.34%)" reads 12.34%, with
//    or without " checksum HEX" and a carriage return after it (the line is read from its end);
//  - the bytes done from any answer are never more than the total, and grow with the percentage.
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "pgbackrest/restore_log.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using agent::fuzz::check;
  const std::string_view line = agent::fuzz::as_text(data, size);
  const auto hundredths = agent::parse_restore_percent(line);
  if (hundredths) {
    check(*hundredths <= 10000, "more than 100.00%", line);
    check(line.find("DETAIL: restore ") != std::string_view::npos, "not a restore line", line);
    check(line.find("%)") != std::string_view::npos, "no percentage", line);
  }

  const std::string prefix = "P01 DETAIL: restore file " + std::string(line);
  check(agent::parse_restore_percent(prefix + " (8KB, 12.34%)") == 1234u, "known end not read", line);
  check(agent::parse_restore_percent(prefix + " (bundle 1/2, 0B, 100.00%) checksum 0a9f\r") == 10000u,
        "known end with checksum not read", line);

  const std::uint64_t total = size == 0 ? 0 : (std::uint64_t{data[0]} << 56) | (size * 7919);
  std::uint64_t previous = 0;
  for (std::uint32_t h = 0; h <= 10000; h += 997) {
    const auto done = agent::restored_bytes_at(h, total);
    check(done <= total && done >= previous, "bytes done beyond the total or going back", line);
    previous = done;
  }
  check(agent::restored_bytes_at(10000, total) == total, "100.00% is not the total", line);
  return 0;
}
