#include "multipass/launch_validation.h"

#include <cctype>
#include <limits>
#include <regex>
#include <string>

#include "multipass/multipass_error.h"

namespace mps::multipass {
namespace {

[[noreturn]] void RejectSize(std::string_view field, std::string_view text, std::string_view why) {
  throw MultipassError(MultipassError::Kind::invalid_argument,
                       std::string(field) + " '" + std::string(text) + "': " + std::string(why));
}

std::uint64_t AtLeast(std::uint64_t bytes, std::uint64_t minimum, std::string_view min_text,
                      std::string_view field, std::string_view text) {
  if (bytes < minimum) RejectSize(field, text, "must be at least " + std::string(min_text));
  return bytes;
}

}  // namespace

std::uint64_t ParseSize(std::string_view text, std::string_view field) {
  static const std::regex kSize(
      R"(^\s*(\d+)(?:\.(\d+))?(?:([KMGkmg])(?:[Bb]|[Ii][Bb])?|([Bb]))?\s*$)");
  const std::string s(text);
  std::smatch m;
  if (!std::regex_match(s, m, kSize)) {
    RejectSize(field, text,
               "expected a size such as 512M, 1.5G, 2GiB or a byte count (binary units K, M, G)");
  }
  const bool has_fraction = m[2].matched;
  std::uint64_t unit = 1;
  if (m[3].matched) {
    switch (std::toupper(static_cast<unsigned char>(m[3].str()[0]))) {
      case 'K':
        unit = 1ull << 10;
        break;
      case 'M':
        unit = 1ull << 20;
        break;
      default:
        unit = 1ull << 30;
        break;
    }
  } else if (has_fraction) {
    RejectSize(field, text, "a fraction needs a unit K, M or G");
  }
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  const std::string digits = m[1].str();
  std::uint64_t whole = 0;
  for (char c : digits) {
    if (whole > (kMax - 9) / 10) RejectSize(field, text, "too large");
    whole = whole * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (whole > kMax / unit) RejectSize(field, text, "too large");
  std::uint64_t bytes = whole * unit;
  if (has_fraction) {
    // The fraction of a unit, truncated to whole bytes; long double is exact
    // enough for a fraction of at most 2^30.
    const long double fraction = std::stold("0." + m[2].str());
    const auto extra = static_cast<std::uint64_t>(fraction * static_cast<long double>(unit));
    if (bytes > kMax - extra) RejectSize(field, text, "too large");
    bytes += extra;
  }
  return bytes;
}

std::uint64_t ValidateMemorySize(std::string_view text, std::string_view field) {
  return AtLeast(ParseSize(text, field), kMinMemoryBytes, "512M", field, text);
}

std::uint64_t ValidateDiskSize(std::string_view text, std::string_view field) {
  return AtLeast(ParseSize(text, field), kMinDiskBytes, "1G", field, text);
}

void ValidateInstanceName(std::string_view name) {
  static const std::regex kName("^([a-zA-Z]|[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9])$");
  const std::string s(name);
  if (s.empty()) {
    throw MultipassError(MultipassError::Kind::invalid_name, "instance name is empty");
  }
  if (s.size() > 63) {
    throw MultipassError(MultipassError::Kind::invalid_name,
                         "instance name '" + s + "': longer than 63 characters", s);
  }
  if (!std::regex_match(s, kName)) {
    throw MultipassError(MultipassError::Kind::invalid_name,
                         "instance name '" + s +
                             "': expected a letter, then letters, digits or '-', not ending in '-'",
                         s);
  }
}

}  // namespace mps::multipass
