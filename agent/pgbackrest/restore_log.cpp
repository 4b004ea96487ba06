#include "pgbackrest/restore_log.hpp"

#include <regex>

namespace agent {

std::optional<RestoredSet> parse_restored_set(std::string_view line) {
  static const std::regex pattern(
      R"((?:^|\s)(?:repo([0-9]{1,3}): )?restore backup set ([0-9]{8}-[0-9]{6}F(?:_[0-9]{8}-[0-9]{6}[DI])?)(?:,|$))");
  std::match_results<std::string_view::const_iterator> match;
  if (!std::regex_search(line.begin(), line.end(), match, pattern)) return std::nullopt;
  RestoredSet set;
  if (match[1].matched) set.repo = std::stoi(match[1].str());
  set.label = match[2].str();
  return set;
}

std::optional<std::uint32_t> parse_restore_percent(std::string_view line) noexcept {
  if (line.find("DETAIL: restore ") == std::string_view::npos) return std::nullopt;
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' '))
    line.remove_suffix(1);
  // The checksum that follows a file that is not empty: " checksum " and hex digits.
  const auto is_hex = [](char ch) { return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'); };
  std::size_t hex = 0;
  while (hex < line.size() && is_hex(line[line.size() - 1 - hex])) ++hex;
  constexpr std::string_view checksum = " checksum ";
  if (hex > 0 && line.size() >= hex + checksum.size() &&
      line.substr(line.size() - hex - checksum.size(), checksum.size()) == checksum)
    line.remove_suffix(hex + checksum.size());
  // Then the line ends in ", NN.NN%)" or "(NN.NN%)": one to three digits, a point, two digits.
  constexpr std::string_view close = "%)";
  if (line.size() < close.size() || line.substr(line.size() - close.size()) != close) return std::nullopt;
  line.remove_suffix(close.size());
  const auto is_digit = [](char ch) { return ch >= '0' && ch <= '9'; };
  if (line.size() < 3 || !is_digit(line[line.size() - 1]) || !is_digit(line[line.size() - 2]) ||
      line[line.size() - 3] != '.')
    return std::nullopt;
  const std::uint32_t fraction = static_cast<std::uint32_t>(line[line.size() - 2] - '0') * 10 +
                                 static_cast<std::uint32_t>(line.back() - '0');
  line.remove_suffix(3);
  std::uint32_t whole = 0;
  std::size_t digits = 0;
  while (digits < line.size() && is_digit(line[line.size() - 1 - digits])) {
    if (++digits > 3) return std::nullopt;
    whole = whole + static_cast<std::uint32_t>(line[line.size() - digits] - '0') * (digits == 1   ? 1u
                                                                                    : digits == 2 ? 10u
                                                                                                  : 100u);
  }
  if (digits == 0 || digits == line.size()) return std::nullopt;
  const char before = line[line.size() - digits - 1];
  if (before != ' ' && before != '(') return std::nullopt;
  const std::uint32_t hundredths = whole * 100 + fraction;
  if (hundredths > 10000) return std::nullopt;
  return hundredths;
}

std::uint64_t restored_bytes_at(std::uint32_t hundredths, std::uint64_t total_bytes) noexcept {
  if (hundredths >= 10000) return total_bytes;
  // total / 10000 * h + (total % 10000) * h / 10000: no overflow for any total.
  return total_bytes / 10000 * hundredths + total_bytes % 10000 * hundredths / 10000;
}

}  // namespace agent
