#include "nomad/known_nodes.h"

#include <set>

namespace mps::nomad {

bool KnownNodes::SameState(const Known& k, const NodeStub& stub) {
  return k.status == stub.status && k.eligibility == stub.scheduling_eligibility &&
         k.drain == stub.drain;
}

std::optional<std::string> KnownNodes::Lookup(const NodeStub& stub, const std::string& attribute) {
  std::lock_guard lock(mutex_);
  auto it = nodes_.find(stub.id);
  if (it == nodes_.end()) return std::nullopt;
  Known& k = it->second;
  if (k.create_index != stub.create_index) {
    nodes_.erase(it);
    return std::nullopt;
  }
  if (k.modify_index != stub.modify_index) {
    if (SameState(k, stub)) {  // changed in some way the list does not show
      nodes_.erase(it);
      return std::nullopt;
    }
    k.modify_index = stub.modify_index;
    k.status = stub.status;
    k.eligibility = stub.scheduling_eligibility;
    k.drain = stub.drain;
  }
  auto value = k.values.find(attribute);
  if (value == k.values.end()) return std::nullopt;
  return value->second;
}

void KnownNodes::Remember(const NodeStub& stub, const Node& node, const std::string& attribute) {
  std::lock_guard lock(mutex_);
  auto value = node.attributes.find(attribute);
  if (value == node.attributes.end() || value->second.empty()) {
    nodes_.erase(stub.id);
    return;
  }
  Known& k = nodes_[stub.id];
  if (k.create_index != stub.create_index || k.modify_index != stub.modify_index) k.values.clear();
  k.create_index = stub.create_index;
  k.modify_index = stub.modify_index;
  k.status = stub.status;
  k.eligibility = stub.scheduling_eligibility;
  k.drain = stub.drain;
  k.values[attribute] = value->second;
}

void KnownNodes::KeepOnly(const std::vector<NodeStub>& listed) {
  std::set<std::string> ids;
  for (const auto& stub : listed) ids.insert(stub.id);
  std::lock_guard lock(mutex_);
  std::erase_if(nodes_, [&](const auto& entry) { return !ids.contains(entry.first); });
}

std::size_t KnownNodes::size() const {
  std::lock_guard lock(mutex_);
  return nodes_.size();
}

}  // namespace mps::nomad
