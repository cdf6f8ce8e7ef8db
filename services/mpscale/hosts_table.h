#pragma once
// `mpscale hosts`: each host's host.capacity answer (contracts/host.h) as a
// table or JSON, with the headroom worked out the way placement does.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/hosts_file.h"
#include "contracts/host.h"

namespace mps::mpscale {

struct HostAnswer {
  config::HostEntry host;
  std::optional<contracts::host::CapacityReply> capacity;
  std::string error;  // why hostd did not answer (capacity unset)
};

// "12.5 GiB"
std::string FormatBytes(std::int64_t bytes);
// One row per host: instances, free of usable CPUs, memory and disk, and
// health ("ok" or why placement would pass it over).
std::string FormatHostsTable(const std::vector<HostAnswer>& answers);
// [{"name", "zone", "address", "capacity": reply | "error": text,
//   "free": {...}, "healthy", "health"}...]
nlohmann::json HostsJson(const std::vector<HostAnswer>& answers);

}  // namespace mps::mpscale
