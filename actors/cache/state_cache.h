#pragma once
// The state cache actor: the current view of every pool the autoscaler has
// asked about (instances, their Nomad nodes, operations in flight, launch
// failures, the last scaling event), so Status is answered from memory. It is
// also the only writer of the StateStore and the only publisher of the
// scale.*, instance.* and node.* events of the status endpoint: whoever
// changes the world reports to it, and it records before it answers.
//
// Messages are local (CAF), never serialized. StateCache wraps them in
// blocking calls for the gRPC threads, the PoolWatcher and the executor.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "bus/events.h"
#include "scaling/instance_namer.h"
#include "scaling/pool_policy.h"
#include "scaling/pool_state.h"
#include "scaling/scale_planner.h"

namespace mps::cache {

using ConfigMap = std::map<std::string, std::string>;

class StatusBoard;

struct CacheOptions {
  std::filesystem::path state_dir;        // holds state.db (scaling/state_store.h)
  std::shared_ptr<StatusBoard> board;     // may be null: Status always asks the actor
  bus::EventPublisher* events = nullptr;  // may be null; must outlive the actor
  scaling::InstanceNamer::Random random;  // empty: std::random_device
};

struct StatusQuery {
  ConfigMap policy;
};
struct StatusAnswer {
  std::string error;    // the policy's problems; empty when answered
  bool synced = false;  // the pool was reconciled at least once
  bool ready = false;
  std::int64_t count = 0;
  std::map<std::string, std::string> meta;
};

// The Status answers the cache actor posts after every message it handles
// (so at least once a second, with each observation), keyed by the policy
// map they answer. Status reads them here without a round trip to the actor:
// the zguide's Clone pattern within one process. An answer older than the
// caller's limit is not used (the actor is asked instead).
class StatusBoard {
 public:
  void Post(const ConfigMap& policy, const StatusAnswer& answer);
  std::optional<StatusAnswer> Read(const ConfigMap& policy,
                                   std::chrono::steady_clock::duration max_age) const;

 private:
  struct Entry;
  mutable std::shared_mutex mutex_;
  std::map<ConfigMap, std::shared_ptr<const Entry>> entries_;
};

struct PlanQuery {
  ConfigMap policy;
  scaling::ScaleRequest request;
  std::string reason;      // the autoscaler's, for the scale.requested event
  bool reconcile = false;  // ReconcilePlan instead of Plan (request.target unused)
};
struct PlanAnswer {
  std::string error;         // policy problems
  bool synced = false;       // false: the pool was never observed yet; no plan made
  bool unreachable = false;  // multipassd or Nomad could not be reached
  std::string pool;
  std::string request_id;
  scaling::PoolPolicy policy;
  scaling::ScalePlan plan;  // when ShouldExecute(), its operations are recorded
};

enum class OpPhase {
  kStarted,  // recorded (and persisted) before the action runs
  kSucceeded,
  kFailed,
  kUnresolved,  // the link broke mid-action: the outcome is learnt later
};

struct OpReport {
  std::string pool;
  scaling::OperationKind kind = scaling::OperationKind::kLaunch;
  std::string instance;
  std::string request_id;
  OpPhase phase = OpPhase::kStarted;
  std::string detail;     // error or reason
  std::string node_id;    // drains
  bool leftover = false;  // a failed launch left an instance behind
};

struct Observation {
  std::string pool;
  // PoolTarget::epoch when the listing began: a listing that raced a change
  // reported meanwhile (a delete, a launch) is stale and is not applied.
  std::uint64_t epoch = 0;
  // Each part may be absent: instance listings and node watches arrive apart.
  std::optional<nlohmann::json> instances;  // multipass.list reply
  std::string multipass_error;              // set when the list failed
  std::optional<nlohmann::json> nodes;      // nomad.pool_nodes reply
  std::string nomad_error;
};

struct PoolTarget {
  std::string pool;
  ConfigMap policy;
  std::uint64_t epoch = 0;  // changes whenever the cache's view changes by a report
};

struct UndrivenWork {
  scaling::PoolPolicy policy;
  std::vector<scaling::Operation> operations;
};

struct ScaleFinish {
  std::string pool;
  std::string request_id;
  bool ok = false;
  bool changed = false;  // something was launched, started or deleted
  std::string message;
};

caf::actor SpawnStateCache(caf::actor_system& system, CacheOptions options);

// Blocking calls into the cache actor, for threads outside CAF. Every call
// throws std::runtime_error when the actor does not answer within `timeout`.
class StateCache {
 public:
  StateCache(caf::actor_system& system, caf::actor actor,
             std::chrono::milliseconds timeout = std::chrono::seconds(5),
             std::shared_ptr<const StatusBoard> board = nullptr);

  StatusAnswer Status(const ConfigMap& policy) const;
  PlanAnswer Plan(const PlanQuery& query) const;
  void Report(const OpReport& report) const;
  void Observe(const Observation& observation) const;
  void Finish(const ScaleFinish& finish) const;
  void NodesPurged(const std::string& pool, const std::vector<std::string>& node_ids) const;
  std::vector<PoolTarget> Pools() const;
  // Operations of the pool nobody drives (restored after a restart, or left
  // unresolved by a broken link); they are handed out once.
  UndrivenWork TakeUndriven(const std::string& pool) const;
  // The state.pools reply.
  nlohmann::json View(const std::string& pool_filter) const;

  const caf::actor& actor() const { return actor_; }

 private:
  caf::actor_system& system_;
  caf::actor actor_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<const StatusBoard> board_;
};

}  // namespace mps::cache

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mps::cache::StatusQuery)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mps::cache::StatusAnswer)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mps::cache::PlanQuery)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mps::cache::PlanAnswer)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mps::cache::OpReport)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mps::cache::Observation)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mps::cache::ScaleFinish)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<mps::cache::PoolTarget>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mps::cache::UndrivenWork)
