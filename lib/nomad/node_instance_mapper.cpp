#include "nomad/node_instance_mapper.h"

namespace mps::nomad {

NodeInstanceMapper::NodeInstanceMapper(std::string attribute)
    : attribute_(attribute.empty() ? std::string(kDefaultAttribute) : std::move(attribute)) {}

NodeInstanceMapper NodeInstanceMapper::FromPolicyConfig(
    const std::map<std::string, std::string>& config) {
  auto it = config.find("node_id_attribute");
  return NodeInstanceMapper(it == config.end() ? std::string() : it->second);
}

std::optional<std::string> NodeInstanceMapper::InstanceOf(const Node& node) const {
  auto it = node.attributes.find(attribute_);
  if (it == node.attributes.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

NodeInstanceMapper::Mapping NodeInstanceMapper::Map(const std::vector<Node>& nodes) const {
  Mapping m;
  for (const auto& n : nodes) {
    auto inst = InstanceOf(n);
    if (!inst) {
      m.unmapped.push_back("node " + n.id + " (" + n.name + ") has no attribute \"" + attribute_ +
                           "\" to name its instance");
      continue;
    }
    if (auto dup = m.node_by_instance.find(*inst); dup != m.node_by_instance.end()) {
      m.unmapped.push_back("node " + n.id + " and node " + dup->second + " both name instance \"" +
                           *inst + "\" through \"" + attribute_ + "\"");
      continue;
    }
    m.instance_by_node[n.id] = *inst;
    m.node_by_instance[*inst] = n.id;
  }
  return m;
}

}  // namespace mps::nomad
