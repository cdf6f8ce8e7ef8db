#include "scaling/host_placement.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace mps::scaling {
namespace {

// A host as placement sees it while it hands out instances.
struct Slot {
  const HostCapacity* host;
  std::int64_t cpus_left;  // after ratios and reserves
  std::int64_t memory_left;
  std::int64_t disk_left;
  std::int64_t instances_left;  // max: no limit
  std::int64_t pool_instances;
  std::int64_t placed = 0;
  std::string refusal;   // why it cannot take one more (empty: it can)
  std::size_t zone = 0;  // index into the zone counts
};

std::int64_t Scaled(std::int64_t total, double ratio) {
  return static_cast<std::int64_t>(std::floor(static_cast<double>(total) * ratio));
}

std::string Bytes(std::int64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (std::abs(v) >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char out[32];
  std::snprintf(out, sizeof out, "%.1f %s", v, units[u]);
  return out;
}

// Why `slot` cannot take an instance of `shape` (empty: it can).
std::string Refusal(const Slot& slot, const InstanceShape& shape) {
  if (slot.instances_left <= 0) {
    return "max_instances " + std::to_string(slot.host->max_instances) + " reached";
  }
  if (slot.cpus_left < shape.cpus) {
    return "CPUs: " + std::to_string(std::max<std::int64_t>(0, slot.cpus_left)) + " left, " +
           std::to_string(shape.cpus) + " needed";
  }
  if (slot.memory_left < shape.memory_bytes) {
    return "memory: " + Bytes(std::max<std::int64_t>(0, slot.memory_left)) + " left, " +
           Bytes(shape.memory_bytes) + " needed";
  }
  if (slot.disk_left < shape.disk_bytes) {
    return "disk: " + Bytes(std::max<std::int64_t>(0, slot.disk_left)) + " left, " +
           Bytes(shape.disk_bytes) + " needed";
  }
  return {};
}

std::string ZoneOf(const HostCapacity& h) {
  return h.zone.empty() ? "host:" + h.name : h.zone;
}

}  // namespace

FreeCapacity UsableCapacityOf(const HostCapacity& h) {
  return {Scaled(h.cpus, h.cpu_allocation_ratio),
          Scaled(h.memory_bytes, h.memory_allocation_ratio) - h.reserve_memory_bytes,
          h.disk_bytes - h.reserve_disk_bytes,
          h.max_instances > 0 ? h.max_instances : std::numeric_limits<std::int64_t>::max()};
}

FreeCapacity FreeCapacityOf(const HostCapacity& h) {
  auto free = UsableCapacityOf(h);
  free.cpus -= h.allocated_cpus;
  free.memory_bytes -= h.allocated_memory_bytes;
  free.disk_bytes -= h.allocated_disk_bytes;
  if (h.max_instances > 0) free.instances -= h.instances;
  return free;
}

Placement PlaceInstances(const std::vector<HostCapacity>& hosts, const PlacementRequest& request) {
  Placement out;
  std::vector<Slot> slots;
  slots.reserve(hosts.size());
  for (const auto& h : hosts) {
    if (!request.allowed_hosts.empty() && !request.allowed_hosts.contains(h.name)) {
      out.refusals[h.name] = "not one of the pool's hosts";
      continue;
    }
    if (!request.allowed_zones.empty() && !request.allowed_zones.contains(h.zone)) {
      out.refusals[h.name] = "zone '" + h.zone + "' is not one of the pool's zones";
      continue;
    }
    if (!h.healthy) {
      out.refusals[h.name] =
          "unhealthy" + (h.unhealthy_reason.empty() ? "" : ": " + h.unhealthy_reason);
      continue;
    }
    auto free = FreeCapacityOf(h);
    if (!h.resources_known) {
      // Far from overflow when instances are taken off it.
      constexpr std::int64_t kUnknown = std::numeric_limits<std::int64_t>::max() / 4;
      free.cpus = free.memory_bytes = free.disk_bytes = kUnknown;
    }
    Slot s{&h, free.cpus, free.memory_bytes, free.disk_bytes, free.instances, h.pool_instances, 0,
           {}, 0};
    s.refusal = Refusal(s, request.shape);
    slots.push_back(s);
  }
  // Instances of the pool per zone, for zone spreading (zones by index:
  // this loop runs count x hosts times).
  std::map<std::string, std::size_t> zone_index;
  for (auto& s : slots) {
    s.zone = zone_index.try_emplace(ZoneOf(*s.host), zone_index.size()).first->second;
  }
  std::vector<std::int64_t> zone_count(zone_index.size(), 0);
  // Named zones are failure domains and share evenly; a host without a zone
  // is a zone of its own and shares by its weight.
  std::vector<std::int64_t> zone_weight(zone_index.size(), 1);
  for (const auto& s : slots) {
    zone_count[s.zone] += s.pool_instances;
    if (s.host->zone.empty()) zone_weight[s.zone] = std::max<std::int64_t>(1, s.host->weight);
  }

  auto better = [&](const Slot& a, const Slot& b) {
    if (request.strategy == PlacementStrategy::kPack) {
      if (a.memory_left != b.memory_left) return a.memory_left < b.memory_left;
    } else {
      // Counts per weight, compared without division.
      auto za = zone_count[a.zone] * zone_weight[b.zone];
      auto zb = zone_count[b.zone] * zone_weight[a.zone];
      if (za != zb) return za < zb;
      // pool_instances / weight compared without division.
      auto wa = std::max<std::int64_t>(1, a.host->weight);
      auto wb = std::max<std::int64_t>(1, b.host->weight);
      if (a.pool_instances * wb != b.pool_instances * wa)
        return a.pool_instances * wb < b.pool_instances * wa;
      if (a.memory_left != b.memory_left) return a.memory_left > b.memory_left;
    }
    return a.host->name < b.host->name;
  };
  for (std::int64_t i = 0; i < request.count; ++i) {
    Slot* best = nullptr;
    for (auto& s : slots) {
      if (!s.refusal.empty()) continue;
      if (!best || better(s, *best)) best = &s;
    }
    if (!best) {
      out.unplaced = request.count - i;
      break;
    }
    best->cpus_left -= request.shape.cpus;
    best->memory_left -= request.shape.memory_bytes;
    best->disk_left -= request.shape.disk_bytes;
    best->instances_left -= 1;
    best->pool_instances += 1;
    best->placed += 1;
    zone_count[best->zone] += 1;
    best->refusal = Refusal(*best, request.shape);
    out.hosts.push_back(best->host->name);
  }
  if (out.unplaced > 0) {
    for (const auto& s : slots) out.refusals[s.host->name] = s.refusal;
  }
  return out;
}

std::string Placement::Summary() const {
  std::map<std::string, int> per_host;
  for (const auto& h : hosts) per_host[h]++;
  std::string text = "placed " + std::to_string(hosts.size()) + " of " +
                     std::to_string(hosts.size() + static_cast<std::size_t>(unplaced));
  if (!per_host.empty()) {
    text += " (";
    bool first = true;
    for (const auto& [h, n] : per_host) {
      text += (first ? "" : ", ") + h + " " + std::to_string(n);
      first = false;
    }
    text += ")";
  }
  if (unplaced > 0) {
    text += "; " + std::to_string(unplaced) + " not placed:";
    for (const auto& [h, why] : refusals) text += " " + h + ": " + why + ";";
    text.pop_back();
  }
  return text;
}

std::vector<std::string> RemovalOrder(
    const std::vector<std::pair<std::string, std::string>>& candidates,
    const std::map<std::string, std::int64_t>& pool_instances) {
  std::map<std::string, std::int64_t> per_host;
  for (const auto& [instance, host] : candidates) per_host[host]++;
  for (auto& [host, count] : per_host) {
    if (auto it = pool_instances.find(host); it != pool_instances.end())
      count = std::max(count, it->second);
  }
  std::vector<std::string> order;
  std::vector<std::size_t> taken(candidates.size(), 0);
  // Repeatedly the first candidate on the host with the most left.
  for (std::size_t n = 0; n < candidates.size(); ++n) {
    std::size_t pick = candidates.size();
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (taken[i]) continue;
      if (pick == candidates.size() ||
          per_host[candidates[i].second] > per_host[candidates[pick].second])
        pick = i;
    }
    taken[pick] = 1;
    per_host[candidates[pick].second]--;
    order.push_back(candidates[pick].first);
  }
  return order;
}

}  // namespace mps::scaling
