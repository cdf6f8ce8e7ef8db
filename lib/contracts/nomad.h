#pragma once
// The bus contract of the Nomad drain/purge actor (ServeNomad). `policy` is
// the policy's target config map: node_class / datacenter / node_pool,
// node_id_attribute, node_selector_strategy, node_drain_deadline,
// node_drain_ignore_system_jobs, node_filter_ignore_*.
//
// Errors come back as bus errors: kBadPayload naming the field; or
// kHandlerFailed with an AppCode (contracts/app_code.h): the NomadError kind
// (kUnreachable, kForbidden, kNodeGone, kTimeout, ...), kInvalidConfig for a
// bad policy key (the message starts with the key), kFilter when the
// scale-in node filter refuses the pool (the message lists the nodes).
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mps::contracts::nomad {

using PolicyMap = std::map<std::string, std::string>;

struct PoolNode {
  std::string id;
  std::string name;
  std::optional<std::string> instance;  // value of node_id_attribute
  std::string status;                   // "initializing", "ready", "down", "disconnected"
  bool drain = false;
  bool eligible = true;
  std::uint64_t create_index = 0;
  template <class V>
  void VisitFields(V& v) {
    v.Required("id", id);
    v.Optional("name", name);
    v.Nullable("instance", instance);
    v.Required("status", status);
    v.Required("drain", drain);
    v.Required("eligible", eligible);
    v.Optional("create_index", create_index);
  }
};

struct PoolNodesReply {
  std::vector<PoolNode> nodes;
  std::vector<std::string> unmapped;  // node ids without the attribute
  std::optional<std::string> own_node_id;
  std::optional<std::uint64_t> index;  // blocking queries: starts the next
  template <class V>
  void VisitFields(V& v) {
    v.Required("nodes", nodes);
    v.Optional("unmapped", unmapped);
    v.Optional("own_node_id", own_node_id);
    v.Optional("index", index);
  }
};
// With `index`, a blocking query: answered once Nomad's node table moves past
// `index` (at once for 0) or after `wait_ms` (default: the connection's
// block_query_wait).
struct PoolNodesRequest {
  static constexpr std::string_view kType = "nomad.pool_nodes";
  using Reply = PoolNodesReply;
  PolicyMap policy;
  std::optional<std::uint64_t> index;
  std::optional<std::int64_t> wait_ms;
  template <class V>
  void VisitFields(V& v) {
    v.Required("policy", policy);
    v.Optional("index", index);
    v.Optional("wait_ms", wait_ms);
  }
};

struct SelectedNode {
  std::string node_id;
  std::string instance;
  template <class V>
  void VisitFields(V& v) {
    v.Required("node_id", node_id);
    v.Required("instance", instance);
  }
};
struct SelectReply {
  std::vector<SelectedNode> selected;
  std::string note;  // why fewer than asked, if so
  template <class V>
  void VisitFields(V& v) {
    v.Required("selected", selected);
    v.Optional("note", note);
  }
};
// The SDK's scale-in path: list nodes with resources, ForScaleIn filter, drop
// the autoscaler's own node, map nodes to instances, keep those whose
// instance is a candidate, pick `count` with node_selector_strategy.
struct SelectRequest {
  static constexpr std::string_view kType = "nomad.select";
  using Reply = SelectReply;
  PolicyMap policy;
  std::int64_t count = 0;
  std::vector<std::string> candidates;
  template <class V>
  void VisitFields(V& v) {
    v.Required("policy", policy);
    v.Required("count", count);
    v.Required("candidates", candidates);
  }
};

enum class DrainOutcome { kDrained, kDrainFailed, kGone };
inline constexpr std::array<std::pair<DrainOutcome, std::string_view>, 3> EnumNames(DrainOutcome) {
  return {{{DrainOutcome::kDrained, "drained"},
           {DrainOutcome::kDrainFailed, "drain_failed"},
           {DrainOutcome::kGone, "gone"}}};
}

struct DrainResult {
  std::string node_id;
  DrainOutcome outcome = DrainOutcome::kDrainFailed;
  std::string reason;
  bool deadline_reached = false;
  std::int64_t elapsed_ms = 0;
  template <class V>
  void VisitFields(V& v) {
    v.Required("node_id", node_id);
    v.Required("outcome", outcome);
    v.Optional("reason", reason);
    v.Optional("deadline_reached", deadline_reached);
    v.Optional("elapsed_ms", elapsed_ms);
  }
};
struct DrainReply {
  std::vector<DrainResult> results;  // in node_ids order
  template <class V>
  void VisitFields(V& v) {
    v.Required("results", results);
  }
};
// All drains run at once; needs an idempotency key.
struct DrainRequest {
  static constexpr std::string_view kType = "nomad.drain";
  using Reply = DrainReply;
  PolicyMap policy;
  std::vector<std::string> node_ids;
  template <class V>
  void VisitFields(V& v) {
    v.Required("policy", policy);
    v.Required("node_ids", node_ids);
  }
};

struct PurgeReply {
  std::vector<std::string> purged;
  std::vector<std::string> already_gone;
  template <class V>
  void VisitFields(V& v) {
    v.Required("purged", purged);
    v.Required("already_gone", already_gone);
  }
};
struct PurgeRequest {
  static constexpr std::string_view kType = "nomad.purge";
  using Reply = PurgeReply;
  std::vector<std::string> node_ids;
  template <class V>
  void VisitFields(V& v) {
    v.Required("node_ids", node_ids);
  }
};

struct MarkEligibleReply {
  std::vector<std::string> ok;
  std::vector<std::string> gone;
  template <class V>
  void VisitFields(V& v) {
    v.Required("ok", ok);
    v.Required("gone", gone);
  }
};
struct MarkEligibleRequest {
  static constexpr std::string_view kType = "nomad.mark_eligible";
  using Reply = MarkEligibleReply;
  std::vector<std::string> node_ids;
  // false: mark the nodes ineligible (a warm-pool instance about to stop).
  bool eligible = true;
  template <class V>
  void VisitFields(V& v) {
    v.Required("node_ids", node_ids);
    v.Optional("eligible", eligible);
  }
};

// Events of the actor (topic = kType), published as its drains and purges go.
struct NodeDraining {
  static constexpr std::string_view kType = "node.draining";
  std::string node_id;
  std::string deadline;  // Go duration, as the policy gave it
  bool ignore_system_jobs = false;
  template <class V>
  void VisitFields(V& v) {
    v.Required("node_id", node_id);
    v.Required("deadline", deadline);
    v.Required("ignore_system_jobs", ignore_system_jobs);
  }
};
struct NodeDrained {
  static constexpr std::string_view kType = "node.drained";
  std::string node_id;
  std::int64_t elapsed_ms = 0;
  bool deadline_reached = false;
  template <class V>
  void VisitFields(V& v) {
    v.Required("node_id", node_id);
    v.Required("elapsed_ms", elapsed_ms);
    v.Required("deadline_reached", deadline_reached);
  }
};
struct NodeDrainFailed {
  static constexpr std::string_view kType = "node.drain_failed";
  std::string node_id;
  std::string reason;
  std::int64_t elapsed_ms = 0;
  template <class V>
  void VisitFields(V& v) {
    v.Required("node_id", node_id);
    v.Required("reason", reason);
    v.Required("elapsed_ms", elapsed_ms);
  }
};
struct NodePurged {
  static constexpr std::string_view kType = "node.purged";
  std::string node_id;
  bool already_gone = false;
  template <class V>
  void VisitFields(V& v) {
    v.Required("node_id", node_id);
    v.Required("already_gone", already_gone);
  }
};

}  // namespace mps::contracts::nomad
