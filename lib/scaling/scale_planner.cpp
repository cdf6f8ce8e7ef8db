#include "scaling/scale_planner.h"

#include <algorithm>
#include <map>
#include <set>

#include "config/go_values.h"
#include "scaling/pool_status.h"

namespace mps::scaling {
namespace {

std::set<std::string> TakenNames(const PoolState& state) {
  std::set<std::string> taken;
  for (const auto& i : state.instances) taken.insert(i.name);
  for (const auto& op : state.operations) taken.insert(op.instance);
  taken.insert(state.failed_launch_leftovers.begin(), state.failed_launch_leftovers.end());
  return taken;
}

// Builds launches with fresh names; the names go into `taken` so one plan never
// hands out a name twice.
class Launcher {
 public:
  Launcher(const PoolPolicy& policy, InstanceNamer& namer, std::set<std::string> taken)
      : policy_(policy), namer_(namer), taken_(std::move(taken)) {}

  LaunchAction Next() {
    auto launch = LaunchActionFor(policy_, namer_.Next(policy_.instance_name_prefix, taken_));
    taken_.insert(launch.name);
    return launch;
  }

 private:
  const PoolPolicy& policy_;
  InstanceNamer& namer_;
  std::set<std::string> taken_;
};

InstanceShape ShapeOf(const PoolPolicy& policy) {
  InstanceShape shape;
  if (policy.instance_cpus) shape.cpus = *policy.instance_cpus;
  if (policy.instance_memory_bytes)
    shape.memory_bytes = static_cast<std::int64_t>(*policy.instance_memory_bytes);
  if (policy.instance_disk_bytes)
    shape.disk_bytes = static_cast<std::int64_t>(*policy.instance_disk_bytes);
  return shape;
}

// The pool's instances per host as placement and the balance of a scale in
// count them: counted instances, and launches not listed yet.
std::map<std::string, std::int64_t> PoolInstancesPerHost(const PoolState& state) {
  std::map<std::string, std::int64_t> per_host;
  for (const auto& instance : state.instances) {
    if (BelongsToPool(state.prefix, instance.name) && IsCounted(state, instance))
      ++per_host[instance.host];
  }
  for (const auto& op : state.operations) {
    if (op.kind == OperationKind::kLaunch && !state.Find(op.instance) &&
        !state.IsWarmPool(op.instance))
      ++per_host[op.host];
  }
  return per_host;
}

// Where `count` new instances of the pool go, `planned` (starts of this
// plan, by host) counted as already there. Without known hosts (a plugin
// of one host whose cache has not named it) everything goes to that host.
Placement PlaceLaunches(const PoolState& state, const PoolPolicy& policy, std::int64_t count,
                        const std::map<std::string, std::int64_t>& planned = {}) {
  if (state.capacity.empty()) {
    Placement placement;
    std::string only = state.hosts.size() == 1 ? state.hosts.begin()->first : std::string();
    placement.hosts.assign(static_cast<std::size_t>(std::max<std::int64_t>(0, count)), only);
    return placement;
  }
  auto per_host = PoolInstancesPerHost(state);
  // Launches of the pool the host does not list yet are not in its
  // allocation either: without them a capacity answer from before they
  // began would offer their room twice.
  std::map<std::string, std::int64_t> unlisted;
  for (const auto& op : state.operations) {
    if (op.kind == OperationKind::kLaunch && !state.Find(op.instance)) ++unlisted[op.host];
  }
  auto shape = ShapeOf(policy);
  std::vector<HostCapacity> hosts;
  for (const auto& [name, known] : state.capacity) {
    HostCapacity host = known;
    host.pool_instances = per_host[name];
    if (auto it = unlisted.find(name); it != unlisted.end()) {
      host.instances += it->second;
      host.allocated_cpus += it->second * shape.cpus;
      host.allocated_memory_bytes += it->second * shape.memory_bytes;
      host.allocated_disk_bytes += it->second * shape.disk_bytes;
    }
    if (auto it = planned.find(name); it != planned.end()) host.pool_instances += it->second;
    if (auto it = state.hosts.find(name); it != state.hosts.end() && !it->second.reachable) {
      host.healthy = false;
      host.unhealthy_reason = "unreachable: " + it->second.reason;
    }
    hosts.push_back(std::move(host));
  }
  PlacementRequest request;
  request.shape = shape;
  request.count = count;
  request.allowed_hosts = policy.hosts;
  request.allowed_zones = policy.zones;
  request.strategy = policy.placement_strategy;
  return PlaceInstances(hosts, request);
}

// Launches with fresh names, one per placed host.
std::vector<LaunchAction> PlacedLaunches(const Placement& placement, Launcher& launcher) {
  std::vector<LaunchAction> launches;
  for (const auto& host : placement.hosts) {
    launches.push_back(launcher.Next());
    launches.back().host = host;
  }
  return launches;
}

bool InBackoff(const PoolState& state, TimePoint now) {
  const auto& f = state.launch_failures;
  return f.next_retry_at && now < *f.next_retry_at;
}

std::string BackoffMessage(const PoolState& state) {
  const auto& f = state.launch_failures;
  return "backing off until " + FormatUtc(*f.next_retry_at) + " after " +
         std::to_string(f.consecutive) +
         " consecutive launch failure(s); last error: " + f.last_error;
}

bool IsDrainCandidate(const PoolState& state, const Instance& instance, const PoolPolicy& policy) {
  if (!instance.node || state.OperationOn(instance.name) || !IsCounted(state, instance)) {
    return false;
  }
  const NomadNode& node = *instance.node;
  bool status_ok =
      node.status == NodeStatus::kReady ||
      (node.status == NodeStatus::kInitializing && policy.node_filter_ignore_init.value_or(false));
  bool drain_ok = !node.draining || policy.node_filter_ignore_drain.value_or(false);
  // Like the SDK's scale-in: ineligible nodes are candidates unless the policy
  // explicitly says not to ignore ineligibility.
  bool eligibility_ok = node.eligible || policy.node_filter_ignore_ineligible.value_or(true);
  return status_ok && drain_ok && eligibility_ok;
}

bool NodeIsGone(const Instance& instance) {
  return instance.node && (instance.node->status == NodeStatus::kDown ||
                           instance.node->status == NodeStatus::kDisconnected);
}

ScalePlan Refuse(ScalePlan plan, std::string message) {
  plan.outcome = PlanOutcome::kRefused;
  plan.actions.clear();
  plan.message = std::move(message);
  return plan;
}

void AddSoftDeletedPurges(const PoolState& state, std::vector<ScaleAction>& actions) {
  for (const auto& instance : state.instances) {
    if (instance.state == InstanceState::kDeleted && !state.OperationOn(instance.name) &&
        BelongsToPool(state.prefix, instance.name)) {
      if (state.HostCutOff(instance.host)) continue;  // not while its host is unreachable
      actions.push_back(DeleteAction{instance.name, "soft-deleted but not purged", instance.host});
    }
  }
}

std::string RegistrationReason(const Instance& instance, const PoolPolicy& policy) {
  if (instance.state == InstanceState::kRunning) {
    return "never registered as a Nomad node within " +
           config::FormatGoDuration(policy.node_registration_timeout);
  }
  return "did not start within " + config::FormatGoDuration(policy.startup_timeout);
}

void PlanScaleOut(const PoolState& state, const PoolPolicy& policy, TimePoint now,
                  InstanceNamer& namer, ScalePlan& plan) {
  std::int64_t missing = plan.target - plan.current_count;
  std::vector<ScaleAction> deletes, starts;
  // A counted instance that never joined Nomad is no capacity: replace it.
  for (const auto& instance : state.instances) {
    if (BelongsToPool(state.prefix, instance.name) && IsCounted(state, instance) &&
        RegistrationTimedOut(state, instance, policy, now)) {
      deletes.push_back(DeleteAction{
          instance.name, RegistrationReason(instance, policy) + "; replaced by a new instance",
          instance.host});
      ++missing;
    }
  }
  // The warm pool first (prepared, stopped: seconds to start), then warming
  // instances nobody is preparing right now (already launched), then other
  // stopped and suspended instances of the pool: a start takes seconds where
  // a launch takes minutes, and they already carry the pool's image and
  // cloud-init.
  std::map<std::string, std::int64_t> started_per_host;
  auto take = [&](auto wanted) {
    for (const auto& instance : state.instances) {
      if (missing == 0) return;
      if (!BelongsToPool(state.prefix, instance.name) || state.OperationOn(instance.name) ||
          state.HostCutOff(instance.host) || !wanted(instance))
        continue;
      starts.push_back(StartAction{instance.name,
                                   state.IsWarmPool(instance.name),
                                   {},
                                   instance.node ? instance.node->id : std::string(),
                                   instance.host});
      ++started_per_host[instance.host];
      --missing;
    }
  };
  auto stopped = [](const Instance& i) {
    return i.state == InstanceState::kStopped || i.state == InstanceState::kSuspended;
  };
  take([&](const Instance& i) {
    return state.WarmPhaseOf(i.name) == WarmPhase::kWarm && stopped(i);
  });
  take([&](const Instance& i) {
    return state.WarmPhaseOf(i.name) == WarmPhase::kWarming &&
           (stopped(i) || (i.state == InstanceState::kRunning && i.node));
  });
  take([&](const Instance& i) { return !state.IsWarmPool(i.name) && stopped(i); });
  if (missing > 0) {
    if (policy.instance_image_name.empty()) {
      plan = Refuse(std::move(plan), "instance_image_name: required to scale out (pool " +
                                         state.prefix + " needs " + std::to_string(missing) +
                                         " new instance(s))");
      return;
    }
    if (InBackoff(state, now)) {
      plan.outcome = PlanOutcome::kBackingOff;
      plan.retry_at = state.launch_failures.next_retry_at;
      plan.message = BackoffMessage(state);
      return;
    }
  }
  Placement placement;
  if (missing > 0) placement = PlaceLaunches(state, policy, missing, started_per_host);
  std::int64_t placed = std::ssize(placement.hosts);
  // Nothing at all can be done: a refusal that costs nothing, so a Scale
  // the autoscaler repeats while the hosts are full is no retry storm.
  if (placement.unplaced > 0 && placed == 0 && deletes.empty() && starts.empty()) {
    plan = Refuse(std::move(plan), "cannot scale pool " + state.prefix + " out from " +
                                       std::to_string(plan.current_count) + " to " +
                                       std::to_string(plan.target) +
                                       ": no host can take a new "
                                       "instance: " +
                                       placement.Summary());
    return;
  }
  Launcher launcher(policy, namer, TakenNames(state));
  for (auto& action : starts) {
    auto& start = std::get<StartAction>(action);
    if (start.warm) start.replacement = launcher.Next().name;
  }
  plan.actions = std::move(deletes);
  plan.actions.insert(plan.actions.end(), starts.begin(), starts.end());
  for (auto& launch : PlacedLaunches(placement, launcher))
    plan.actions.push_back(std::move(launch));
  plan.outcome = PlanOutcome::kExecute;
  plan.message = "scale out from " + std::to_string(plan.current_count) + " to " +
                 std::to_string(plan.target) + ": " + std::to_string(placed) + " launch(es), " +
                 std::to_string(starts.size()) + " start(s), " + std::to_string(deletes.size()) +
                 " replacement(s)";
  auto warm_starts = std::count_if(starts.begin(), starts.end(), [](const ScaleAction& a) {
    return std::get<StartAction>(a).warm;
  });
  if (warm_starts > 0) plan.message += ", " + std::to_string(warm_starts) + " from the warm pool";
  // Launches that fit are done and the Scale is answered for them; the rest
  // is said here, per host, and the count simply stays below the target.
  if (placement.unplaced > 0 || state.capacity.size() > 1) {
    plan.message += "; " + placement.Summary();
  }
}

void PlanScaleIn(const PoolState& state, const PoolPolicy& policy, TimePoint now, ScalePlan& plan) {
  if (!state.nomad.reachable) {
    plan = Refuse(std::move(plan), "cannot scale in: Nomad unreachable: " + state.nomad.reason);
    return;
  }
  std::int64_t remove = plan.current_count - plan.target;
  std::vector<const Instance*> unregistered, gone, registering;
  std::vector<std::string> drain_candidates;
  for (const auto& instance : state.instances) {
    if (!BelongsToPool(state.prefix, instance.name) || !IsCounted(state, instance) ||
        state.OperationOn(instance.name)) {
      continue;
    }
    if (RegistrationTimedOut(state, instance, policy, now)) {
      unregistered.push_back(&instance);
    } else if (NodeIsGone(instance)) {
      gone.push_back(&instance);
    } else if (!instance.node) {
      registering.push_back(&instance);
    } else if (IsDrainCandidate(state, instance, policy)) {
      drain_candidates.push_back(instance.name);
    }
  }
  std::vector<std::string> purge_node_ids;
  auto per_host = PoolInstancesPerHost(state);
  auto take = [&](const std::vector<const Instance*>& group, auto reason) {
    for (const Instance* instance : group) {
      if (remove == 0) return;
      plan.actions.push_back(DeleteAction{instance->name, reason(*instance), instance->host});
      --per_host[instance->host];
      if (instance->node && policy.node_purge) purge_node_ids.push_back(instance->node->id);
      --remove;
    }
  };
  // Cheapest and least useful first: nothing runs on these, so no drain.
  take(unregistered, [&](const Instance& i) { return RegistrationReason(i, policy); });
  take(gone, [](const Instance& i) {
    return "Nomad node " + i.node->id + " is " + std::string(ToString(i.node->status));
  });
  AddSoftDeletedPurges(state, plan.actions);

  // Ready nodes before instances not registered yet: an instance "not
  // registered" in our view may have just registered (the view lags Nomad
  // by a moment), and deleting it would skip its drain.
  std::int64_t drained = 0;
  std::int64_t drainable = std::min<std::int64_t>(remove, std::ssize(drain_candidates));
  remove -= drainable;
  take(registering, [](const Instance&) { return std::string("not registered with Nomad yet"); });
  remove += drainable;
  if (remove > 0 && !drain_candidates.empty()) {
    drained = std::min<std::int64_t>(remove, static_cast<std::int64_t>(drain_candidates.size()));
    std::int64_t reuse = 0;
    if (policy.warm_pool_reuse_on_scale_in) {
      // Room in the warm pool, and under warm_pool_max_prepared once the
      // scale in is done.
      std::int64_t room = policy.warm_pool_size - std::ssize(state.warm);
      std::int64_t prepared_room = policy.WarmMaxPrepared() - plan.target - std::ssize(state.warm);
      reuse = std::clamp<std::int64_t>(std::min(room, prepared_room), 0, drained);
    }
    // The balance decides how many go from each host, the strategy which
    // ones within it: the hosts with the most instances of the pool first.
    std::vector<std::pair<std::string, std::string>> with_hosts;
    for (const auto& name : drain_candidates) with_hosts.emplace_back(name, state.Find(name)->host);
    auto order = RemovalOrder(with_hosts, per_host);
    std::map<std::string, std::int64_t> quota;
    for (std::int64_t i = 0; i < drained; ++i)
      ++quota[state.Find(order[static_cast<std::size_t>(i)])->host];
    for (const auto& [host, count] : quota) {
      SelectAndDrainAction drain;
      drain.count = count;
      drain.host = host;
      drain.strategy = policy.node_selector_strategy;
      for (const auto& [name, on] : with_hosts)
        if (on == host) drain.candidates.push_back(name);
      drain.deadline = policy.node_drain_deadline;
      drain.ignore_system_jobs = policy.node_drain_ignore_system_jobs;
      drain.purge_nodes = policy.node_purge;
      drain.reuse = std::min(reuse, count);
      reuse -= drain.reuse;
      plan.actions.push_back(std::move(drain));
    }
  }
  if (!purge_node_ids.empty()) {
    plan.actions.push_back(PurgeNodesAction{purge_node_ids, "instances deleted"});
  }
  std::int64_t shortfall = remove - drained;
  std::int64_t removable = plan.current_count - plan.target - shortfall;
  if (removable == 0) {
    plan = Refuse(std::move(plan), "cannot scale in from " + std::to_string(plan.current_count) +
                                       " to " + std::to_string(plan.target) +
                                       ": no instance of pool " + state.prefix +
                                       " has a ready, removable Nomad node");
    return;
  }
  plan.outcome = PlanOutcome::kExecute;
  plan.message = "scale in from " + std::to_string(plan.current_count) + " to " +
                 std::to_string(plan.target) + ": " + std::to_string(removable - drained) +
                 " direct delete(s), " + std::to_string(drained) + " node(s) to drain";
  std::int64_t reused = 0;
  std::map<std::string, std::int64_t> drained_per_host;
  for (const auto& action : plan.actions) {
    if (const auto* d = std::get_if<SelectAndDrainAction>(&action)) {
      reused += d->reuse;
      drained_per_host[d->host] += d->count;
    }
  }
  if (reused > 0)
    plan.message += " (up to " + std::to_string(reused) + " returned to the warm pool)";
  if (drained_per_host.size() > 1) {
    plan.message += " (drained per host:";
    for (const auto& [host, count] : drained_per_host)
      plan.message += " " + host + " " + std::to_string(count);
    plan.message += ")";
  }
  if (shortfall > 0) {
    plan.message += "; only " + std::to_string(removable) + " of " +
                    std::to_string(removable + shortfall) +
                    " can be removed now (other nodes are not ready or busy)";
  }
}

// The warm pool's upkeep, only when nothing else needs repair: the rest of
// the reconciliation goes first, and the warm pool never holds it up.
// refill_only: a Scale is in flight and owns the pool's instances; only
// warm launches are planned.
void PlanWarmPool(const PoolState& state, const PoolPolicy& policy, TimePoint now,
                  InstanceNamer& namer, ScalePlan& plan, std::vector<std::string>& notes,
                  bool refill_only) {
  std::int64_t warm_count = 0;
  std::int64_t counted = plan.current_count;
  for (const auto& [name, phase] : state.warm) {
    const Instance* instance = state.Find(name);
    bool busy = state.OperationOn(name) != nullptr;
    if (!instance) {
      if (!busy) continue;  // the cache forgets it; its launch never made it
      ++warm_count;         // launching
      continue;
    }
    if (busy || state.HostCutOff(instance->host)) {
      ++warm_count;
      continue;
    }
    if (phase == WarmPhase::kWarming) {
      if (instance->state == InstanceState::kRunning && !instance->node && state.nomad.reachable) {
        auto since = instance->first_seen_running_at ? instance->first_seen_running_at
                                                     : instance->launched_at;
        if (since && now - *since >= policy.node_registration_timeout) {
          plan.actions.push_back(
              DeleteAction{name,
                           "warm instance never registered as a Nomad node within " +
                               config::FormatGoDuration(policy.node_registration_timeout),
                           instance->host});
          continue;
        }
      }
      if (!refill_only && (instance->state == InstanceState::kRunning ||
                           instance->state == InstanceState::kStopped)) {
        plan.actions.push_back(
            PrepareWarmAction{name, instance->state == InstanceState::kStopped, instance->host});
      }
      ++warm_count;
      continue;
    }
    // Warm: beyond warm_pool_size (lowered, or turned off) it is deleted.
    if (!refill_only && warm_count >= policy.warm_pool_size) {
      plan.actions.push_back(DeleteAction{
          name, "warm pool holds more than warm_pool_size " + std::to_string(policy.warm_pool_size),
          instance->host});
      if (instance->node && policy.node_purge) {
        plan.actions.push_back(PurgeNodesAction{{instance->node->id}, "warm instance deleted"});
      }
      continue;
    }
    ++warm_count;
  }
  // Instances being drained are capacity until deleted, and with reuse
  // they may come back as warm ones: the refill leaves room for them.
  std::int64_t draining = 0;
  for (const auto& op : state.operations)
    if (op.kind == OperationKind::kDrain && !state.IsWarmPool(op.instance)) ++draining;
  std::int64_t wanted =
      policy.warm_pool_size - warm_count - (policy.warm_pool_reuse_on_scale_in ? draining : 0);
  std::int64_t room = policy.WarmMaxPrepared() - counted - warm_count - draining;
  std::int64_t launches = std::min(wanted, room);
  if (launches <= 0 || !plan.actions.empty()) return;
  if (policy.instance_image_name.empty()) {
    notes.push_back("warm pool not refilled: instance_image_name is not set");
    return;
  }
  if (!state.nomad.reachable) {
    notes.push_back("warm pool not refilled: Nomad unreachable");
    return;
  }
  if (InBackoff(state, now)) {
    notes.push_back("warm pool not refilled: " + BackoffMessage(state));
    return;
  }
  auto placement = PlaceLaunches(state, policy, launches);
  if (placement.hosts.empty()) {
    notes.push_back("warm pool not refilled: " + placement.Summary());
    return;
  }
  Launcher launcher(policy, namer, TakenNames(state));
  for (auto& launch : PlacedLaunches(placement, launcher)) {
    launch.warm = true;
    plan.actions.push_back(std::move(launch));
  }
  notes.push_back("warm pool refill: " + std::to_string(placement.hosts.size()) +
                  " warm launch(es) to reach " + std::to_string(policy.warm_pool_size));
  if (placement.unplaced > 0) notes.push_back(placement.Summary());
}

}  // namespace

LaunchAction LaunchActionFor(const PoolPolicy& policy, std::string name) {
  LaunchAction launch;
  launch.name = std::move(name);
  launch.image = policy.instance_image_name;
  launch.cpus = policy.instance_cpus;
  if (policy.instance_memory_bytes) {
    launch.memory = FormatMultipassSize(*policy.instance_memory_bytes);
  }
  if (policy.instance_disk_bytes) launch.disk = FormatMultipassSize(*policy.instance_disk_bytes);
  launch.cloud_init_path = policy.cloud_init_user_data_path;
  return launch;
}

std::string_view ToString(PlanOutcome o) {
  for (const auto& [value, name] : EnumNames(o))
    if (value == o) return name;
  return "unknown";
}

ScalePlan ScalePlanner::Plan(const PoolState& state, const PoolPolicy& policy,
                             const ScaleRequest& request, TimePoint now,
                             InstanceNamer& namer) const {
  ScalePlan plan;
  plan.dry_run = request.dry_run || policy.dry_run;
  plan.target = request.target;
  plan.max_parallel_launches = policy.max_parallel_launches;
  plan.current_count = ComputeStatus(state, policy, now).count;

  if (request.target < 0) {
    if (plan.dry_run) {
      plan.message = "dry-run without a target count: nothing to plan";
      return plan;
    }
    return Refuse(std::move(plan),
                  "target count must not be negative, got " + std::to_string(request.target));
  }
  if (request.target > policy.max_instances) {
    return Refuse(std::move(plan),
                  "requested count " + std::to_string(request.target) + " exceeds max_instances " +
                      std::to_string(policy.max_instances) + " of pool " + state.prefix);
  }
  if (!plan.dry_run && state.active_scale_request_id) {
    return Refuse(std::move(plan), *state.active_scale_request_id == request.request_id
                                       ? "scale request " + request.request_id + " of pool " +
                                             state.prefix + " is already in progress"
                                       : "another scale request (" +
                                             *state.active_scale_request_id + ") of pool " +
                                             state.prefix + " is in progress");
  }
  if (!plan.dry_run && !state.multipass.reachable) {
    return Refuse(std::move(plan), "multipassd unreachable: " + state.multipass.reason);
  }
  // Without the pool's Nomad view the count itself is a guess (which
  // instances joined, which are draining), so nothing is changed on it.
  if (!plan.dry_run && !state.nomad.reachable && request.target != plan.current_count) {
    return Refuse(std::move(plan), "cannot scale pool " + state.prefix +
                                       ": its Nomad nodes cannot be read (Nomad unreachable: " +
                                       state.nomad.reason + ")");
  }
  if (request.target == plan.current_count) {
    plan.message = "pool " + state.prefix + " already has " + std::to_string(plan.current_count) +
                   " instance(s)";
    return plan;
  }
  if (request.target > plan.current_count) {
    PlanScaleOut(state, policy, now, namer, plan);
  } else {
    PlanScaleIn(state, policy, now, plan);
  }
  return plan;
}

ScalePlan ScalePlanner::ReconcilePlan(const PoolState& state, const PoolPolicy& policy,
                                      TimePoint now, InstanceNamer& namer) const {
  ScalePlan plan;
  plan.dry_run = policy.dry_run;
  plan.max_parallel_launches = policy.max_parallel_launches;
  plan.current_count = ComputeStatus(state, policy, now).count;
  plan.target = plan.current_count;
  std::vector<std::string> notes;
  if (state.active_scale_request_id) {
    // The refill does not wait for the Scale: its launches only take launch
    // slots the Scale leaves free (the controller's rule).
    if (state.multipass.reachable)
      PlanWarmPool(state, policy, now, namer, plan, notes, /*refill_only=*/true);
    plan.background = true;
    if (plan.actions.empty()) {
      plan.message = "scale request " + *state.active_scale_request_id + " in progress";
      return plan;
    }
    plan.outcome = PlanOutcome::kExecute;
    plan.message = "pool " + state.prefix + ": " + notes.back();
    return plan;
  }
  if (!state.multipass.reachable) {
    return Refuse(std::move(plan), "multipassd unreachable: " + state.multipass.reason);
  }

  std::int64_t replacements = 0;
  // "Never registered" is only known while Nomad can be read.
  for (const auto& instance : state.instances) {
    if (state.nomad.reachable && BelongsToPool(state.prefix, instance.name) &&
        IsCounted(state, instance) && RegistrationTimedOut(state, instance, policy, now)) {
      plan.actions.push_back(
          DeleteAction{instance.name, RegistrationReason(instance, policy), instance.host});
      ++replacements;
    }
  }
  for (const auto& name : state.failed_launch_leftovers) {
    const Instance* instance = state.Find(name);
    std::string host = state.HostOf(name);
    if (BelongsToPool(state.prefix, name) && !state.OperationOn(name) && !state.HostCutOff(host) &&
        !(instance && IsCounted(state, *instance))) {
      plan.actions.push_back(DeleteAction{name, "leftover of a failed launch", host});
    }
  }
  AddSoftDeletedPurges(state, plan.actions);
  if (replacements > 0) {
    if (policy.instance_image_name.empty()) {
      notes.push_back("no replacement launched: instance_image_name is not set");
    } else if (InBackoff(state, now)) {
      notes.push_back("no replacement launched: " + BackoffMessage(state));
    } else {
      Launcher launcher(policy, namer, TakenNames(state));
      auto placement = PlaceLaunches(state, policy, replacements);
      for (auto& launch : PlacedLaunches(placement, launcher))
        plan.actions.push_back(std::move(launch));
      notes.push_back(std::to_string(placement.hosts.size()) + " replacement(s)");
      if (placement.unplaced > 0) notes.push_back(placement.Summary());
    }
  }
  if (policy.node_purge && !state.orphan_nodes.empty() && state.nomad.reachable) {
    PurgeNodesAction purge;
    purge.reason = "node of an instance that no longer exists";
    for (const auto& node : state.orphan_nodes) purge.node_ids.push_back(node.id);
    plan.actions.push_back(std::move(purge));
  }
  if (plan.actions.empty()) {
    PlanWarmPool(state, policy, now, namer, plan, notes, /*refill_only=*/false);
    plan.background = !plan.actions.empty();
  }
  if (plan.actions.empty()) {
    plan.message = "pool " + state.prefix + " needs no repair";
    if (!notes.empty()) plan.message += "; " + notes.front();
    return plan;
  }
  plan.outcome = PlanOutcome::kExecute;
  plan.message =
      "reconcile pool " + state.prefix + ": " + std::to_string(plan.actions.size()) + " action(s)";
  for (const auto& note : notes) plan.message += "; " + note;
  return plan;
}

}  // namespace mps::scaling
