#pragma once
// The Nomad Autoscaler's node selector strategies, as pure functions over the
// candidates the caller gives (nodes whose instance is in the pool).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nomad/nomad_models.h"

namespace mps::nomad {

enum class NodeSelectorStrategy {
  least_busy,
  empty,
  empty_ignore_system,
  newest_create_index,
  oldest_create_index,
};

// Empty → least_busy. Unknown → NomadConfigError on node_selector_strategy
// listing the valid names.
NodeSelectorStrategy ParseNodeSelectorStrategy(std::string_view name);
std::string_view StrategyName(NodeSelectorStrategy s);

struct SelectionCandidate {
  NodeStub node;  // node_resources / reserved_resources needed by least_busy
  // nullopt = reading the allocations failed (empty: counts as busy;
  // least_busy: selects nothing, as the SDK does on any API error).
  std::optional<std::vector<Allocation>> allocations;
};

struct Selection {
  std::vector<std::string> node_ids;  // in the strategy's order
  std::string note;                   // why fewer than asked were picked; empty when all were found
};

// least_busy score: ceil((ceil(mem%) + ceil(cpu%)) / 2) over running allocations.
// nullopt when the node has no resources or zero capacity.
std::optional<int> LeastBusyScore(const SelectionCandidate& c);

// Whether the strategy takes an empty allocation list as proof of an empty
// node (empty, empty_ignore_system).
bool TrustsEmptyAllocationLists(NodeSelectorStrategy strategy);

// `allocation_gap`: why the allocation lists may be incomplete (the token
// cannot read jobs in some namespace, TokenCapabilities::JobReadGap()); empty
// when they are complete. A strategy that trusts empty lists then refuses:
// NomadError(forbidden) naming the gap, instead of picking a busy node.
Selection SelectNodes(NodeSelectorStrategy strategy,
                      const std::vector<SelectionCandidate>& candidates, std::size_t num,
                      const std::string& allocation_gap = "");

}  // namespace mps::nomad
