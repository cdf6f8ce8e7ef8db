#pragma once
// What multipass-hostd answers `host.capacity` with (contracts/host.h), from
// what it can learn cheaply: multipassd's daemon_info or this machine's own
// totals, the instances multipassd lists (no SSH, no runtime information)
// and the sizes hostd launched them with.
#include <cstdint>
#include <filesystem>
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
//
// With a file (hostd's state dir), the sizes outlive a restart: a restarted
// hostd counts what it launched at their real sizes, not as estimated
// defaults. The file is rewritten whole (write, fsync, rename) on every
// launch and delete, so a crash leaves the old or the new one.
class LaunchLedger {
 public:
  // At most this many sizes are kept (names are unique; beyond it, the
  // instances count as estimated, like ones hostd did not launch).
  static constexpr std::size_t kMaxEntries = 10'000;
  // The file is at most this large: read no further than that.
  static constexpr std::uintmax_t kMaxFileBytes = 4 * 1024 * 1024;

  LaunchLedger() = default;
  // Reads `file` when it exists. A file that cannot be read or parsed is
  // left alone and the ledger starts empty; load_error() says why.
  explicit LaunchLedger(std::filesystem::path file);
  const std::string& load_error() const { return load_error_; }
  // Why the last write of the file failed; empty when it did not.
  std::string save_error() const;

  void Launched(const std::string& name, const InstanceSize& size);
  void Succeeded();
  void Failed(const MultipassError& error);
  void Deleted(const std::vector<std::string>& names);
  std::map<std::string, InstanceSize> Sizes() const;
  std::int64_t consecutive_failures() const;
  std::string last_failure() const;

 private:
  void SaveLocked();

  std::filesystem::path file_;
  std::string load_error_;
  std::string save_error_;
  mutable std::mutex mutex_;
  std::map<std::string, InstanceSize> sizes_;
  std::int64_t consecutive_failures_ = 0;
  std::string last_failure_;
};

}  // namespace mps::multipass
