#pragma once
// The messages of the state cache actor. Each is a typed CAF message: its
// fields are listed once (VisitFields) and CAF inspects it through the
// contract codec (bus/caf_contract.h), so no message type is "unsafe".
//
// Who sends what:
//   pool controller -> cache: Plan (request), OpReport (send, or request for
//     a write-ahead acknowledgement), ScaleFinish (request), NodesPurged,
//     TakeUndriven (request)
//   pool watcher    -> cache: Observation (send), HostCapacityReport (send),
//     Pools (request)
//   gRPC Status     -> cache: StatusQuery (request, only when the board is stale)
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "bus/caf_contract.h"
#include "contracts/host.h"
#include "contracts/multipass.h"
#include "contracts/nomad.h"
#include "scaling/pool_state.h"
#include "scaling/scale_planner.h"

namespace mps::cache {

using ConfigMap = std::map<std::string, std::string>;

using status_atom = caf::atom_constant<caf::atom("cstatus")>;
using plan_atom = caf::atom_constant<caf::atom("cplan")>;
using report_atom = caf::atom_constant<caf::atom("creport")>;
using observe_atom = caf::atom_constant<caf::atom("cobserve")>;
using finish_atom = caf::atom_constant<caf::atom("cfinish")>;
using purged_atom = caf::atom_constant<caf::atom("cpurged")>;
using pools_atom = caf::atom_constant<caf::atom("cpools")>;
using undriven_atom = caf::atom_constant<caf::atom("cundriven")>;
using ack_atom = caf::atom_constant<caf::atom("cack")>;
using stats_atom = caf::atom_constant<caf::atom("cstats")>;
using capacity_atom = caf::atom_constant<caf::atom("ccapacity")>;

struct StatusQuery {
  ConfigMap policy;
  template <class V>
  void VisitFields(V& v) {
    v.Required("policy", policy);
  }
};

struct StatusAnswer {
  std::string error;    // the policy's problems; empty when answered
  bool synced = false;  // the pool was reconciled at least once
  bool ready = false;
  std::int64_t count = 0;
  std::map<std::string, std::string> meta;
  template <class V>
  void VisitFields(V& v) {
    v.Optional("error", error);
    v.Optional("synced", synced);
    v.Optional("ready", ready);
    v.Optional("count", count);
    v.Optional("meta", meta);
  }
};

struct PlanQuery {
  ConfigMap policy;
  scaling::ScaleRequest request;
  std::string reason;      // the autoscaler's, for the scale.requested event
  bool reconcile = false;  // ReconcilePlan instead of Plan (request.target unused)
  template <class V>
  void VisitFields(V& v) {
    v.Required("policy", policy);
    v.Required("request", request);
    v.Optional("reason", reason);
    v.Optional("reconcile", reconcile);
  }
};

struct PlanAnswer {
  std::string error;          // policy problems, or the store refused the plan
  bool synced = false;        // false: the pool was never observed in time; no plan made
  bool unreachable = false;   // multipassd or Nomad could not be reached
  bool store_failed = false;  // `error` is the state store's: nothing was recorded or done
  std::string not_ready;      // why the pool is not ready, when not synced
  std::string pool;
  std::string request_id;
  scaling::ScalePlan plan;  // when ShouldExecute(), its operations are recorded
  template <class V>
  void VisitFields(V& v) {
    v.Optional("error", error);
    v.Optional("synced", synced);
    v.Optional("unreachable", unreachable);
    v.Optional("store_failed", store_failed);
    v.Optional("not_ready", not_ready);
    v.Optional("pool", pool);
    v.Optional("request_id", request_id);
    v.Optional("plan", plan);
  }
};

enum class OpPhase {
  kStarted,  // recorded (and persisted) before the action runs
  kSucceeded,
  kFailed,
  kUnresolved,  // the link broke mid-action: the outcome is learnt later
};
inline constexpr std::array<std::pair<OpPhase, std::string_view>, 4> EnumNames(OpPhase) {
  return {{{OpPhase::kStarted, "started"},
           {OpPhase::kSucceeded, "succeeded"},
           {OpPhase::kFailed, "failed"},
           {OpPhase::kUnresolved, "unresolved"}}};
}

struct OpReport {
  std::string pool;
  scaling::OperationKind kind = scaling::OperationKind::kLaunch;
  std::string instance;
  std::string request_id;
  OpPhase phase = OpPhase::kStarted;
  std::string detail;     // error or reason
  std::string node_id;    // drains
  bool leftover = false;  // a failed launch left an instance behind
  // A delete of a warm-pool instance that failed to prepare or to start: it
  // counts as a launch failure, so a warm pool that keeps failing backs off.
  bool warm_failure = false;
  std::string host;  // the Multipass host it runs on
  // A launch given up because its host was lost (Operation::host_lost) and
  // multipassd never got it: not a launch failure, so no backoff.
  bool host_lost = false;
  template <class V>
  void VisitFields(V& v) {
    v.Optional("host", host);
    v.Optional("host_lost", host_lost);
    v.Required("pool", pool);
    v.Required("kind", kind);
    v.Required("instance", instance);
    v.Optional("request_id", request_id);
    v.Required("phase", phase);
    v.Optional("detail", detail);
    v.Optional("node_id", node_id);
    v.Optional("leftover", leftover);
    v.Optional("warm_failure", warm_failure);
  }
};

struct Observation {
  std::string pool;
  // The Multipass host the instance listing (or its error) is of; empty:
  // the one host.
  std::string host;
  // PoolTarget::epoch when the listing began: a listing that raced a change
  // reported meanwhile (a delete, a launch) is stale and is not applied.
  std::uint64_t epoch = 0;
  // Each part may be absent: instance listings and node watches arrive apart.
  std::optional<contracts::multipass::ListReply> instances;
  std::string multipass_error;  // set when the list failed
  std::optional<contracts::nomad::PoolNodesReply> nodes;
  std::string nomad_error;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Optional("host", host);
    v.Optional("epoch", epoch);
    v.Optional("instances", instances);
    v.Optional("multipass_error", multipass_error);
    v.Optional("nodes", nodes);
    v.Optional("nomad_error", nomad_error);
  }
};

// From the watcher: one host's `host.capacity` answer (or why it did not
// answer), for placement. Only asked when the plugin has several hosts.
struct HostCapacityReport {
  std::string host;
  std::optional<contracts::host::CapacityReply> capacity;
  std::string error;
  template <class V>
  void VisitFields(V& v) {
    v.Required("host", host);
    v.Optional("capacity", capacity);
    v.Optional("error", error);
  }
};

struct PoolTarget {
  std::string pool;
  ConfigMap policy;
  std::uint64_t epoch = 0;  // changes whenever the cache's view changes by a report
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("policy", policy);
    v.Optional("epoch", epoch);
  }
};

struct PoolTargets {
  std::vector<PoolTarget> pools;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pools", pools);
  }
};

// Operations of a pool nobody drives (restored after a restart, or left
// unresolved by a broken link); handed out once.
struct UndrivenWork {
  std::vector<scaling::Operation> operations;
  template <class V>
  void VisitFields(V& v) {
    v.Required("operations", operations);
  }
};

struct ScaleFinish {
  std::string pool;
  std::string request_id;
  bool ok = false;
  bool changed = false;  // something was launched, started or deleted
  std::string message;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("request_id", request_id);
    v.Required("ok", ok);
    v.Optional("changed", changed);
    v.Optional("message", message);
  }
};

struct NodesPurged {
  std::string pool;
  std::vector<std::string> node_ids;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("node_ids", node_ids);
  }
};

// How many messages of each kind the cache has handled (for benchmarks and
// metrics: the cost of a Scale in cache work must not grow with waiting).
struct CacheStats {
  std::map<std::string, std::uint64_t> messages;  // by kind: "plan", "report", ...
  template <class V>
  void VisitFields(V& v) {
    v.Required("messages", messages);
  }
};

MPS_CAF_INSPECT_BY_CONTRACT(CacheStats)
MPS_CAF_INSPECT_BY_CONTRACT(StatusQuery)
MPS_CAF_INSPECT_BY_CONTRACT(StatusAnswer)
MPS_CAF_INSPECT_BY_CONTRACT(PlanQuery)
MPS_CAF_INSPECT_BY_CONTRACT(PlanAnswer)
MPS_CAF_INSPECT_BY_CONTRACT(OpReport)
MPS_CAF_INSPECT_BY_CONTRACT(Observation)
MPS_CAF_INSPECT_BY_CONTRACT(HostCapacityReport)
MPS_CAF_INSPECT_BY_CONTRACT(PoolTargets)
MPS_CAF_INSPECT_BY_CONTRACT(UndrivenWork)
MPS_CAF_INSPECT_BY_CONTRACT(ScaleFinish)
MPS_CAF_INSPECT_BY_CONTRACT(NodesPurged)

}  // namespace mps::cache
