#include "scaling/host_capacity_view.h"

namespace mps::scaling {
namespace {

HostCapacity Named(const config::HostEntry& host, std::int64_t pool_instances) {
  HostCapacity h;
  h.name = host.name;
  h.zone = host.zone;
  h.weight = host.weight;
  h.pool_instances = pool_instances;
  return h;
}

}  // namespace

HostCapacity PlacementHostOf(const config::HostEntry& host,
                             const contracts::host::CapacityReply& reply,
                             std::int64_t pool_instances) {
  HostCapacity h = Named(host, pool_instances);
  h.cpus = reply.totals.cpus;
  h.memory_bytes = reply.totals.memory_bytes;
  h.disk_bytes = reply.totals.disk_bytes;
  h.allocated_cpus = reply.allocated.cpus;
  h.allocated_memory_bytes = reply.allocated.memory_bytes;
  h.allocated_disk_bytes = reply.allocated.disk_bytes;
  h.instances = reply.allocated.instances;
  h.cpu_allocation_ratio = reply.headroom.cpu_allocation_ratio;
  h.memory_allocation_ratio = reply.headroom.memory_allocation_ratio;
  h.reserve_memory_bytes = reply.headroom.reserve_memory_bytes;
  h.reserve_disk_bytes = reply.headroom.reserve_disk_bytes;
  h.max_instances = reply.headroom.max_instances;
  const auto& health = reply.health;
  if (!health.daemon_reachable) {
    h.healthy = false;
    h.unhealthy_reason = "multipassd does not answer hostd" +
                         (health.daemon_error.empty() ? "" : ": " + health.daemon_error);
  } else if (health.consecutive_launch_failures >= kUnhealthyAfterLaunchFailures) {
    h.healthy = false;
    h.unhealthy_reason =
        "the last " + std::to_string(health.consecutive_launch_failures) + " launches failed" +
        (health.last_launch_failure.empty() ? "" : " (last: " + health.last_launch_failure + ")");
  }
  return h;
}

HostCapacity UnreachableHost(const config::HostEntry& host, const std::string& reason,
                             std::int64_t pool_instances) {
  HostCapacity h = Named(host, pool_instances);
  h.healthy = false;
  h.unhealthy_reason = "hostd at " + host.hostd_address + " unreachable: " + reason;
  return h;
}

}  // namespace mps::scaling
