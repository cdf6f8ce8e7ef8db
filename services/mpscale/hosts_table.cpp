#include "mpscale/hosts_table.h"

#include <cmath>
#include <cstdio>
#include <iomanip>
#include <limits>
#include <sstream>

#include "contracts/codec.h"
#include "scaling/host_capacity_view.h"

namespace mps::mpscale {
namespace {

scaling::HostCapacity PlacementView(const HostAnswer& a) {
  return a.capacity ? scaling::PlacementHostOf(a.host, *a.capacity, 0)
                    : scaling::UnreachableHost(a.host, a.error, 0);
}

std::string Health(const scaling::HostCapacity& view) {
  return view.healthy ? "ok" : view.unhealthy_reason;
}

}  // namespace

std::string FormatBytes(std::int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (std::abs(v) >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char out[32];
  std::snprintf(out, sizeof out, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return out;
}

std::string FormatHostsTable(const std::vector<HostAnswer>& answers) {
  std::ostringstream out;
  auto row = [&](const std::string& host, const std::string& zone, const std::string& instances,
                 const std::string& cpus, const std::string& memory, const std::string& disk,
                 const std::string& health) {
    out << std::left << std::setw(16) << host << " " << std::setw(10) << zone << " "
        << std::setw(13) << instances << " " << std::setw(10) << cpus << " " << std::setw(23)
        << memory << " " << std::setw(25) << disk << " " << health << "\n";
  };
  row("HOST", "ZONE", "INSTANCES", "CPUS FREE", "MEMORY FREE", "DISK FREE", "HEALTH");
  for (const auto& a : answers) {
    auto view = PlacementView(a);
    std::string zone = a.host.zone.empty() ? "-" : a.host.zone;
    if (!a.capacity) {
      row(a.host.name, zone, "-", "-", "-", "-", Health(view));
      continue;
    }
    const auto& c = *a.capacity;
    auto usable = scaling::UsableCapacityOf(view);
    auto free = scaling::FreeCapacityOf(view);
    std::string instances = std::to_string(c.allocated.instances);
    if (c.headroom.max_instances > 0) instances += "/" + std::to_string(c.headroom.max_instances);
    if (c.allocated.estimated > 0)
      instances += " (" + std::to_string(c.allocated.estimated) + " est.)";
    std::string health = Health(view);
    if (!c.totals.error.empty()) health += "; totals unknown: " + c.totals.error;
    row(a.host.name, zone, instances,
        std::to_string(free.cpus) + " of " + std::to_string(usable.cpus),
        FormatBytes(free.memory_bytes) + " of " + FormatBytes(usable.memory_bytes),
        FormatBytes(free.disk_bytes) + " of " + FormatBytes(usable.disk_bytes), health);
  }
  return out.str();
}

nlohmann::json HostsJson(const std::vector<HostAnswer>& answers) {
  auto out = nlohmann::json::array();
  for (const auto& a : answers) {
    auto view = PlacementView(a);
    nlohmann::json h = {{"name", a.host.name},
                        {"zone", a.host.zone},
                        {"address", a.host.hostd_address},
                        {"healthy", view.healthy},
                        {"health", Health(view)}};
    if (a.capacity) {
      h["capacity"] = contracts::Encode(*a.capacity);
      auto free = scaling::FreeCapacityOf(view);
      h["free"] = {{"cpus", free.cpus},
                   {"memory_bytes", free.memory_bytes},
                   {"disk_bytes", free.disk_bytes}};
      if (a.capacity->headroom.max_instances > 0) h["free"]["instances"] = free.instances;
    } else {
      h["error"] = a.error;
    }
    out.push_back(std::move(h));
  }
  return out;
}

}  // namespace mps::mpscale
