#pragma once
// What multipass-target serves on its status endpoint (plugin config
// `status_address`; events on bus::EventsEndpointFor(status_address)). Only
// reads are served there: every key admitted is a read-only key.
//
// Requests (payload -> reply payload):
//   state.pools   {pool?: str}  -> {pools: [PoolView]}   (pool = instance name prefix)
//   events.replay (bus/events.h)
//   PoolView = {pool, count: int, ready: bool, reasons: [str],
//               last_event_ns: int|null, scale_request: str|null (running Scale),
//               operations: [{kind: "launch"|"start"|"drain"|"delete", instance,
//                             started_ns: int, request_id}],
//               instances: [{name, state, counted: bool, node_id: str|null,
//                            node_status: str|null, launched_ns: int|null}],
//               launch_failures: {consecutive: int, last_error: str, next_retry_ns: int|null}}
//
// Events, one stream for every pool (topic = type; fields always include pool):
//   scale.requested {pool, request_id, target, current, dry_run: bool, reason}
//   scale.planned   {pool, request_id, outcome, message, actions: [str]}
//   scale.completed {pool, request_id, count, message}
//   scale.failed    {pool, request_id, error}
//   instance.launching {pool, name, image}   instance.running {pool, name}
//   instance.failed    {pool, name, error}   instance.deleted {pool, name, reason}
//   node.registered {pool, instance, node_id}
//   node.draining   {pool, instance, node_id}
//   node.drained    {pool, instance, node_id}
//   node.drain_failed {pool, instance, node_id, reason}
//   node.purged     {pool, node_id}
#include <string_view>

namespace mps::cache::bus_protocol {

inline constexpr std::string_view kPools = "state.pools";

inline constexpr std::string_view kScaleRequested = "scale.requested";
inline constexpr std::string_view kScalePlanned = "scale.planned";
inline constexpr std::string_view kScaleCompleted = "scale.completed";
inline constexpr std::string_view kScaleFailed = "scale.failed";
inline constexpr std::string_view kInstanceLaunching = "instance.launching";
inline constexpr std::string_view kInstanceRunning = "instance.running";
inline constexpr std::string_view kInstanceFailed = "instance.failed";
inline constexpr std::string_view kInstanceDeleted = "instance.deleted";
inline constexpr std::string_view kNodeRegistered = "node.registered";
inline constexpr std::string_view kNodeDraining = "node.draining";
inline constexpr std::string_view kNodeDrained = "node.drained";
inline constexpr std::string_view kNodeDrainFailed = "node.drain_failed";
inline constexpr std::string_view kNodePurged = "node.purged";

}  // namespace mps::cache::bus_protocol
