#pragma once
// Whether drains on the simulated Nomad ran side by side, told from the order
// of its node events rather than from wall-clock time: Nomad indexes order
// everything the simulated Nomad does, however slow the machine is.
// Header only; the includer links mps_nomad_sim.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cluster_sim/nomad/nomad_sim.h"

namespace mps::testing {

// The indexes at which the node's first drain started and first completed
// (0 when not seen).
inline std::pair<std::uint64_t, std::uint64_t> DrainIndexes(const mps::sim::NomadSim& sim,
                                                            const std::string& node_id) {
  std::uint64_t started = 0, completed = 0;
  auto node = sim.NodeJson(node_id);
  if (!node) return {0, 0};
  for (const auto& e : node->at("Events")) {
    const std::string message = e.at("Message");
    const std::uint64_t index = e.at("CreateIndex");
    if (started == 0 && message == "Node drain strategy set") started = index;
    if (completed == 0 && message.rfind("Node drain complete", 0) == 0) completed = index;
  }
  return {started, completed};
}

// Every node's drain started before any of them completed.
inline bool DrainsOverlapped(const mps::sim::NomadSim& sim,
                             const std::vector<std::string>& node_ids) {
  std::uint64_t last_start = 0, first_completion = UINT64_MAX;
  for (const auto& id : node_ids) {
    auto [started, completed] = DrainIndexes(sim, id);
    if (started == 0 || completed == 0) return false;
    last_start = std::max(last_start, started);
    first_completion = std::min(first_completion, completed);
  }
  return last_start < first_completion;
}

}  // namespace mps::testing
