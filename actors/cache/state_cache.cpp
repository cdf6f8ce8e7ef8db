#include "cache/state_cache.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "bus/caf_bridge.h"
#include "cache/pool_metrics.h"
#include "contracts/status.h"
#include "scaling/cloud_init_file.h"
#include "scaling/host_capacity_view.h"
#include "scaling/pool_observation.h"
#include "scaling/pool_status.h"
#include "scaling/state_store.h"

namespace mps::cache {
namespace {

namespace ev = contracts::status;
using json = nlohmann::json;
using scaling::OperationKind;

using plan_wait_atom = caf::atom_constant<caf::atom("cplanwait")>;

// How long a purged node is remembered (Pool::purged_nodes): far longer than
// a node list can lag behind, short enough to stay small.
constexpr auto kPurgedMemory = std::chrono::minutes(10);

struct Pool {
  ConfigMap config;
  scaling::PoolPolicy policy;
  scaling::PoolState state;
  bool multipass_synced = false;  // listed successfully at least once
  bool nomad_synced = false;
  bool multipass_tried = false;  // every host's listing or its error arrived
  bool nomad_tried = false;
  std::set<std::string> hosts_tried;   // a listing or its error arrived
  std::set<std::string> hosts_listed;  // listed successfully at least once
  std::uint64_t epoch = 0;             // bumped by every change this process makes or learns of
  std::map<std::string, scaling::TimePoint> launch_times;
  std::set<std::string> undriven;  // instance names whose operation nobody drives
  // The latest node list: a listing that brings an instance after its node
  // was seen attaches it at once (the blocking query may not answer again
  // for minutes, nothing having changed in Nomad).
  std::optional<contracts::nomad::PoolNodesReply> last_nodes;
  // Nodes this process purged, and when: a node list from a blocking query
  // that began before the purge still shows them (down), and must not make
  // them orphans to purge a second time. Kept kPurgedMemory.
  std::map<std::string, scaling::TimePoint> purged_nodes;

  bool synced() const { return multipass_synced && nomad_synced; }
  // The launch time this process (or its predecessor) recorded, if any.
  void RestoreLaunchTime(scaling::Instance& instance) const {
    if (auto t = launch_times.find(instance.name); t != launch_times.end()) {
      instance.launched_at = t->second;
    }
  }

  // Both sides answered (or failed) at least once: plans may be made.
  bool observed() const { return multipass_tried && nomad_tried; }

  // ComputeStatus, not ready until the first reconciliation.
  scaling::PoolStatus CurrentStatus(scaling::TimePoint now) const {
    auto status = scaling::ComputeStatus(state, policy, now);
    if (!synced()) {
      status.ready = false;
      status.reasons.insert(status.reasons.begin(),
                            "reconciling with multipassd and Nomad after start");
    }
    return status;
  }
};

std::string OperationId(const std::string& pool, OperationKind kind, const std::string& instance) {
  return pool + ":" + std::string(ToString(kind)) + ":" + instance;
}

std::string WithHost(std::string text, const std::string& host) {
  return host.empty() ? text : text + " on " + host;
}

std::string Describe(const scaling::ScaleAction& action) {
  return std::visit(
      [](const auto& a) -> std::string {
        using T = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<T, scaling::LaunchAction>) {
          return WithHost(std::string(a.warm ? "launch warm " : "launch ") + a.name + " (" +
                              (a.image.empty() ? "default image" : a.image) + ")",
                          a.host);
        } else if constexpr (std::is_same_v<T, scaling::StartAction>) {
          return std::string(a.warm ? "start warm " : "start ") + a.name;
        } else if constexpr (std::is_same_v<T, scaling::PrepareWarmAction>) {
          return "finish preparing warm " + a.name;
        } else if constexpr (std::is_same_v<T, scaling::DeleteAction>) {
          return "delete " + a.name + ": " + a.reason;
        } else if constexpr (std::is_same_v<T, scaling::SelectAndDrainAction>) {
          return "select " + std::to_string(a.count) + " of " +
                 std::to_string(a.candidates.size()) + " node(s)" +
                 (a.host.empty() ? std::string() : " on " + a.host) + " by " +
                 std::string(ToString(a.strategy)) + " and drain them" +
                 (a.reuse > 0 ? " (up to " + std::to_string(a.reuse) + " back to the warm pool)"
                              : std::string());
        } else {
          return "purge " + std::to_string(a.node_ids.size()) + " node(s): " + a.reason;
        }
      },
      action);
}

class CacheState {
 public:
  CacheState(CacheOptions options)
      : options_(std::move(options)),
        store_(options_.state_dir),
        namer_(options_.random ? scaling::InstanceNamer(options_.random)
                               : scaling::InstanceNamer::FromRandomDevice()) {
    if (options_.hosts.empty()) options_.hosts.emplace_back().name = scaling::kDefaultHost;
  }

  // A host's capacity answer, for every pool's placement. With one host
  // placement has no choice to make, and a launch that does not fit is
  // multipassd's to refuse, as it always was.
  void Capacity(const HostCapacityReport& report) {
    if (options_.hosts.size() < 2) return;
    const config::HostEntry* entry = nullptr;
    for (const auto& h : options_.hosts) {
      if (h.name == report.host) entry = &h;
    }
    if (!entry) return;
    auto& capacity = host_capacity_[report.host];
    if (report.capacity) {
      capacity = scaling::PlacementHostOf(*entry, *report.capacity, 0);
    } else {
      // No answer says nothing of its room (a hostd from before host.capacity
      // answers unknown_type); whether it is reachable is its listings' to say.
      spdlog::debug("host {}: no capacity known: {}", report.host, report.error);
      capacity = scaling::HostCapacity{};
      capacity.name = entry->name;
      capacity.zone = entry->zone;
      capacity.weight = entry->weight;
      capacity.resources_known = false;
    }
    for (auto& [name, pool] : pools_) pool.state.capacity[report.host] = capacity;
  }

  // The host an instance event names: only when there is a choice of hosts.
  std::optional<std::string> EventHost(const std::string& host) const {
    if (options_.hosts.size() < 2 || host.empty()) return std::nullopt;
    return host;
  }

  // A host named by a listing, an operation or a report: the one host when
  // there is one (operations recorded before hosts had names).
  std::string HostName(const std::string& host) const {
    if (options_.hosts.size() == 1) return options_.hosts.front().name;
    return host;
  }

  // The pool of a policy, registered (and restored from the store) on first sight.
  Pool* Register(const ConfigMap& config, std::string& error) {
    scaling::PoolPolicy policy;
    try {
      policy = scaling::ParsePoolPolicy(config);
      if (!policy.cloud_init_user_data_path.empty())
        scaling::CheckCloudInitFile(policy.cloud_init_user_data_path);
    } catch (const scaling::PolicyError& e) {
      error = std::string("policy target: ") + e.what();
      return nullptr;
    } catch (const scaling::CloudInitError& e) {
      error = std::string("policy target: ") + e.what();
      return nullptr;
    }
    auto [it, fresh] = pools_.try_emplace(policy.instance_name_prefix);
    Pool& pool = it->second;
    pool.config = config;
    pool.policy = std::move(policy);
    if (fresh) Restore(pool);
    return &pool;
  }

  StatusAnswer Status(const ConfigMap& config) {
    StatusAnswer answer;
    Pool* pool = Register(config, answer.error);
    if (!pool) return answer;
    return StatusOf(*pool);
  }

  // Posts every pool's current answer on the board (after each message).
  void PostAll() {
    if (options_.metrics) RecordMetrics();
    if (!options_.board) return;
    for (const auto& [name, pool] : pools_) options_.board->Post(pool.config, StatusOf(pool));
  }

  // The pool gauges, after every message like the board's answers.
  void RecordMetrics() {
    auto now = scaling::Clock::now();
    for (const auto& [name, pool] : pools_)
      RecordPoolMetrics(*options_.metrics, pool.state, pool.CurrentStatus(now));
  }

  // Whether a pool was observed (listed and watched, or failed to be) at
  // least once: only then can a plan be made for it.
  bool Observed(const std::string& name) const {
    auto it = pools_.find(name);
    return it != pools_.end() && it->second.observed();
  }

  std::string CurrentReasons(const Pool& pool) const {
    std::string out;
    for (const auto& r : CurrentStatus(pool).reasons) out += (out.empty() ? "" : "; ") + r;
    return out;
  }

  // The pool's status, not ready while the state store cannot be written.
  scaling::PoolStatus CurrentStatus(const Pool& pool) const {
    auto status = pool.CurrentStatus(scaling::Clock::now());
    if (!store_error_.empty()) {
      status.ready = false;
      status.reasons.push_back("state_dir " + options_.state_dir.string() +
                               " cannot be written, no Scale is accepted: " + store_error_);
    }
    return status;
  }

  StatusAnswer StatusOf(const Pool& pool) const {
    StatusAnswer answer;
    auto status = CurrentStatus(pool);
    answer.synced = pool.synced();
    answer.ready = status.ready;
    answer.count = status.count;
    answer.meta = status.Meta();
    return answer;
  }

  // A write to the store failed: Status says so (not ready) until a probe
  // or the next write succeeds.
  void StoreFailed(const std::string& error) {
    if (store_error_ != error) {
      spdlog::error("state cache: state_dir {}: writing the state failed: {}",
                    options_.state_dir.string(), error);
    }
    store_error_ = error;
  }
  void StoreWorked() {
    if (store_error_.empty()) return;
    spdlog::info("state cache: state_dir {} can be written again", options_.state_dir.string());
    store_error_.clear();
  }
  // While the store is failing: is it back (space freed)? Called with each observation.
  void ProbeStore() {
    if (store_error_.empty()) return;
    try {
      store_.CheckStillOpen();
      store_.ProbeWrite();
      StoreWorked();
    } catch (const std::exception& e) {
      StoreFailed(e.what());
    }
  }
  std::string StateDir() const { return options_.state_dir.string(); }

  PlanAnswer Plan(const PlanQuery& query) {
    PlanAnswer answer;
    Pool* pool = Register(query.policy, answer.error);
    if (!pool) return answer;
    answer.pool = pool->policy.instance_name_prefix;
    answer.request_id = query.request.request_id;
    answer.synced = pool->observed();
    if (!answer.synced) {
      answer.not_ready = CurrentReasons(*pool);
      return answer;
    }
    answer.unreachable = !pool->state.multipass.reachable || !pool->state.nomad.reachable;
    auto now = scaling::Clock::now();
    auto& state = pool->state;
    if (query.reconcile) {
      if (!pool->undriven.empty()) return answer;  // resuming first; plan is a noop
      answer.plan = planner_.ReconcilePlan(state, pool->policy, now, namer_);
    } else {
      answer.plan = planner_.Plan(state, pool->policy, query.request, now, namer_);
    }
    const auto& plan = answer.plan;
    const std::string& id = query.request.request_id;
    if (query.reconcile && plan.outcome != scaling::PlanOutcome::kExecute) return answer;
    if (!query.reconcile) {
      Publish(ev::ScaleRequested{answer.pool, id, query.request.target, plan.current_count,
                                 query.request.dry_run || plan.dry_run, query.reason});
    }
    std::vector<std::string> actions;
    for (const auto& a : plan.actions) actions.push_back(Describe(a));
    Publish(ev::ScalePlanned{answer.pool, id, std::string(ToString(plan.outcome)), plan.message,
                             plan.dry_run, actions});
    spdlog::info("pool {}: request {}: {}{}: {}", answer.pool, id, ToString(plan.outcome),
                 plan.dry_run ? " (dry run)" : "", plan.message);
    if (!plan.ShouldExecute()) return answer;
    // Write-ahead, all or nothing: a crash from here on finds these
    // operations in the store, and a store that cannot take them (disk full,
    // file removed) means nothing is done and the memory is left as it was.
    struct Planned {
      OperationKind kind;
      std::string instance;
      std::string host;
    };
    std::vector<Planned> operations;
    // The warm pool's changes land in the same transaction as the
    // operations: a warm launch joins it, a warm start leaves it.
    std::vector<std::string> warming, leaving_warm;
    for (const auto& action : plan.actions) {
      if (const auto* launch = std::get_if<scaling::LaunchAction>(&action)) {
        operations.push_back({OperationKind::kLaunch, launch->name, HostName(launch->host)});
        if (launch->warm) warming.push_back(launch->name);
      } else if (const auto* start = std::get_if<scaling::StartAction>(&action)) {
        operations.push_back({OperationKind::kStart, start->name, HostName(start->host)});
        if (state.IsWarmPool(start->name)) leaving_warm.push_back(start->name);
      } else if (const auto* del = std::get_if<scaling::DeleteAction>(&action)) {
        operations.push_back({OperationKind::kDelete, del->name, HostName(del->host)});
      }
    }
    try {
      store_.CheckStillOpen();
      scaling::StateStore::Transaction transaction(store_);
      store_.BeginRequest(answer.pool, id, plan.target, now);
      for (const auto& [kind, instance, host] : operations) {
        store_.RecordOperation({OperationId(answer.pool, kind, instance), answer.pool, kind,
                                instance, id, now, scaling::OperationStatus::kPending, host});
        if (kind == OperationKind::kLaunch) store_.RecordLaunchTime(answer.pool, instance, now);
      }
      for (const auto& name : warming)
        store_.SetWarm(answer.pool, name, scaling::WarmPhase::kWarming);
      for (const auto& name : leaving_warm) store_.ForgetWarm(answer.pool, name);
      transaction.Commit();
    } catch (const std::exception& e) {
      StoreFailed(e.what());
      answer.store_failed = true;
      answer.error = "pool " + answer.pool + ": request " + id + ": state_dir " +
                     options_.state_dir.string() + ": the plan could not be recorded (" + e.what() +
                     "); nothing was done";
      Publish(ev::ScaleFailed{answer.pool, id, answer.error});
      return answer;
    }
    StoreWorked();
    ++pool->epoch;
    if (!plan.background) state.active_scale_request_id = id;
    for (const auto& name : warming) {
      state.warm[name] = scaling::WarmPhase::kWarming;
      Publish(ev::InstanceWarming{answer.pool, name});
    }
    for (const auto& name : leaving_warm) state.warm.erase(name);
    for (const auto& [kind, instance, host] : operations) {
      pool->state.operations.push_back({kind, instance, now, id, host});
      if (kind == OperationKind::kLaunch) pool->launch_times[instance] = now;
    }
    for (const auto& action : plan.actions) {
      if (const auto* launch = std::get_if<scaling::LaunchAction>(&action))
        Publish(ev::InstanceLaunching{answer.pool, launch->name, launch->image,
                                      EventHost(HostName(launch->host))});
    }
    return answer;
  }

  void Report(const OpReport& r) {
    auto it = pools_.find(r.pool);
    if (it == pools_.end()) return;
    Pool& pool = it->second;
    ++pool.epoch;
    auto now = scaling::Clock::now();
    switch (r.phase) {
      case OpPhase::kStarted:
        // A drained instance's delete replaces its drain operation.
        RemoveOperations(pool, r.instance);
        if (r.kind == OperationKind::kStop && !pool.state.IsWarmPool(r.instance)) {
          // A drained instance going back to the warm pool: the stop and its
          // membership are written together.
          scaling::StateStore::Transaction transaction(store_);
          AddOperation(pool, r.kind, r.instance, r.request_id, now, r.host);
          store_.SetWarm(r.pool, r.instance, scaling::WarmPhase::kWarming);
          transaction.Commit();
          pool.state.warm[r.instance] = scaling::WarmPhase::kWarming;
          Publish(ev::InstanceWarming{r.pool, r.instance});
          return;
        }
        AddOperation(pool, r.kind, r.instance, r.request_id, now, r.host);
        if (r.kind == OperationKind::kDrain) {
          Publish(ev::NodeDraining{r.pool, r.instance, r.node_id});
        }
        if (r.kind == OperationKind::kDelete && r.warm_failure) {
          pool.state.RecordLaunchFailure(r.detail, now, r.request_id);
          Publish(ev::InstanceFailed{r.pool, r.instance, r.detail});
        }
        return;
      case OpPhase::kUnresolved:
        pool.undriven.insert(r.instance);
        spdlog::warn("pool {}: {} of {}: outcome unknown ({}); resolving when reachable", r.pool,
                     ToString(r.kind), r.instance, r.detail);
        return;
      case OpPhase::kSucceeded:
        Succeeded(pool, r, now);
        return;
      case OpPhase::kFailed:
        Failed(pool, r, now);
        return;
    }
  }

  void Observe(const Observation& o) {
    auto it = pools_.find(o.pool);
    if (it == pools_.end()) return;
    Pool& pool = it->second;
    auto& state = pool.state;
    auto now = scaling::Clock::now();
    // An instance listing begun before a change we made landed (e.g. a
    // delete) would bring the deleted instance back: it is dropped, the next
    // tick lists again. Node lists come from a blocking query that may have
    // waited across any number of changes; they only attach nodes to the
    // instances we know, so they are always applied.
    bool stale = o.epoch != pool.epoch;
    std::string host = HostName(o.host);
    std::string what = options_.hosts.size() > 1 ? "Multipass host " + host : "multipassd";
    bool listing = false;
    if (o.instances && !stale) {
      ApplyInstanceList(state, contracts::Encode(*o.instances), now, host);
      for (auto& instance : state.instances) pool.RestoreLaunchTime(instance);
      // Leftovers the daemon no longer lists are gone.
      std::erase_if(state.failed_launch_leftovers,
                    [&](const std::string& n) { return !state.Find(n); });
      ForgetVanishedWarm(pool);
      SetReachable(state.hosts[host], "", what, o.pool);
      pool.hosts_tried.insert(host);
      pool.hosts_listed.insert(host);
      listing = true;
    } else if (!o.instances && !o.multipass_error.empty()) {
      SetReachable(state.hosts[host], o.multipass_error, what, o.pool);
      pool.hosts_tried.insert(host);
      listing = true;
    }
    if (listing) {
      state.SetHostReachability(host, state.hosts[host]);
      if (state.HostCutOff(host)) {
        for (auto& op : state.operations)
          if (op.kind == OperationKind::kLaunch && HostName(op.host) == host &&
              !state.Find(op.instance))
            op.host_lost = true;
      }
      // Every host answered or failed once: plans may be made. Synced once
      // one of them listed: a host down since the start must not hold up
      // the others (names are random, so a new one does not collide with
      // the unknown names on it).
      pool.multipass_tried = pool.hosts_tried.size() >= options_.hosts.size();
      pool.multipass_synced = pool.multipass_tried && !pool.hosts_listed.empty();
    }
    if (o.instances && !stale && !o.nodes && pool.last_nodes) ApplyNodes(o.pool, pool);
    if (o.nodes) {
      pool.last_nodes = *o.nodes;
      ApplyNodes(o.pool, pool);
      SetReachable(state.nomad, "", "Nomad", o.pool);
      pool.nomad_synced = true;
      pool.nomad_tried = true;
    } else if (!o.nomad_error.empty()) {
      SetReachable(state.nomad, o.nomad_error, "Nomad", o.pool);
      pool.nomad_tried = true;
    }
  }

  void Finish(const ScaleFinish& f) {
    auto it = pools_.find(f.pool);
    if (it == pools_.end()) return;
    Pool& pool = it->second;
    auto now = scaling::Clock::now();
    if (pool.state.active_scale_request_id == f.request_id)
      pool.state.active_scale_request_id.reset();
    if (f.changed) {
      pool.state.last_event_ns = UnixNanos(now);
      store_.SetLastEvent(f.pool, *pool.state.last_event_ns);
    }
    if (store_.FindRequest(f.pool, f.request_id)) {
      store_.CompleteRequest(f.pool, f.request_id, f.ok, f.message);
    }
    store_.ForgetCompletedRequestsBefore(now - std::chrono::hours(24));
    if (f.ok) {
      Publish(ev::ScaleCompleted{f.pool, f.request_id,
                                 scaling::ComputeStatus(pool.state, pool.policy, now).count,
                                 f.message});
    } else {
      Publish(ev::ScaleFailed{f.pool, f.request_id, f.message});
    }
  }

  // The pool's latest node list onto its instances. A node this process
  // purged is no orphan to purge again, though a list from a blocking query
  // begun before the purge still shows it.
  void ApplyNodes(const std::string& name, Pool& pool) {
    auto changes = ApplyPoolNodes(pool.state, contracts::Encode(*pool.last_nodes));
    std::erase_if(pool.state.orphan_nodes,
                  [&](const auto& n) { return pool.purged_nodes.contains(n.id); });
    for (const auto& [instance, node] : changes.registered)
      Publish(ev::NodeRegistered{name, instance, node});
  }

  void NodesPurged(const std::string& pool, const std::vector<std::string>& ids) {
    if (ids.empty()) return;
    for (const auto& id : ids) Publish(ev::NodePurged{pool, id});
    if (auto it = pools_.find(pool); it != pools_.end()) {
      ++it->second.epoch;
      auto now = scaling::Clock::now();
      std::erase_if(it->second.purged_nodes,
                    [&](const auto& p) { return now - p.second > kPurgedMemory; });
      for (const auto& id : ids) it->second.purged_nodes[id] = now;
      auto purged = [&](const auto& n) {
        return std::find(ids.begin(), ids.end(), n.id) != ids.end();
      };
      std::erase_if(it->second.state.orphan_nodes, purged);
      if (it->second.last_nodes) std::erase_if(it->second.last_nodes->nodes, purged);
    }
  }

  PoolTargets Pools() const {
    PoolTargets out;
    for (const auto& [name, pool] : pools_) out.pools.push_back({name, pool.config, pool.epoch});
    return out;
  }

  UndrivenWork TakeUndriven(const std::string& name) {
    UndrivenWork work;
    auto& out = work.operations;
    auto it = pools_.find(name);
    if (it == pools_.end() || !it->second.synced()) return work;
    Pool& pool = it->second;
    DropLaunchesBeyondMaxInstances(pool);
    for (const auto& op : pool.state.operations) {
      if (pool.undriven.contains(op.instance)) out.push_back(op);
    }
    pool.undriven.clear();
    // Resuming is a scale of its own: nothing else may plan meanwhile,
    // unless all of it is the warm pool's own upkeep (its instances are not
    // counted, and a Scale only takes warm instances no operation owns).
    bool warm_upkeep_only = std::all_of(
        out.begin(), out.end(), [&](const auto& op) { return pool.state.IsWarmPool(op.instance); });
    if (!out.empty() && !warm_upkeep_only && !pool.state.active_scale_request_id) {
      pool.state.active_scale_request_id = out.front().request_id;
    }
    return work;
  }

  // Launches left by an earlier process are resumed under the current
  // policy: those that never reached multipassd and would take the pool
  // past max_instances (lowered since) are given up, not launched.
  void DropLaunchesBeyondMaxInstances(Pool& pool) {
    auto& state = pool.state;
    auto count = scaling::ComputeStatus(state, pool.policy, scaling::Clock::now()).count;
    auto excess = count - pool.policy.max_instances;
    if (excess <= 0) return;
    std::vector<std::string> dropped;
    for (auto op = state.operations.rbegin(); op != state.operations.rend() && excess > 0; ++op) {
      if (op->kind != OperationKind::kLaunch || state.Find(op->instance) ||
          !pool.undriven.contains(op->instance))
        continue;
      dropped.push_back(op->instance);
      --excess;
    }
    std::string why = "not resumed: the pool would exceed max_instances " +
                      std::to_string(pool.policy.max_instances);
    for (const auto& name : dropped) {
      RemoveOperations(pool, name, scaling::OperationStatus::kFailed);
      Publish(ev::InstanceFailed{state.prefix, name, why});
    }
    spdlog::warn("pool {}: {} pending launch(es) {}", state.prefix, dropped.size(), why);
  }

  ev::PoolsReply View(const std::string& filter) const {
    ev::PoolsReply reply;
    for (const auto& [name, pool] : pools_) {
      if (!filter.empty() && filter != name) continue;
      reply.pools.push_back(PoolViewOf(pool.state, CurrentStatus(pool)));
    }
    return reply;
  }

 private:
  void Restore(Pool& pool) {
    const std::string& name = pool.policy.instance_name_prefix;
    pool.state.prefix = name;
    for (const auto& host : options_.hosts) {
      scaling::HostCapacity capacity;
      capacity.name = host.name;
      capacity.zone = host.zone;
      capacity.weight = host.weight;
      capacity.resources_known = false;  // until its hostd answers host.capacity
      auto known = host_capacity_.find(host.name);
      pool.state.capacity[host.name] = known == host_capacity_.end() ? capacity : known->second;
      pool.state.SetHostReachability(host.name, {});
    }
    pool.state.last_event_ns = store_.LastEvent(name);
    pool.launch_times = store_.LaunchTimes(name);
    pool.state.warm = store_.WarmInstances(name);
    for (const auto& stored : store_.PendingOperations(name)) {
      pool.state.operations.push_back({stored.kind, stored.instance, stored.started_at,
                                       stored.request_id, HostName(stored.host)});
      pool.undriven.insert(stored.instance);
    }
    if (!pool.undriven.empty()) {
      spdlog::info(
          "pool {}: {} operation(s) left pending by an earlier process; resuming them "
          "after reconciling",
          name, pool.undriven.size());
    }
  }

  // Warm-pool members multipassd no longer lists and no operation owns
  // (deleted by hand, or a warm launch that never happened) are forgotten.
  void ForgetVanishedWarm(Pool& pool) {
    auto& state = pool.state;
    for (auto it = state.warm.begin(); it != state.warm.end();) {
      if (state.Find(it->first) || state.OperationOn(it->first)) {
        ++it;
        continue;
      }
      spdlog::info("pool {}: warm instance {} no longer exists", state.prefix, it->first);
      store_.ForgetWarm(state.prefix, it->first);
      it = state.warm.erase(it);
    }
  }

  void AddOperation(Pool& pool, OperationKind kind, const std::string& instance,
                    const std::string& request_id, scaling::TimePoint now,
                    const std::string& reported_host) {
    std::string host =
        HostName(reported_host.empty() ? pool.state.HostOf(instance) : reported_host);
    // The store first: an operation it could not record is not started.
    store_.RecordOperation({OperationId(pool.state.prefix, kind, instance), pool.state.prefix, kind,
                            instance, request_id, now, scaling::OperationStatus::kPending, host});
    pool.state.operations.push_back({kind, instance, now, request_id, host});
  }

  void RemoveOperations(Pool& pool, const std::string& instance,
                        scaling::OperationStatus status = scaling::OperationStatus::kDone) {
    // Memory follows what happened even when the store cannot: the store
    // then lags (a restart re-resolves the operation from the listing).
    auto& ops = pool.state.operations;
    std::optional<scaling::StateStoreError> failed;
    for (const auto& op : ops) {
      if (op.instance != instance) continue;
      try {
        store_.SetOperationStatus(OperationId(pool.state.prefix, op.kind, instance), status);
      } catch (const scaling::StateStoreError& e) {
        failed = e;
      }
    }
    std::erase_if(ops, [&](const scaling::Operation& op) { return op.instance == instance; });
    pool.undriven.erase(instance);
    if (failed) throw *failed;
  }

  void Succeeded(Pool& pool, const OpReport& r, scaling::TimePoint now) {
    auto& state = pool.state;
    switch (r.kind) {
      case OperationKind::kLaunch:
      case OperationKind::kStart: {
        std::string host = HostName(r.host.empty() ? state.HostOf(r.instance) : r.host);
        RemoveOperations(pool, r.instance);
        auto* instance = const_cast<scaling::Instance*>(state.Find(r.instance));
        if (!instance) {
          state.instances.push_back(
              {r.instance, scaling::InstanceState::kRunning, {}, {}, {}, host});
          instance = &state.instances.back();
        }
        instance->state = scaling::InstanceState::kRunning;
        if (!instance->first_seen_running_at) instance->first_seen_running_at = now;
        pool.RestoreLaunchTime(*instance);
        if (r.kind == OperationKind::kLaunch) state.RecordLaunchSuccess();
        Publish(ev::InstanceRunning{r.pool, r.instance, EventHost(host)});
        return;
      }
      case OperationKind::kDrain:
        // The delete that follows replaces the operation.
        Publish(ev::NodeDrained{r.pool, r.instance, r.node_id});
        return;
      case OperationKind::kStop: {
        RemoveOperations(pool, r.instance);
        if (auto* instance = const_cast<scaling::Instance*>(state.Find(r.instance)))
          instance->state = scaling::InstanceState::kStopped;
        store_.SetWarm(r.pool, r.instance, scaling::WarmPhase::kWarm);
        state.warm[r.instance] = scaling::WarmPhase::kWarm;
        Publish(ev::InstanceWarm{r.pool, r.instance, r.node_id});
        return;
      }
      case OperationKind::kDelete: {
        std::string host = HostName(r.host.empty() ? state.HostOf(r.instance) : r.host);
        store_.ForgetWarm(r.pool, r.instance);
        state.warm.erase(r.instance);
        RemoveOperations(pool, r.instance);
        std::erase_if(state.instances,
                      [&](const scaling::Instance& i) { return i.name == r.instance; });
        std::erase(state.failed_launch_leftovers, r.instance);
        pool.launch_times.erase(r.instance);
        store_.ForgetInstance(r.pool, r.instance);
        Publish(ev::InstanceDeleted{r.pool, r.instance, r.detail, EventHost(host)});
        return;
      }
    }
  }

  void Failed(Pool& pool, const OpReport& r, scaling::TimePoint now) {
    RemoveOperations(pool, r.instance, scaling::OperationStatus::kFailed);
    switch (r.kind) {
      case OperationKind::kLaunch:
        if (pool.state.IsWarmPool(r.instance)) {
          store_.ForgetWarm(r.pool, r.instance);
          pool.state.warm.erase(r.instance);
        }
        if (!r.host_lost) pool.state.RecordLaunchFailure(r.detail, now, r.request_id);
        if (r.leftover) pool.state.failed_launch_leftovers.push_back(r.instance);
        Publish(ev::InstanceFailed{r.pool, r.instance, r.detail, EventHost(r.host)});
        return;
      case OperationKind::kStart:
        Publish(ev::InstanceFailed{r.pool, r.instance, r.detail, EventHost(r.host)});
        return;
      case OperationKind::kDrain:
        Publish(ev::NodeDrainFailed{r.pool, r.instance, r.node_id, r.detail});
        return;
      case OperationKind::kDelete:
        spdlog::warn("pool {}: delete of {} failed: {}", r.pool, r.instance, r.detail);
        return;
      case OperationKind::kStop:
        // Still warming: the reconciliation finishes (or deletes) it.
        Publish(ev::InstanceFailed{r.pool, r.instance, "stop for the warm pool: " + r.detail});
        return;
    }
  }

  void SetReachable(scaling::Reachability& r, const std::string& error, const std::string& what,
                    const std::string& pool) {
    bool reachable = error.empty();
    if (r.reachable != reachable) {
      if (reachable) {
        spdlog::info("pool {}: {} reachable again", pool, what);
      } else {
        spdlog::warn("pool {}: {} unreachable: {}", pool, what, error);
      }
    }
    r.reachable = reachable;
    r.reason = error;
  }

  template <class Event>
  void Publish(const Event& event) {
    if (!options_.events) return;
    // The event log is for watchers: its failure (e.g. a full disk under
    // events.db) is logged, never the failure of the scale that emitted it.
    try {
      options_.events->Publish(std::string(Event::kType), contracts::Encode(event));
      if (event_error_) {
        spdlog::info("state cache: the event log is written again");
        event_error_ = false;
      }
    } catch (const std::exception& e) {
      if (!event_error_)
        spdlog::error("state cache: event {} not logged: {}", Event::kType, e.what());
      event_error_ = true;
    }
  }

  CacheOptions options_;
  scaling::StateStore store_;
  scaling::InstanceNamer namer_;
  scaling::ScalePlanner planner_;
  std::string store_error_;   // the last failed write, while writes fail
  bool event_error_ = false;  // the event log failed last time (logged once)
  std::map<std::string, Pool> pools_;
  std::map<std::string, scaling::HostCapacity> host_capacity_;  // the latest answer of each host
};

// A Plan for a pool not yet observed, held until it is (or until first_sync_wait).
struct HeldPlan {
  PlanQuery query;
  caf::typed_response_promise<PlanAnswer> promise;
};

struct CacheActorState {
  std::unique_ptr<CacheState> cache;
  std::map<std::string, std::vector<HeldPlan>> held;  // by pool
  CacheStats stats;
  static inline const char* name = "state-cache";
};

// Runs one handler; a failure inside (SQLite, a bug) is logged with what was
// being done and does not take the actor down: Status keeps being answered.
template <class F>
bool Guarded(const char* what, F&& f, CacheState* cache = nullptr) {
  try {
    f();
    return true;
  } catch (const scaling::StateStoreError& e) {
    if (cache) cache->StoreFailed(e.what());
    spdlog::error("state cache: {} failed: {}", what, e.what());
    return false;
  } catch (const std::exception& e) {
    spdlog::error("state cache: {} failed: {}", what, e.what());
    return false;
  }
}

caf::behavior CacheActor(caf::stateful_actor<CacheActorState>* self, CacheOptions options) {
  auto wait = options.first_sync_wait;
  self->state.cache = std::make_unique<CacheState>(std::move(options));
  auto& c = *self->state.cache;
  // Answers the plans held for `pool` (see plan_atom): planned now when the
  // pool was observed meanwhile, or, when `expired`, "not synced" with why.
  auto release = [self, &c](const std::string& pool, bool expired) {
    auto it = self->state.held.find(pool);
    if (it == self->state.held.end() || (!expired && !c.Observed(pool))) return;
    auto held = std::move(it->second);
    self->state.held.erase(it);
    for (auto& h : held) {
      PlanAnswer answer;
      if (!Guarded("Plan", [&] { answer = c.Plan(h.query); })) {
        answer.error = "the state cache could not record the plan (see the plugin log)";
      }
      h.promise.deliver(std::move(answer));
    }
    c.PostAll();
  };
  // Every message that may change a pool re-posts the Status answers.
  return {
      [self, &c](status_atom, const StatusQuery& q) {
        ++self->state.stats.messages["status"];
        StatusAnswer answer;
        Guarded("Status", [&] { answer = c.Status(q.policy); });
        c.PostAll();
        return answer;
      },
      [self, &c, wait](plan_atom, const PlanQuery& q) -> caf::result<PlanAnswer> {
        ++self->state.stats.messages["plan"];
        PlanAnswer answer;
        if (!Guarded("Plan", [&] { answer = c.Plan(q); })) {
          answer.error = "the state cache could not record the plan (see the plugin log)";
        }
        c.PostAll();
        if (!answer.error.empty() || answer.synced || q.reconcile) return answer;
        // Never observed yet: answered once the watcher's first observation
        // arrives, instead of the caller polling.
        auto& held = self->state.held[answer.pool];
        held.push_back({q, self->make_response_promise<PlanAnswer>()});
        self->delayed_send(self, wait, plan_wait_atom::value, answer.pool);
        return held.back().promise;
      },
      // The first held plan's wait is over: every plan held for the pool is
      // answered (they all wait for the same first observation).
      [release](plan_wait_atom, const std::string& pool) { release(pool, true); },
      [self, &c](report_atom, const OpReport& r) -> caf::result<ack_atom> {
        ++self->state.stats.messages["report"];
        bool recorded = Guarded(
            "Report", [&] { c.Report(r); }, &c);
        c.PostAll();
        // A write-ahead (a drain about to start) that did not reach the store
        // is refused, so the caller does not act on it. Only requests get an
        // error: a plain message's sender expects no answer.
        if (!recorded && r.phase == OpPhase::kStarted &&
            self->current_mailbox_element()->mid.is_request())
          return caf::make_error(caf::sec::runtime_error, "state_dir " + c.StateDir() + ": " +
                                                              std::string(ToString(r.kind)) +
                                                              " of " + r.instance +
                                                              " could not be recorded");
        return ack_atom::value;
      },
      [self, &c, release](observe_atom, const Observation& o) {
        ++self->state.stats.messages["observe"];
        Guarded(
            "Observe",
            [&] {
              c.Observe(o);
              c.ProbeStore();
            },
            &c);
        c.PostAll();
        release(o.pool, false);
      },
      [self, &c](capacity_atom, const HostCapacityReport& report) {
        ++self->state.stats.messages["capacity"];
        Guarded(
            "Capacity", [&] { c.Capacity(report); }, &c);
        c.PostAll();
      },
      [self, &c](finish_atom, const ScaleFinish& f) {
        ++self->state.stats.messages["finish"];
        Guarded(
            "Finish", [&] { c.Finish(f); }, &c);
        c.PostAll();
        return ack_atom::value;
      },
      [self, &c](purged_atom, const NodesPurged& p) {
        ++self->state.stats.messages["purged"];
        Guarded(
            "NodesPurged", [&] { c.NodesPurged(p.pool, p.node_ids); }, &c);
        c.PostAll();
      },
      [self, &c](pools_atom) {
        ++self->state.stats.messages["pools"];
        return c.Pools();
      },
      [self](stats_atom) { return self->state.stats; },
      [self, &c](undriven_atom, const std::string& pool) {
        ++self->state.stats.messages["undriven"];
        UndrivenWork work;
        Guarded("TakeUndriven", [&] { work = c.TakeUndriven(pool); });
        c.PostAll();
        return work;
      },
      // state.pools on the status endpoint (caf_bridge.h).
      [&c](bus::bus_request_atom, const bus::Envelope& r) {
        try {
          auto request = contracts::Decode<ev::PoolsRequest>(r.payload, r.type);
          return bus::BusAnswer::Ok(contracts::Encode(c.View(request.pool.value_or(""))));
        } catch (const bus::BusError& e) {
          return bus::BusAnswer::Fail(e);
        }
      },
  };
}

}  // namespace

caf::actor SpawnStateCache(caf::actor_system& system, CacheOptions options) {
  // Opened here so that a bad state_dir is thrown to the caller (StateStoreError).
  { scaling::StateStore probe(options.state_dir); }
  return system.spawn(CacheActor, std::move(options));
}

struct StatusBoard::Entry {
  StatusAnswer answer;
  std::chrono::steady_clock::time_point posted;
};

void StatusBoard::Post(const ConfigMap& policy, const StatusAnswer& answer) {
  auto entry = std::make_shared<const Entry>(Entry{answer, std::chrono::steady_clock::now()});
  std::unique_lock lock(mutex_);
  entries_[policy] = std::move(entry);
}

std::optional<StatusAnswer> StatusBoard::Read(const ConfigMap& policy,
                                              std::chrono::steady_clock::duration max_age) const {
  std::shared_ptr<const Entry> entry;
  {
    std::shared_lock lock(mutex_);
    auto it = entries_.find(policy);
    if (it == entries_.end()) return std::nullopt;
    entry = it->second;
  }
  if (std::chrono::steady_clock::now() - entry->posted > max_age) return std::nullopt;
  return entry->answer;
}

StatusReader::StatusReader(caf::actor_system& system, caf::actor actor,
                           std::shared_ptr<const StatusBoard> board,
                           std::chrono::milliseconds timeout)
    : system_(system), actor_(std::move(actor)), board_(std::move(board)), timeout_(timeout) {}

StatusAnswer StatusReader::Status(const ConfigMap& policy) const {
  // Posted at least once a second while the watcher runs; older means it is
  // stuck, and the actor's own answer says why.
  if (board_) {
    if (auto posted = board_->Read(policy, std::chrono::seconds(3))) return *posted;
  }
  caf::scoped_actor self{system_};
  std::optional<StatusAnswer> answer;
  std::string error;
  self->request(actor_, timeout_, status_atom::value, StatusQuery{policy})
      .receive([&](StatusAnswer& a) { answer = std::move(a); },
               [&](caf::error& e) { error = system_.render(e); });
  if (!answer) throw std::runtime_error("state cache did not answer Status: " + error);
  return std::move(*answer);
}

}  // namespace mps::cache
