#pragma once
// Nomad node → Multipass instance name, through a node attribute whose value
// is the instance name (default unique.hostname = the VM's hostname).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nomad/nomad_models.h"

namespace mps::nomad {

class NodeInstanceMapper {
 public:
  static constexpr const char* kDefaultAttribute = "unique.hostname";

  explicit NodeInstanceMapper(std::string attribute = kDefaultAttribute);
  // Reads `node_id_attribute` (empty/absent → unique.hostname).
  static NodeInstanceMapper FromPolicyConfig(const std::map<std::string, std::string>& config);

  const std::string& attribute() const { return attribute_; }
  // nullopt when the node lacks the attribute (or it is empty): never guessed.
  std::optional<std::string> InstanceOf(const Node& node) const;

  struct Mapping {
    std::map<std::string, std::string> instance_by_node;  // node ID → instance
    std::map<std::string, std::string> node_by_instance;  // instance → node ID
    std::vector<std::string> unmapped;  // "node <id> (<name>) has no attribute ..."
  };
  Mapping Map(const std::vector<Node>& nodes) const;

 private:
  std::string attribute_;
};

}  // namespace mps::nomad
