#pragma once
// Builders for pool states used by the status and planner tests.
#include <string>

#include "scaling/pool_policy.h"
#include "scaling/pool_state.h"

namespace mps::scaling::testing {

inline TimePoint Now() {
  return TimePoint(std::chrono::seconds(1'800'000'000));
}

inline PoolPolicy Policy(std::map<std::string, std::string> extra = {}) {
  extra.emplace("node_class", "web");
  extra.emplace("instance_image_name", "jammy");
  return ParsePoolPolicy(extra);
}

inline NomadNode Node(std::string id, NodeStatus status = NodeStatus::kReady,
                      std::uint64_t create_index = 1) {
  NomadNode node;
  node.id = std::move(id);
  node.status = status;
  node.create_index = create_index;
  return node;
}

// A running instance launched an hour ago with a ready node "node-<name>".
inline Instance Ready(std::string name) {
  Instance i;
  i.name = std::move(name);
  i.state = InstanceState::kRunning;
  i.launched_at = Now() - std::chrono::hours(1);
  i.first_seen_running_at = Now() - std::chrono::minutes(59);
  i.node = Node("node-" + i.name);
  return i;
}

// Running without a node, first seen running `ago` before Now().
inline Instance Unregistered(std::string name, std::chrono::seconds ago) {
  Instance i;
  i.name = std::move(name);
  i.state = InstanceState::kRunning;
  i.launched_at = Now() - ago - std::chrono::seconds(30);
  i.first_seen_running_at = Now() - ago;
  return i;
}

inline Instance WithState(std::string name, InstanceState state) {
  Instance i;
  i.name = std::move(name);
  i.state = state;
  i.launched_at = Now() - std::chrono::hours(2);
  return i;
}

inline PoolState State(std::vector<Instance> instances) {
  PoolState s;
  s.prefix = "web";
  s.instances = std::move(instances);
  return s;
}

}  // namespace mps::scaling::testing
