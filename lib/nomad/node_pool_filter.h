#pragma once
// Which Nomad nodes belong to a scaling pool, with the autoscaler SDK's rules
// (sdk/helper/scaleutils/nodepool and FilterNodesWithOptions): a pool key
// counts when present, even empty; initializing, then draining nodes are
// errors; down nodes are skipped; any error empties the result.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nomad/nomad_config.h"
#include "nomad/nomad_models.h"

namespace mps::nomad {

class NomadApi;

struct NodeFilterResult {
  std::vector<NodeStub> kept;
  std::vector<std::string> errors;  // "node <id> is initializing", ...; at most 10
  bool ok() const { return errors.empty(); }
};

class NodePoolFilter {
 public:
  // The only class value that matches nodes with an empty NodeClass; an empty
  // node_class matches no node at all (the SDK's rule).
  static constexpr const char* kDefaultClass = "autoscaler-default-pool";

  // Reads node_class, datacenter, node_pool and node_filter_ignore_{init,drain,ineligible}
  // from a policy target map. Throws NomadConfigError naming the key; none of
  // the three pool keys present → "node pool identification method required".
  static NodePoolFilter FromPolicyConfig(const std::map<std::string, std::string>& config);

  // The scale-in variant: ineligible nodes are kept unless the policy said otherwise.
  NodePoolFilter ForScaleIn() const;

  bool InPool(const NodeStub& node) const;
  // SDK FilterNodesWithOptions, then `own_node_id` (the autoscaler's own node)
  // is dropped from what was kept: its state still counts for the errors.
  NodeFilterResult Filter(const std::vector<NodeStub>& nodes,
                          const std::string& own_node_id = "") const;
  // The same pool as a go-bexpr expression for GET /v1/nodes?filter=.
  std::string ServerFilterExpression() const;
  // "node_class=web datacenter=dc1" for messages.
  std::string Describe() const;

  std::optional<std::string> node_class;
  std::optional<std::string> datacenter;
  std::optional<std::string> node_pool;
  std::optional<bool> ignore_init;
  std::optional<bool> ignore_drain;
  std::optional<bool> ignore_ineligible;
};

// The node the autoscaler itself runs on: NOMAD_ALLOC_ID → GET
// /v1/allocation/:id → NodeID. nullopt when the variable is unset; a failed
// lookup throws NomadError (the SDK only logs it, the caller decides).
std::optional<std::string> FindOwnNodeId(const NomadApi& api, const EnvLookup& env);

}  // namespace mps::nomad
