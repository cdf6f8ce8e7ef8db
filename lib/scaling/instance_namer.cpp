#include "scaling/instance_namer.h"

#include <memory>
#include <random>
#include <stdexcept>

namespace mps::scaling {
namespace {

bool IsAsciiLetter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsAsciiDigit(char c) {
  return c >= '0' && c <= '9';
}

constexpr std::string_view kSuffixAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
constexpr int kMaxDraws = 1000;

}  // namespace

bool IsValidInstanceName(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostnameLength) return false;
  if (!IsAsciiLetter(name.front()) || name.back() == '-') return false;
  for (char c : name) {
    if (!IsAsciiLetter(c) && !IsAsciiDigit(c) && c != '-') return false;
  }
  return true;
}

bool IsValidNamePrefix(std::string_view prefix) {
  return prefix.size() <= kMaxNamePrefixLength && IsValidInstanceName(prefix);
}

bool BelongsToPool(std::string_view prefix, std::string_view name) {
  return name.size() > prefix.size() + 1 && name.substr(0, prefix.size()) == prefix &&
         name[prefix.size()] == '-';
}

InstanceNamer::InstanceNamer(Random random) : random_(std::move(random)) {}

InstanceNamer InstanceNamer::FromRandomDevice() {
  std::random_device device;
  auto engine = std::make_shared<std::mt19937_64>((std::uint64_t{device()} << 32) | device());
  return InstanceNamer([engine] { return (*engine)(); });
}

std::string InstanceNamer::Next(std::string_view prefix, const std::set<std::string>& taken) {
  if (!IsValidNamePrefix(prefix)) {
    throw std::invalid_argument("invalid instance name prefix \"" + std::string(prefix) + "\"");
  }
  for (int draw = 0; draw < kMaxDraws; ++draw) {
    std::string name(prefix);
    name += '-';
    for (std::size_t i = 0; i < kNameSuffixLength; ++i) {
      name += kSuffixAlphabet[random_() % kSuffixAlphabet.size()];
    }
    if (!taken.contains(name)) return name;
  }
  throw std::runtime_error("no free instance name for prefix \"" + std::string(prefix) +
                           "\" after " + std::to_string(kMaxDraws) + " draws");
}

}  // namespace mps::scaling
