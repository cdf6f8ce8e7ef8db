#pragma once

#include <cstdint>
#include <string_view>

namespace mps::multipass {

inline constexpr std::uint64_t kMinMemoryBytes = 512ull << 20;  // multipassd's minimum
inline constexpr std::uint64_t kMinDiskBytes = 1ull << 30;      // multipassd's minimum

// Parses multipass size syntax into bytes: an integer, an optional fraction
// (only together with K/M/G), an optional unit K, M or G (any case) optionally
// followed by B or iB, or a bare B. Units are binary (1K = 1024). Surrounding
// spaces are allowed. `field` names the setting in the error. Throws
// MultipassError(invalid_argument).
std::uint64_t ParseSize(std::string_view text, std::string_view field);

// ParseSize plus the daemon's minimum (512M for memory, 1G for disk), so a
// launch is refused here with a clear message instead of by the daemon.
std::uint64_t ValidateMemorySize(std::string_view text, std::string_view field = "memory");
std::uint64_t ValidateDiskSize(std::string_view text, std::string_view field = "disk");

// Instance name = the VM's hostname: a letter, then letters, digits or '-',
// not ending in '-', at most 63 characters. Throws MultipassError(invalid_name).
void ValidateInstanceName(std::string_view name);

}  // namespace mps::multipass
