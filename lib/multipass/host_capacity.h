#pragma once
// What multipass-hostd answers `host.capacity` with (contracts/host.h), from
// what it can learn cheaply: multipassd's daemon_info or this machine's own
// totals, the instances multipassd lists (no SSH, no runtime information)
// and the sizes hostd launched them with.
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "contracts/host.h"
#include "multipass/multipass_client.h"
#include "multipass/multipass_error.h"

namespace mps::multipass {

struct InstanceSize {
  std::int64_t cpus = 0;
  std::int64_t memory_bytes = 0;
  std::int64_t disk_bytes = 0;
};

// Multipass's defaults for a launch that does not say (constants.h of the
// daemon): 1 CPU, 1 GiB memory, 5 GiB disk.
inline constexpr InstanceSize kMultipassDefaultSize{1, 1LL << 30, 5LL << 30};

// The size a launch asks for, defaults filled in; a size text the daemon
// would refuse counts as its default (the launch fails anyway).
InstanceSize SizeOfLaunch(const LaunchSpec& spec);

// MemTotal of /proc/meminfo text, in bytes.
std::optional<std::int64_t> MemTotalFromMeminfo(std::string_view meminfo);

// This machine's totals: online CPUs, MemTotal of `meminfo_path` and the size
// of the filesystem holding `disk_path` (multipassd's storage directory).
// What cannot be read stays 0 and `error` names it.
contracts::host::Totals ReadHostTotals(const std::string& disk_path,
                                       const std::string& meminfo_path = "/proc/meminfo");

// What the listed instances hold: every state but deleted; the size hostd
// launched an instance with when `known` has it, else the Multipass defaults
// (counted in `estimated`).
contracts::host::Allocation AllocationOf(const std::vector<InstanceInfo>& listed,
                                         const std::map<std::string, InstanceSize>& known);

// Whether a failed launch says something about the host (its capacity or
// its daemon) rather than about the request (a bad name, an unknown image),
// or about us stopping.
bool CountsAgainstHost(MultipassError::Kind kind);

// The sizes of the instances this hostd launched and its launches' recent
// outcomes. Thread-safe: launches end on the scheduler's threads.
class LaunchLedger {
 public:
  void Launched(const std::string& name, const InstanceSize& size);
  void Succeeded();
  void Failed(const MultipassError& error);
  void Deleted(const std::vector<std::string>& names);
  std::map<std::string, InstanceSize> Sizes() const;
  std::int64_t consecutive_failures() const;
  std::string last_failure() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, InstanceSize> sizes_;
  std::int64_t consecutive_failures_ = 0;
  std::string last_failure_;
};

}  // namespace mps::multipass
