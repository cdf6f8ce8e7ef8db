#pragma once
// Turns a Scale request (or a reconciliation tick) and the cached pool state
// into an ordered list of actions. Pure: the caller executes the plan, records
// operations in the PoolState and persists them in the StateStore.
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "scaling/instance_namer.h"
#include "scaling/pool_policy.h"
#include "scaling/pool_state.h"

namespace mps::scaling {

struct ScaleRequest {
  std::int64_t target = 0;  // absolute desired count; -1 only with dry_run
  bool dry_run = false;
  std::string request_id;
  template <class V>
  void VisitFields(V& v) {
    v.Required("target", target);
    v.Optional("dry_run", dry_run);
    v.Optional("request_id", request_id);
  }
};

// Launch one instance; empty memory/disk/cpus = the daemon's default.
struct LaunchAction {
  std::string name;
  std::string image;
  std::optional<int> cpus;
  std::string memory;  // Multipass size text, e.g. "4G"
  std::string disk;
  std::string cloud_init_path;  // read by the launcher, not here
  // A warm-pool instance: once running, the controller waits for its node,
  // marks it ineligible and stops the VM (it is never counted).
  bool warm = false;
  // The host placement chose (PlaceInstances); empty when the pool's hosts
  // are not known to the planner (the plugin's one host).
  std::string host{};
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
    v.Optional("warm", warm);
    v.Optional("host", host);
    v.Optional("image", image);
    v.Optional("cpus", cpus);
    v.Optional("memory", memory);
    v.Optional("disk", disk);
    v.Optional("cloud_init_path", cloud_init_path);
  }
};

// The pool's launch parameters for an instance called `name`.
LaunchAction LaunchActionFor(const PoolPolicy& policy, std::string name);

// Start a stopped or resume a suspended instance of the pool. `warm`: a warm
// instance taken by a scale out; the controller waits until its node is ready
// again and marks it eligible, and if the start fails or the node does not
// come back within node_registration_timeout it deletes the instance (purging
// its node) and launches a cold replacement within the same run.
struct StartAction {
  std::string name;
  bool warm = false;
  std::string replacement;  // warm: the fresh name of the cold launch replacing a failure
  std::string node_id;      // warm: its (down) node, purged if the start fails
  std::string host{};       // the instance's (its replacement is launched there too)
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
    v.Optional("warm", warm);
    v.Optional("replacement", replacement);
    v.Optional("node_id", node_id);
    v.Optional("host", host);
  }
};

// Finish preparing a warming instance whose preparation nobody drives (its
// launch ended in an earlier run or process): wait for its node, mark it
// ineligible, stop the VM.
struct PrepareWarmAction {
  std::string name;
  // Already stopped (a crash came between the stop and its record): only
  // the stop is recorded again.
  bool stopped = false;
  std::string host{};
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
    v.Optional("stopped", stopped);
    v.Optional("host", host);
  }
};

// Delete with purge (the name is free again afterwards).
struct DeleteAction {
  std::string name;
  std::string reason;
  std::string host{};
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
    v.Optional("reason", reason);
    v.Optional("host", host);
  }
};

// The Nomad side picks `count` nodes among the candidates' nodes with the
// strategy, drains them in parallel, then the instances of the drained nodes
// are deleted (an instance whose node did not drain is kept), then their nodes
// are purged when purge_nodes. A pool over several hosts gets one per host
// (candidates all on `host`), so the strategy picks within each host the
// number the balance takes from it.
struct SelectAndDrainAction {
  std::int64_t count = 0;
  NodeSelectorStrategy strategy = NodeSelectorStrategy::kLeastBusy;
  std::vector<std::string> candidates;  // instance names, each with a ready node
  std::chrono::nanoseconds deadline{0};
  bool ignore_system_jobs = false;
  bool purge_nodes = false;
  // warm_pool_reuse_on_scale_in: up to this many drained instances are
  // stopped and returned to the warm pool instead of deleted.
  std::int64_t reuse = 0;
  std::string host{};  // every candidate's
  template <class V>
  void VisitFields(V& v) {
    v.Optional("reuse", reuse);
    v.Optional("host", host);
    v.Required("count", count);
    v.Required("strategy", strategy);
    v.Required("candidates", candidates);
    v.Required("deadline", deadline);
    v.Optional("ignore_system_jobs", ignore_system_jobs);
    v.Optional("purge_nodes", purge_nodes);
  }
};

struct PurgeNodesAction {
  std::vector<std::string> node_ids;
  std::string reason;
  template <class V>
  void VisitFields(V& v) {
    v.Required("node_ids", node_ids);
    v.Optional("reason", reason);
  }
};

using ScaleAction = std::variant<LaunchAction, StartAction, DeleteAction, SelectAndDrainAction,
                                 PurgeNodesAction, PrepareWarmAction>;

enum class PlanOutcome {
  kExecute,     // run the actions in order
  kNoop,        // nothing to do: the plugin answers Scale with ABORTED (no cooldown)
  kRefused,     // message says why; the plugin answers Scale with an error
  kBackingOff,  // launches would be needed but the pool is in launch backoff
};
inline constexpr std::array<std::pair<PlanOutcome, std::string_view>, 4> EnumNames(PlanOutcome) {
  return {{{PlanOutcome::kExecute, "execute"},
           {PlanOutcome::kNoop, "noop"},
           {PlanOutcome::kRefused, "refused"},
           {PlanOutcome::kBackingOff, "backing_off"}}};
}
std::string_view ToString(PlanOutcome o);

struct ScalePlan {
  PlanOutcome outcome = PlanOutcome::kNoop;
  bool dry_run = false;  // computed and logged, never executed
  std::string message;   // human summary or the reason of a refusal/backoff
  std::int64_t current_count = 0;
  std::int64_t target = 0;
  // Order matters: deletes, then starts, then launches, then drains, then
  // node purges. Launches may run concurrently, at most max_parallel_launches
  // at a time.
  std::vector<ScaleAction> actions;
  int max_parallel_launches = 1;
  std::optional<TimePoint> retry_at;  // set with kBackingOff
  // Only the warm pool's upkeep: it does not hold the pool's Scale slot, so a
  // Scale arriving meanwhile is planned at once (warming instances are not
  // counted and a Scale only takes warm instances no operation owns).
  bool background = false;

  template <class V>
  void VisitFields(V& v) {
    v.Required("outcome", outcome);
    v.Optional("dry_run", dry_run);
    v.Optional("message", message);
    v.Optional("current_count", current_count);
    v.Optional("target", target);
    v.Optional("actions", actions);
    v.Optional("max_parallel_launches", max_parallel_launches);
    v.Optional("retry_at", retry_at);
    v.Optional("background", background);
  }

  bool ShouldExecute() const { return outcome == PlanOutcome::kExecute && !dry_run; }
};

class ScalePlanner {
 public:
  // For a Scale call. Refuses: a negative target without dry-run, a target
  // above max_instances, another Scale of the pool in flight (not checked for
  // dry-run, which changes nothing), multipassd unreachable, Nomad unreachable
  // when scaling in, and a scale out without instance_image_name.
  ScalePlan Plan(const PoolState& state, const PoolPolicy& policy, const ScaleRequest& request,
                 TimePoint now, InstanceNamer& namer) const;

  // For the periodic reconciliation, between Scale calls: replaces instances
  // that never registered (delete + launch, keeping the count), deletes
  // leftovers of failed launches and soft-deleted instances of the pool, and
  // purges orphan nodes when node_purge. Noop while a Scale is in flight.
  // With warm_pool_size: finishes warming instances nobody prepares, deletes
  // warm instances that failed to prepare or exceed warm_pool_size, and
  // launches warm instances up to warm_pool_size (never past
  // warm_pool_max_prepared or max_instances, never in launch backoff).
  // While a Scale is in flight only the warm pool's refill launches are
  // planned (as a background plan): the Scale owns everything else.
  ScalePlan ReconcilePlan(const PoolState& state, const PoolPolicy& policy, TimePoint now,
                          InstanceNamer& namer) const;
};

}  // namespace mps::scaling
