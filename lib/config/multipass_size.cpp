#include "config/multipass_size.h"

#include <cctype>
#include <charconv>
#include <limits>
#include <string>

namespace mps::config {

std::optional<std::uint64_t> ParseMultipassSize(std::string_view text) {
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return std::nullopt;
  std::string_view integer = text.substr(0, i);
  std::string_view fraction;
  if (i < text.size() && text[i] == '.') {
    std::size_t start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    fraction = text.substr(start, i - start);
    if (fraction.empty()) return std::nullopt;
  }
  std::string unit(text.substr(i));
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::uint64_t multiplier = 1;
  if (!unit.empty() && unit != "b") {
    switch (unit[0]) {
      case 'k':
        multiplier = 1ULL << 10;
        break;
      case 'm':
        multiplier = 1ULL << 20;
        break;
      case 'g':
        multiplier = 1ULL << 30;
        break;
      default:
        return std::nullopt;
    }
    std::string_view tail = std::string_view(unit).substr(1);
    if (!tail.empty() && tail != "b" && tail != "ib") return std::nullopt;
  }
  if (!fraction.empty() && multiplier == 1) return std::nullopt;  // "1.5" or "1.5B"

  std::uint64_t whole = 0;
  auto [end, ec] = std::from_chars(integer.data(), integer.data() + integer.size(), whole);
  if (ec != std::errc() || end != integer.data() + integer.size()) return std::nullopt;
  if (whole > std::numeric_limits<std::uint64_t>::max() / multiplier) return std::nullopt;
  std::uint64_t bytes = whole * multiplier;
  // Digits past the ninth cannot add a whole byte to a fraction of 1G.
  std::uint64_t scaled = 0, denominator = 1;
  for (std::size_t d = 0; d < fraction.size() && d < 9; ++d) {
    scaled = scaled * 10 + static_cast<std::uint64_t>(fraction[d] - '0');
    denominator *= 10;
  }
  std::uint64_t extra = scaled * multiplier / denominator;
  if (bytes > std::numeric_limits<std::uint64_t>::max() - extra) return std::nullopt;
  return bytes + extra;
}

}  // namespace mps::config
