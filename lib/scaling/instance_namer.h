#pragma once
// Instance names of a pool: "<prefix>-<random suffix>". The name is also the
// VM's hostname, which is how a Nomad node is matched to its instance, so a
// name must be a valid hostname and must never be reused while taken.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>

namespace mps::scaling {

inline constexpr std::size_t kMaxHostnameLength = 63;
inline constexpr std::size_t kNameSuffixLength = 6;
// Longest prefix that still leaves room for "-" and the suffix.
inline constexpr std::size_t kMaxNamePrefixLength = kMaxHostnameLength - 1 - kNameSuffixLength;

// Starts with a letter; letters, digits and '-'; does not end in '-'; <= 63.
bool IsValidInstanceName(std::string_view name);

// A valid instance name of at most kMaxNamePrefixLength characters.
bool IsValidNamePrefix(std::string_view prefix);

// name == prefix + "-" + something: pool "web" never owns "webapp-1".
bool BelongsToPool(std::string_view prefix, std::string_view name);

class InstanceNamer {
 public:
  // Returns uniformly distributed 64-bit values; injected so tests are
  // deterministic.
  using Random = std::function<std::uint64_t()>;

  explicit InstanceNamer(Random random);
  // Seeded from std::random_device.
  static InstanceNamer FromRandomDevice();

  // A fresh name not in `taken`. Throws std::invalid_argument for an invalid
  // prefix, std::runtime_error when no free name turns up after many draws
  // (only a broken random source gets there).
  std::string Next(std::string_view prefix, const std::set<std::string>& taken);

 private:
  Random random_;
};

}  // namespace mps::scaling
