#pragma once
// The bus messages of the Nomad drain/purge actor (ServeNomad). `policy` is
// the policy's target config map ({str: str}): node_class / datacenter /
// node_pool, node_id_attribute, node_selector_strategy, node_drain_deadline,
// node_drain_ignore_system_jobs, node_filter_ignore_*.
//
// Requests (payload -> reply payload). Errors come back as bus errors:
//   kBadPayload for a missing or mistyped field (the field is named);
//   kHandlerFailed with app_code = NomadError kind name ("unreachable",
//   "forbidden", "node_gone", "timeout", ...) and Nomad's message;
//   kHandlerFailed with app_code "invalid_config" for a bad policy key (the
//   message starts with the key);
//   kHandlerFailed with app_code "filter" when the scale-in node filter
//   refuses the pool (a node initializing or draining; message lists them).
//   nomad.pool_nodes   {policy, index?: int, wait_ms?: int}
//       -> {nodes: [PoolNode], unmapped: [node id], own_node_id?: str, index?: int}
//      With `index`, a blocking query: answered once Nomad's node table moves
//      past `index` (at once for 0) or after `wait_ms` (default: the
//      connection's block_query_wait); the reply's `index` starts the next.
//   nomad.select       {policy, count: int >= 0, candidates: [instance name]}
//       -> {selected: [{node_id, instance}], note: str}
//      The SDK's scale-in path: list nodes with resources, ForScaleIn filter,
//      drop the autoscaler's own node, map nodes to instances, keep those whose
//      instance is a candidate, pick with node_selector_strategy.
//   nomad.drain        {policy, node_ids: [str]}  (idempotency key required)
//       -> {results: [DrainResult]}   in node_ids order; all drains run at once
//   nomad.purge        {node_ids: [str]}          -> {purged: [id], already_gone: [id]}
//   nomad.mark_eligible {node_ids: [str]}         -> {ok: [id], gone: [id]}
//   PoolNode    = {id, name, instance: str|null (node_id_attribute), status,
//                  drain: bool, eligible: bool, create_index: int}
//   DrainResult = {node_id, outcome: "drained"|"drain_failed"|"gone", reason,
//                  deadline_reached: bool, elapsed_ms: int}
//
// Events (topic = type; fields always include node_id):
//   node.draining {node_id, deadline_ns?, ...}   node.drained {node_id, ...}
//   node.drain_failed {node_id, reason, elapsed_ms}
//   node.purged {node_id, already_gone: bool}
#include <string_view>

namespace mps::nomad::bus_protocol {

inline constexpr std::string_view kPoolNodes = "nomad.pool_nodes";
inline constexpr std::string_view kSelect = "nomad.select";
inline constexpr std::string_view kDrain = "nomad.drain";
inline constexpr std::string_view kPurge = "nomad.purge";
inline constexpr std::string_view kMarkEligible = "nomad.mark_eligible";

inline constexpr std::string_view kNodeDraining = "node.draining";
inline constexpr std::string_view kNodeDrained = "node.drained";
inline constexpr std::string_view kNodeDrainFailed = "node.drain_failed";
inline constexpr std::string_view kNodePurged = "node.purged";

inline constexpr std::string_view kAppCodeInvalidConfig = "invalid_config";
inline constexpr std::string_view kAppCodeFilter = "filter";

}  // namespace mps::nomad::bus_protocol
