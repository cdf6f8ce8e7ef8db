#pragma once
// The daemon's input rules for instance names and sizes (multipassd
// utils.cpp valid_hostname, memory_size.cpp in_bytes), so the simulator
// rejects exactly what a real daemon rejects.
#include <cstdint>
#include <optional>
#include <string_view>

namespace mps::sim {

// Letters, digits and '-', starting with a letter and not ending in '-'.
bool IsValidInstanceName(std::string_view name);

// "512M", "1.5G", "2GiB", "10240kb", "1024" (bytes): binary units K/M/G with an
// optional B or iB suffix, or a bare B; a fraction only with a unit. Spaces
// around the value are allowed. nullopt when the syntax is wrong.
std::optional<std::uint64_t> ParseSizeBytes(std::string_view text);

inline constexpr std::uint64_t kMiB = 1024ull * 1024;
inline constexpr std::uint64_t kGiB = 1024ull * kMiB;
inline constexpr std::uint64_t kMinMemoryBytes = 512 * kMiB;
inline constexpr std::uint64_t kMinDiskBytes = 1 * kGiB;
inline constexpr std::uint64_t kDefaultMemoryBytes = 1 * kGiB;
inline constexpr std::uint64_t kDefaultDiskBytes = 5 * kGiB;

}  // namespace mps::sim
