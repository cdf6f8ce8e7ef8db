#include "scaling/pool_observation.h"

#include <algorithm>
#include <map>

#include "contracts/codec.h"
#include "scaling/instance_namer.h"

namespace mps::cache {

using scaling::InstanceState;
using scaling::NodeStatus;
using json = nlohmann::json;

InstanceState InstanceStateFromName(const std::string& name) {
  static const std::map<std::string, InstanceState> kStates = {
      {"running", InstanceState::kRunning},     {"restarting", InstanceState::kStarting},
      {"starting", InstanceState::kStarting},   {"stopped", InstanceState::kStopped},
      {"suspended", InstanceState::kSuspended}, {"suspending", InstanceState::kSuspended},
      {"deleted", InstanceState::kDeleted},     {"delayed_shutdown", InstanceState::kRunning},
  };
  auto it = kStates.find(name);
  return it == kStates.end() ? InstanceState::kUnknown : it->second;
}

NodeStatus NodeStatusFromName(const std::string& name) {
  if (name == "ready") return NodeStatus::kReady;
  if (name == "down") return NodeStatus::kDown;
  if (name == "disconnected") return NodeStatus::kDisconnected;
  return NodeStatus::kInitializing;
}

std::int64_t UnixNanos(scaling::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::vector<std::string> ApplyInstanceList(scaling::PoolState& state, const json& list,
                                           scaling::TimePoint now, std::string_view host) {
  std::map<std::string, scaling::Instance> known;
  std::vector<scaling::Instance> fresh;
  std::vector<scaling::Instance> elsewhere;  // other hosts' instances: untouched
  for (auto& i : state.instances) {
    if (i.host.empty() || i.host == host) {
      known[i.name] = std::move(i);
    } else {
      elsewhere.push_back(std::move(i));
    }
  }
  std::vector<std::string> now_running;
  for (const auto& item : list.value("instances", json::array())) {
    std::string name = item.value("name", "");
    if (!scaling::BelongsToPool(state.prefix, name)) continue;
    scaling::Instance instance;
    if (auto it = known.find(name); it != known.end()) instance = std::move(it->second);
    instance.name = name;
    instance.host = std::string(host);
    auto before = instance.state;
    instance.state = InstanceStateFromName(item.value("state", "unknown"));
    if (instance.state == InstanceState::kRunning && !instance.first_seen_running_at) {
      instance.first_seen_running_at = now;
    }
    if (instance.state == InstanceState::kRunning && before != InstanceState::kRunning) {
      now_running.push_back(name);
    }
    fresh.push_back(std::move(instance));
  }
  // Launches multipassd (through hostd) is still making that we have no
  // record of (an earlier process, or another state_dir, asked for them) are
  // capacity on its way: counted, so a scale out does not launch them twice.
  for (const auto& item : list.value("in_flight", json::array())) {
    std::string name = item.value("name", "");
    if (!scaling::BelongsToPool(state.prefix, name) || state.OperationOn(name)) continue;
    bool listed = std::any_of(fresh.begin(), fresh.end(),
                              [&](const scaling::Instance& i) { return i.name == name; });
    if (listed) continue;
    scaling::Instance instance;
    if (auto it = known.find(name); it != known.end()) instance = std::move(it->second);
    instance.name = name;
    instance.host = std::string(host);
    instance.state = InstanceState::kPreparing;
    // Its clock (startup and registration timeouts) starts when hostd is done
    // with it: while hostd runs the launch, hostd's own deadline governs it.
    instance.launched_at = now;
    fresh.push_back(std::move(instance));
  }
  // Names are unique across hosts; should one host list a name another host
  // was last seen with (it moved, by hand), the newest listing is the truth.
  std::erase_if(elsewhere, [&](const scaling::Instance& other) {
    return std::any_of(fresh.begin(), fresh.end(),
                       [&](const scaling::Instance& i) { return i.name == other.name; });
  });
  state.instances = std::move(elsewhere);
  state.instances.insert(state.instances.end(), std::make_move_iterator(fresh.begin()),
                         std::make_move_iterator(fresh.end()));
  return now_running;
}

NodeChanges ApplyPoolNodes(scaling::PoolState& state, const json& pool_nodes) {
  NodeChanges changes;
  std::map<std::string, scaling::NomadNode> by_instance;
  std::vector<scaling::NomadNode> unmatched;
  for (const auto& n : pool_nodes.value("nodes", json::array())) {
    scaling::NomadNode node;
    node.id = n.value("id", "");
    node.status = NodeStatusFromName(n.value("status", ""));
    node.draining = n.value("drain", false);
    node.eligible = n.value("eligible", true);
    node.create_index = n.value("create_index", std::uint64_t{0});
    const auto& instance = n.contains("instance") ? n["instance"] : json();
    if (instance.is_string() && scaling::BelongsToPool(state.prefix, instance.get<std::string>())) {
      // Several nodes for one name: a VM re-registered; the newest one is it.
      auto& slot = by_instance[instance.get<std::string>()];
      if (slot.id.empty() || node.create_index > slot.create_index) {
        if (!slot.id.empty()) unmatched.push_back(slot);
        slot = node;
      } else {
        unmatched.push_back(node);
      }
    }
  }
  for (auto& instance : state.instances) {
    auto it = by_instance.find(instance.name);
    if (it == by_instance.end()) {
      instance.node.reset();
      continue;
    }
    if (!instance.node || instance.node->id != it->second.id) {
      changes.registered.emplace_back(instance.name, it->second.id);
    }
    instance.node = it->second;
    by_instance.erase(it);
  }
  state.orphan_nodes.clear();
  for (auto& [name, node] : by_instance) {
    // A node is an orphan once its VM is gone AND Nomad noticed (down): a
    // node list that predates our own delete still shows it ready, and a
    // node whose VM is being launched again is not an orphan yet.
    bool gone = node.status == NodeStatus::kDown || node.status == NodeStatus::kDisconnected;
    if (gone && !state.OperationOn(name)) state.orphan_nodes.push_back(node);
  }
  for (auto& node : unmatched) {
    if (node.status == NodeStatus::kDown) state.orphan_nodes.push_back(node);
  }
  return changes;
}

PendingLaunch ResolvePendingLaunch(const std::string& instance, const json& list) {
  for (const auto& item : list.value("instances", json::array())) {
    if (item.value("name", "") != instance) continue;
    auto state = InstanceStateFromName(item.value("state", "unknown"));
    if (state == InstanceState::kRunning) return PendingLaunch::kDone;
    if (state == InstanceState::kStarting) return PendingLaunch::kWait;
    return PendingLaunch::kCleanUp;
  }
  for (const auto& item : list.value("in_flight", json::array())) {
    if (item.value("name", "") == instance) return PendingLaunch::kWait;
  }
  return PendingLaunch::kRelaunch;
}

namespace {

contracts::status::OperationKind KindOf(scaling::OperationKind kind) {
  using K = contracts::status::OperationKind;
  switch (kind) {
    case scaling::OperationKind::kLaunch:
      return K::kLaunch;
    case scaling::OperationKind::kStart:
      return K::kStart;
    case scaling::OperationKind::kDrain:
      return K::kDrain;
    case scaling::OperationKind::kDelete:
      return K::kDelete;
    case scaling::OperationKind::kStop:
      return K::kStop;
  }
  return K::kLaunch;
}

}  // namespace

contracts::status::PoolView PoolViewOf(const scaling::PoolState& state,
                                       const scaling::PoolStatus& status) {
  contracts::status::PoolView view;
  view.pool = state.prefix;
  view.count = status.count;
  view.ready = status.ready;
  view.reasons = status.reasons;
  view.last_event_ns = status.last_event_ns;
  view.scale_request = state.active_scale_request_id;
  for (const auto& op : state.operations) {
    view.operations.push_back(
        {KindOf(op.kind), op.instance, UnixNanos(op.started_at), op.request_id});
  }
  for (const auto& i : state.instances) {
    contracts::status::InstanceView item;
    item.name = i.name;
    item.state = std::string(ToString(i.state));
    if (auto phase = state.WarmPhaseOf(i.name)) item.state = std::string(ToString(*phase));
    item.counted = scaling::IsCounted(state, i);
    if (i.node) {
      item.node_id = i.node->id;
      item.node_status = std::string(ToString(i.node->status));
    }
    if (i.launched_at) item.launched_ns = UnixNanos(*i.launched_at);
    item.host = i.host;
    view.instances.push_back(std::move(item));
  }
  for (const auto& [name, reach] : state.hosts) {
    contracts::status::HostView host;
    host.name = name;
    if (auto c = state.capacity.find(name); c != state.capacity.end()) host.zone = c->second.zone;
    host.reachable = reach.reachable;
    host.reason = reach.reason;
    for (const auto& item : view.instances) {
      if (item.host != name) continue;
      ++host.instances;
      if (item.counted) ++host.counted;
    }
    view.hosts.push_back(std::move(host));
  }
  const auto& f = state.launch_failures;
  view.launch_failures.consecutive = f.consecutive;
  view.launch_failures.last_error = f.last_error;
  if (f.next_retry_at) view.launch_failures.next_retry_ns = UnixNanos(*f.next_retry_at);
  return view;
}

json PoolViewJson(const scaling::PoolState& state, const scaling::PoolStatus& status) {
  return contracts::Encode(PoolViewOf(state, status));
}

}  // namespace mps::cache
