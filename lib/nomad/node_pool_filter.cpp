#include "nomad/node_pool_filter.h"

#include "config/go_values.h"
#include "nomad/nomad_api.h"
#include "nomad/nomad_error.h"

namespace mps::nomad {
namespace {

std::optional<std::string> NonEmpty(const std::map<std::string, std::string>& m,
                                    const std::string& key) {
  auto it = m.find(key);
  if (it == m.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

// The SDK tests a pool key by presence: `node_class = ""` is an identifier.
std::optional<std::string> Present(const std::map<std::string, std::string>& m,
                                   const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

std::optional<bool> BoolKey(const std::map<std::string, std::string>& m, const std::string& key) {
  auto v = NonEmpty(m, key);
  if (!v) return std::nullopt;
  auto b = config::ParseGoBool(*v);
  if (!b) throw NomadConfigError(key, "expected a boolean (true/false/1/0), got \"" + *v + "\"");
  return b;
}

std::string Quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

NodePoolFilter NodePoolFilter::FromPolicyConfig(const std::map<std::string, std::string>& config) {
  NodePoolFilter f;
  f.node_class = Present(config, "node_class");
  f.datacenter = Present(config, "datacenter");
  f.node_pool = Present(config, "node_pool");
  if (!f.node_class && !f.datacenter && !f.node_pool) {
    throw NomadConfigError("node_class",
                           "node pool identification method required: set node_class, "
                           "datacenter or node_pool");
  }
  f.ignore_init = BoolKey(config, "node_filter_ignore_init");
  f.ignore_drain = BoolKey(config, "node_filter_ignore_drain");
  f.ignore_ineligible = BoolKey(config, "node_filter_ignore_ineligible");
  return f;
}

NodePoolFilter NodePoolFilter::ForScaleIn() const {
  NodePoolFilter f = *this;
  if (!f.ignore_ineligible) f.ignore_ineligible = true;
  return f;
}

bool NodePoolFilter::InPool(const NodeStub& node) const {
  if (node_class) {
    // The SDK's class rule: a named class matches nodes of that class; only
    // kDefaultClass reaches class-less nodes, so an empty class matches none.
    const bool member =
        node.node_class.empty() ? *node_class == kDefaultClass : node.node_class == *node_class;
    if (!member) return false;
  }
  if (datacenter && node.datacenter != *datacenter) return false;
  if (node_pool && node.node_pool != *node_pool) return false;
  return true;
}

NodeFilterResult NodePoolFilter::Filter(const std::vector<NodeStub>& nodes,
                                        const std::string& own_node_id) const {
  // SDK FilterNodesWithOptions: at most 10 errors, initializing is checked
  // before draining, and any error empties the result.
  NodeFilterResult r;
  for (const auto& n : nodes) {
    if (r.errors.size() >= 10) break;
    if (!InPool(n)) continue;
    if (!n.drain && n.status == "ready") {
      if (n.scheduling_eligibility == "eligible" || ignore_ineligible.value_or(false))
        r.kept.push_back(n);
      continue;
    }
    if (n.status == "initializing" && !ignore_init.value_or(false)) {
      r.errors.push_back("node " + n.id + " is initializing");
      continue;
    }
    if (n.drain && !ignore_drain.value_or(false)) {
      r.errors.push_back("node " + n.id + " is draining");
      continue;
    }
    // down, disconnected, or a tolerated initializing/draining node: skipped
  }
  if (!r.errors.empty()) {
    r.kept.clear();
    return r;
  }
  // The SDK drops its own node only after the filter: it still counts as an error.
  if (!own_node_id.empty()) {
    std::erase_if(r.kept, [&](const NodeStub& n) { return n.id == own_node_id; });
  }
  return r;
}

std::string NodePoolFilter::ServerFilterExpression() const {
  std::vector<std::string> terms;
  if (node_class && node_class->empty()) {
    terms.push_back("NodeClass is empty and NodeClass is not empty");  // none, as InPool
  } else if (node_class && *node_class == kDefaultClass) {
    terms.push_back("(NodeClass == \"\" or NodeClass == " + Quoted(kDefaultClass) + ")");
  } else if (node_class) {
    terms.push_back("NodeClass == " + Quoted(*node_class));
  }
  if (datacenter) terms.push_back("Datacenter == " + Quoted(*datacenter));
  if (node_pool) terms.push_back("NodePool == " + Quoted(*node_pool));
  std::string out;
  for (const auto& t : terms) out += (out.empty() ? "" : " and ") + t;
  return out;
}

std::string NodePoolFilter::Describe() const {
  std::string out;
  auto add = [&](const char* k, const std::optional<std::string>& v) {
    if (v) out += (out.empty() ? "" : " ") + std::string(k) + "=" + *v;
  };
  add("node_class", node_class);
  add("datacenter", datacenter);
  add("node_pool", node_pool);
  return out;
}

std::optional<std::string> FindOwnNodeId(const NomadApi& api, const EnvLookup& env) {
  auto alloc_id = env ? env("NOMAD_ALLOC_ID") : std::nullopt;
  if (!alloc_id || alloc_id->empty()) return std::nullopt;
  auto alloc = api.GetAllocation(*alloc_id);
  if (alloc.node_id.empty()) return std::nullopt;
  return alloc.node_id;
}

}  // namespace mps::nomad
