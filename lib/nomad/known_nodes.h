#pragma once
// What the pool's node queries remember of the nodes they read in full: the
// attribute values that map a node to its instance. Nomad's node list has no
// attributes, so without this every answer read every node of the pool, one
// HTTP request each, on the path of every node watch (a warm scale out waits
// for several such answers).
//
// A node is read again only when what it is may have changed:
//  - its CreateIndex changed (purged, and registered again under its old ID);
//  - its ModifyIndex moved with no change of status, eligibility or drain in
//    the list: the node was updated in some other way (its attributes, say);
//  - its value of the attribute asked for is not known (never read for that
//    attribute, or the node lacked it: it may have it now).
// A status change is taken for no attribute change: the attribute names the
// machine (unique.hostname by default, the VM's hostname), which a client
// restarting on it does not change.
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "nomad/nomad_models.h"

namespace mps::nomad {

class KnownNodes {
 public:
  // The node's value of `attribute` when it is known for this listing of the
  // node; nullopt: read the node.
  std::optional<std::string> Lookup(const NodeStub& stub, const std::string& attribute);
  // A node read in full, as listed in `stub`: remembers its value of
  // `attribute` (forgets the node when it has none).
  void Remember(const NodeStub& stub, const Node& node, const std::string& attribute);
  // Forgets the nodes not in `listed` (a whole node list).
  void KeepOnly(const std::vector<NodeStub>& listed);
  std::size_t size() const;

 private:
  struct Known {
    std::uint64_t create_index = 0;
    std::uint64_t modify_index = 0;
    std::string status, eligibility;
    bool drain = false;
    std::map<std::string, std::string> values;  // attribute → value
  };
  static bool SameState(const Known& k, const NodeStub& stub);
  mutable std::mutex mutex_;
  std::map<std::string, Known> nodes_;
};

}  // namespace mps::nomad
