#include "nomad/node_selector.h"

#include <algorithm>
#include <cmath>

#include "nomad/nomad_error.h"

namespace mps::nomad {
namespace {

constexpr NodeSelectorStrategy kAll[] = {
    NodeSelectorStrategy::least_busy, NodeSelectorStrategy::empty,
    NodeSelectorStrategy::empty_ignore_system, NodeSelectorStrategy::newest_create_index,
    NodeSelectorStrategy::oldest_create_index};

void Shortfall(Selection& s, std::size_t num, NodeSelectorStrategy strategy) {
  if (s.node_ids.size() < num) {
    s.note = "strategy " + std::string(StrategyName(strategy)) + " found " +
             std::to_string(s.node_ids.size()) + " of " + std::to_string(num) + " nodes";
  }
}

Selection ByCreateIndex(const std::vector<SelectionCandidate>& candidates, std::size_t num,
                        bool newest) {
  // The Go client sorts by CreateIndex descending; the raw list is in ID order.
  std::vector<const NodeStub*> sorted;
  for (const auto& c : candidates) sorted.push_back(&c.node);
  std::stable_sort(sorted.begin(), sorted.end(), [](const NodeStub* a, const NodeStub* b) {
    return a->create_index > b->create_index;
  });
  Selection s;
  std::size_t n = std::min(num, sorted.size());
  if (newest) {
    for (std::size_t i = 0; i < n; ++i) s.node_ids.push_back(sorted[i]->id);
  } else {
    for (std::size_t i = 0; i < n; ++i) s.node_ids.push_back(sorted[sorted.size() - 1 - i]->id);
  }
  return s;
}

Selection Empty(const std::vector<SelectionCandidate>& candidates, std::size_t num,
                bool ignore_system) {
  // The SDK walks the Go client's list, which is CreateIndex descending.
  std::vector<const SelectionCandidate*> order;
  for (const auto& c : candidates) order.push_back(&c);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return a->node.create_index > b->node.create_index;
  });
  Selection s;
  for (const auto* cp : order) {
    const auto& c = *cp;
    if (s.node_ids.size() >= num) break;
    if (!c.allocations) continue;  // could not read: treat as busy
    bool busy = std::any_of(c.allocations->begin(), c.allocations->end(), [&](const Allocation& a) {
      if (ignore_system && a.job_type == "system") return false;
      return !a.Terminal();
    });
    if (!busy) s.node_ids.push_back(c.node.id);
  }
  return s;
}

Selection LeastBusy(const std::vector<SelectionCandidate>& candidates, std::size_t num) {
  std::vector<std::pair<int, const NodeStub*>> scored;
  for (const auto& c : candidates) {
    auto score = LeastBusyScore(c);
    if (!score) {
      return {{},
              "least_busy: node " + c.node.id +
                  (c.allocations ? " has no usable NodeResources" : ": allocations unreadable") +
                  ", so nothing is selected"};
    }
    scored.emplace_back(*score, &c.node);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  Selection s;
  for (std::size_t i = 0; i < std::min(num, scored.size()); ++i) {
    s.node_ids.push_back(scored[i].second->id);
  }
  return s;
}

}  // namespace

NodeSelectorStrategy ParseNodeSelectorStrategy(std::string_view name) {
  if (name.empty()) return NodeSelectorStrategy::least_busy;
  std::string valid;
  for (auto s : kAll) {
    if (StrategyName(s) == name) return s;
    valid += (valid.empty() ? "" : ", ") + std::string(StrategyName(s));
  }
  throw NomadConfigError("node_selector_strategy", "unsupported node selector strategy \"" +
                                                       std::string(name) + "\"; valid: " + valid);
}

std::string_view StrategyName(NodeSelectorStrategy s) {
  switch (s) {
    case NodeSelectorStrategy::least_busy:
      return "least_busy";
    case NodeSelectorStrategy::empty:
      return "empty";
    case NodeSelectorStrategy::empty_ignore_system:
      return "empty_ignore_system";
    case NodeSelectorStrategy::newest_create_index:
      return "newest_create_index";
    case NodeSelectorStrategy::oldest_create_index:
      return "oldest_create_index";
  }
  return "unknown";
}

std::optional<int> LeastBusyScore(const SelectionCandidate& c) {
  if (!c.allocations || !c.node.node_resources) return std::nullopt;
  const NodeCapacity reserved = c.node.reserved_resources.value_or(NodeCapacity{});
  const double total_mem =
      static_cast<double>(c.node.node_resources->memory_mb - reserved.memory_mb);
  const double total_cpu =
      static_cast<double>(c.node.node_resources->cpu_shares - reserved.cpu_shares);
  if (total_mem <= 0 || total_cpu <= 0) return std::nullopt;
  double used_mem = 0, used_cpu = 0;
  for (const auto& a : *c.allocations) {
    if (a.client_status != "running") continue;
    used_mem += static_cast<double>(a.memory_mb);
    used_cpu += static_cast<double>(a.cpu);
  }
  const double mem_pct = std::ceil(100.0 * used_mem / total_mem);
  const double cpu_pct = std::ceil(100.0 * used_cpu / total_cpu);
  return static_cast<int>(std::ceil((mem_pct + cpu_pct) / 2.0));
}

bool TrustsEmptyAllocationLists(NodeSelectorStrategy strategy) {
  return strategy == NodeSelectorStrategy::empty ||
         strategy == NodeSelectorStrategy::empty_ignore_system;
}

Selection SelectNodes(NodeSelectorStrategy strategy,
                      const std::vector<SelectionCandidate>& candidates, std::size_t num,
                      const std::string& allocation_gap) {
  if (!allocation_gap.empty() && TrustsEmptyAllocationLists(strategy)) {
    throw NomadError(NomadError::Kind::forbidden, 403,
                     "node_selector_strategy " + std::string(StrategyName(strategy)) +
                         " refuses to pick nodes: " + allocation_gap +
                         " (a busy node would look empty)");
  }
  Selection s;
  switch (strategy) {
    case NodeSelectorStrategy::least_busy:
      s = LeastBusy(candidates, num);
      break;
    case NodeSelectorStrategy::empty:
      s = Empty(candidates, num, false);
      break;
    case NodeSelectorStrategy::empty_ignore_system:
      s = Empty(candidates, num, true);
      break;
    case NodeSelectorStrategy::newest_create_index:
      s = ByCreateIndex(candidates, num, true);
      break;
    case NodeSelectorStrategy::oldest_create_index:
      s = ByCreateIndex(candidates, num, false);
      break;
  }
  if (s.note.empty()) Shortfall(s, num, strategy);
  return s;
}

}  // namespace mps::nomad
