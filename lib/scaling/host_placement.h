#pragma once
// Where new instances of a pool go when the pool spans several Multipass
// hosts (issue 13): a pure function of the hosts' capacity and health, the
// instance's shape and the pool's restrictions. No sockets, no clocks.
//
// Rules, in order: a host takes an instance only if it is healthy, allowed
// for the pool (`hosts`, `zones`) and the instance fits its headroom (CPUs x
// cpu_allocation_ratio, memory x memory_allocation_ratio - reserve_memory,
// disk - reserve_disk, max_instances). Among those, `spread` (the default)
// picks the zone with the fewest instances of the pool (named zones share
// evenly; a host without a zone is a zone of its own, sharing by its
// weight), then in it the host with the fewest instances of the pool for its
// weight, then the most free memory; `pack` picks the host with the least
// free memory that still fits. Ties go to the host named first in
// alphabetical order, so a placement is reproducible.
#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mps::scaling {

struct HostCapacity {
  std::string name;
  std::string zone;  // empty: a zone of its own
  bool healthy = true;
  std::string unhealthy_reason;
  // What the host has, and what its instances (of every pool) have taken.
  std::int64_t cpus = 0;
  std::int64_t memory_bytes = 0;
  std::int64_t disk_bytes = 0;
  std::int64_t allocated_cpus = 0;
  std::int64_t allocated_memory_bytes = 0;
  std::int64_t allocated_disk_bytes = 0;
  std::int64_t instances = 0;  // of every pool
  // Headroom rules set on the host's hostd.
  double cpu_allocation_ratio = 1.0;
  double memory_allocation_ratio = 1.0;
  std::int64_t reserve_memory_bytes = 0;
  std::int64_t reserve_disk_bytes = 0;
  std::int64_t max_instances = 0;  // 0: no limit
  // Instances of the pool being placed already on this host.
  std::int64_t pool_instances = 0;
  // Its share when spreading (the hosts file's `weight`): hosts count as
  // balanced when their pool instances are in the ratio of their weights.
  std::int64_t weight = 1;
  // False until the host's hostd has told its totals and allocation: then
  // only max_instances and health limit it, and spreading goes by counts.
  bool resources_known = true;
};

// What a host can still take under its headroom rules: CPUs x
// cpu_allocation_ratio, memory x memory_allocation_ratio - reserve_memory,
// disk - reserve_disk, less what its instances hold; instances up to
// max_instances (INT64_MAX without a limit). Negative when over-committed.
struct FreeCapacity {
  std::int64_t cpus = 0;
  std::int64_t memory_bytes = 0;
  std::int64_t disk_bytes = 0;
  std::int64_t instances = 0;
};
// The same before what its instances hold (instances: max_instances, or INT64_MAX).
FreeCapacity UsableCapacityOf(const HostCapacity& host);
FreeCapacity FreeCapacityOf(const HostCapacity& host);

struct InstanceShape {
  std::int64_t cpus = 1;
  std::int64_t memory_bytes = 1LL << 30;
  std::int64_t disk_bytes = 5LL << 30;
};

enum class PlacementStrategy { kSpread, kPack };
// The policy spelling (`placement_strategy`).
inline constexpr std::array<std::pair<PlacementStrategy, std::string_view>, 2> EnumNames(
    PlacementStrategy) {
  return {{{PlacementStrategy::kSpread, "spread"}, {PlacementStrategy::kPack, "pack"}}};
}

struct PlacementRequest {
  InstanceShape shape;
  std::int64_t count = 0;
  PlacementStrategy strategy = PlacementStrategy::kSpread;
  std::set<std::string> allowed_hosts;  // empty: every host
  std::set<std::string> allowed_zones;  // empty: every zone
};

struct Placement {
  std::vector<std::string> hosts;  // one per placed instance, in placing order
  std::int64_t unplaced = 0;
  // For every host that took fewer than it was offered: why it stopped
  // (unhealthy, not allowed, or which resource ran out).
  std::map<std::string, std::string> refusals;
  // "placed 7 of 9 (host-a 3, host-b 4); 2 not placed: host-c: memory ..."
  std::string Summary() const;
};

Placement PlaceInstances(const std::vector<HostCapacity>& hosts, const PlacementRequest& request);

// Scale in keeps the balance: of `candidates` (instance -> its host), the
// order to remove them in, the host with the most instances of the pool
// first (ties: the order of `candidates`). `pool_instances` gives each host's
// count of the pool's instances, candidates or not (a host missing from it
// counts its candidates): a host whose other instances cannot be drained
// still has its share.
std::vector<std::string> RemovalOrder(
    const std::vector<std::pair<std::string, std::string>>& candidates,
    const std::map<std::string, std::int64_t>& pool_instances = {});

}  // namespace mps::scaling
