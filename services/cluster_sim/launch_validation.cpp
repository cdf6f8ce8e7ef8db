#include "cluster_sim/launch_validation.h"

#include <cctype>
#include <string>

namespace mps::sim {
namespace {

bool IsAlpha(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0;
}
bool IsDigit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}
bool IsSpace(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

}  // namespace

bool IsValidInstanceName(std::string_view name) {
  if (name.empty() || !IsAlpha(name.front())) return false;
  for (char c : name)
    if (!IsAlpha(c) && !IsDigit(c) && c != '-') return false;
  return name.back() != '-';
}

std::optional<std::uint64_t> ParseSizeBytes(std::string_view text) {
  size_t i = 0;
  auto skip_spaces = [&] {
    while (i < text.size() && IsSpace(text[i])) ++i;
  };
  skip_spaces();
  size_t int_start = i;
  while (i < text.size() && IsDigit(text[i])) ++i;
  if (i == int_start) return std::nullopt;
  std::string integer(text.substr(int_start, i - int_start));
  std::string fraction;
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t frac_start = i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    if (i == frac_start) return std::nullopt;
    fraction = std::string(text.substr(frac_start, i - frac_start));
  }
  std::uint64_t unit = 1;
  bool has_unit = false;
  if (i < text.size()) {
    char u = static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
    if (u == 'K' || u == 'M' || u == 'G') {
      unit = u == 'K' ? 1024ull : u == 'M' ? kMiB : kGiB;
      has_unit = true;
      ++i;
      auto upper = [&](size_t k) {
        return static_cast<char>(std::toupper(static_cast<unsigned char>(text[k])));
      };
      if (i < text.size() && upper(i) == 'B') {
        ++i;
      } else if (i + 1 < text.size() && upper(i) == 'I' && upper(i + 1) == 'B') {
        i += 2;
      }
    } else if (u == 'B') {
      ++i;
    }
  }
  skip_spaces();
  if (i != text.size()) return std::nullopt;
  if (!fraction.empty() && !has_unit) return std::nullopt;
  if (integer.size() > 12 || fraction.size() > 9) return std::nullopt;  // no overflow games
  std::uint64_t bytes = std::stoull(integer) * unit;
  if (!fraction.empty()) {
    std::uint64_t scale = 1;
    for (size_t k = 0; k < fraction.size(); ++k) scale *= 10;
    bytes += std::stoull(fraction) * unit / scale;
  }
  return bytes;
}

}  // namespace mps::sim
