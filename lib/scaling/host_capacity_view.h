#pragma once
// A host's `host.capacity` reply (contracts/host.h) as placement's input
// (host_placement.h), so the plugin feeds placement straight from what each
// hostd answers. Pure: no sockets.
#include <cstdint>
#include <string>

#include "config/hosts_file.h"
#include "contracts/host.h"
#include "scaling/host_placement.h"

namespace mps::scaling {

// Launches failing in a row (for reasons of the host: capacity, start,
// timeouts) before a host stops taking new instances; one success resets it.
inline constexpr std::int64_t kUnhealthyAfterLaunchFailures = 3;

// `host` (its name, zone and weight from the hosts file) as its hostd
// described it; `pool_instances` is how many of the placed pool's instances
// it holds. Unhealthy when multipassd does not answer hostd or the last
// kUnhealthyAfterLaunchFailures launches failed.
HostCapacity PlacementHostOf(const config::HostEntry& host,
                             const contracts::host::CapacityReply& reply,
                             std::int64_t pool_instances);

// A host whose hostd did not answer `host.capacity` (`reason`: the bus
// error): unhealthy, nothing placed on it.
HostCapacity UnreachableHost(const config::HostEntry& host, const std::string& reason,
                             std::int64_t pool_instances);

}  // namespace mps::scaling
