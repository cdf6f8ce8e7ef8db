#include "scaling/pool_status.h"

#include <ctime>

#include "config/go_values.h"
#include "scaling/instance_namer.h"

namespace mps::scaling {
namespace {

std::string Join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

std::string Since(TimePoint start, TimePoint now) {
  auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(now - start);
  return config::FormatGoDuration(std::max(elapsed, std::chrono::seconds(0)));
}

bool HasOperation(const PoolState& state, std::string_view instance, OperationKind kind) {
  for (const auto& op : state.operations) {
    if (op.instance == instance && op.kind == kind) return true;
  }
  return false;
}

}  // namespace

std::string FormatUtc(TimePoint t) {
  std::time_t seconds = Clock::to_time_t(t);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

bool IsCounted(const PoolState& state, const Instance& instance) {
  if (state.IsWarmPool(instance.name)) return false;
  if (state.HostCutOff(instance.host)) return false;
  if (HasOperation(state, instance.name, OperationKind::kDelete) ||
      HasOperation(state, instance.name, OperationKind::kDrain)) {
    return false;
  }
  switch (instance.state) {
    case InstanceState::kPreparing:
    case InstanceState::kStarting:
    case InstanceState::kRunning:
      return true;
    case InstanceState::kStopped:
    case InstanceState::kSuspended:
      return HasOperation(state, instance.name, OperationKind::kStart);
    case InstanceState::kDeleted:
    case InstanceState::kUnknown:
      return false;
  }
  return false;
}

bool RegistrationTimedOut(const PoolState& state, const Instance& instance,
                          const PoolPolicy& policy, TimePoint now) {
  if (instance.node) return false;
  if (state.OperationOn(instance.name)) return false;  // its operation owns the outcome
  if (state.HostCutOff(instance.host)) return false;   // no news from its host either
  if (!state.nomad.reachable) return false;  // no news from Nomad is not "never registered"
  if (instance.state == InstanceState::kRunning) {
    auto since =
        instance.first_seen_running_at ? instance.first_seen_running_at : instance.launched_at;
    return since && now - *since >= policy.node_registration_timeout;
  }
  if (instance.state == InstanceState::kPreparing || instance.state == InstanceState::kStarting) {
    return instance.launched_at && now - *instance.launched_at >= policy.startup_timeout;
  }
  return false;
}

PoolStatus ComputeStatus(const PoolState& state, const PoolPolicy& policy, TimePoint now) {
  PoolStatus status;
  status.last_event_ns = state.last_event_ns;
  auto not_ready = [&](std::string reason) {
    status.ready = false;
    status.reasons.push_back(std::move(reason));
  };

  std::map<std::string, int> cut_off_instances;
  for (const auto& instance : state.instances) {
    if (!BelongsToPool(state.prefix, instance.name)) continue;
    if (state.HostCutOff(instance.host)) {
      ++cut_off_instances[instance.host];
      continue;
    }
    if (auto phase = state.WarmPhaseOf(instance.name)) {
      (*phase == WarmPhase::kWarm ? status.warm : status.warming).push_back(instance.name);
    } else if (IsCounted(state, instance)) {
      status.counted.push_back(instance.name);
    } else if (instance.state == InstanceState::kStopped) {
      status.stopped.push_back(instance.name);
    } else if (instance.state == InstanceState::kSuspended) {
      status.suspended.push_back(instance.name);
    } else if (instance.state == InstanceState::kDeleted) {
      status.deleted.push_back(instance.name);
    } else if (instance.state == InstanceState::kUnknown) {
      status.unknown.push_back(instance.name);
    }
  }
  // A launch counts from the moment it is requested, before multipassd lists
  // it; but not one on a host that does not answer: like that host's
  // instances, it is capacity nobody can vouch for (its hostd may have died
  // before multipassd ever saw it), and the next Scale must place its share
  // elsewhere.
  for (const auto& op : state.operations) {
    if (op.kind != OperationKind::kLaunch || state.Find(op.instance)) continue;
    if (state.HostCutOff(op.host)) {
      ++cut_off_instances[op.host];
      continue;
    }
    if (state.IsWarmPool(op.instance)) {
      status.warming.push_back(op.instance);
    } else {
      status.counted.push_back(op.instance);
    }
  }
  status.count = static_cast<std::int64_t>(status.counted.size());
  for (const auto& [host, reach] : state.hosts) {
    if (!state.HostCutOff(host)) continue;
    status.unreachable_hosts[host] =
        reach.reason + " (" + std::to_string(cut_off_instances[host]) + " instance(s) not counted)";
  }

  if (!state.multipass.reachable) {
    not_ready("multipassd unreachable: " + state.multipass.reason);
  }
  if (!state.nomad.reachable) not_ready("Nomad unreachable: " + state.nomad.reason);
  if (state.active_scale_request_id) {
    not_ready("scale request " + *state.active_scale_request_id + " in progress");
  }
  for (const auto& op : state.operations) {
    if (state.IsWarmPool(op.instance)) continue;  // the warm pool's own work
    // Waits for its host, which unreachable_hosts names; the pool's answer
    // stays ready on that account, as for the host's instances.
    if (state.HostCutOff(op.host)) continue;
    std::string text = std::string(ToString(op.kind)) + " of " + op.instance + " in flight for " +
                       Since(op.started_at, now);
    if (!op.request_id.empty()) text += " (request " + op.request_id + ")";
    not_ready(std::move(text));
  }
  for (const auto& instance : state.instances) {
    if (!BelongsToPool(state.prefix, instance.name) || state.OperationOn(instance.name) ||
        state.IsWarmPool(instance.name) || state.HostCutOff(instance.host))
      continue;
    if (RegistrationTimedOut(state, instance, policy, now)) {
      not_ready(instance.name + " has not registered as a Nomad node within " +
                config::FormatGoDuration(instance.state == InstanceState::kRunning
                                             ? policy.node_registration_timeout
                                             : policy.startup_timeout) +
                "; it will be replaced");
    } else if (instance.state == InstanceState::kRunning && !instance.node) {
      auto since =
          instance.first_seen_running_at ? instance.first_seen_running_at : instance.launched_at;
      not_ready(instance.name + " is running, its Nomad node has not registered yet" +
                (since ? " (waiting for " + Since(*since, now) + ")" : std::string()));
    } else if ((instance.state == InstanceState::kStarting ||
                instance.state == InstanceState::kPreparing) &&
               !instance.node) {
      not_ready(instance.name + " is " + std::string(ToString(instance.state)));
    } else if (instance.node && IsCounted(state, instance)) {
      if (instance.node->status == NodeStatus::kInitializing) {
        not_ready("Nomad node " + instance.node->id + " of " + instance.name + " is initializing");
      } else if (instance.node->draining) {
        not_ready("Nomad node " + instance.node->id + " of " + instance.name + " is draining");
      } else if (!instance.node->eligible) {
        // Only our drains make nodes ineligible, and none is recorded: a
        // drain whose record was lost (state.db emptied or replaced), or a
        // node marked by hand. It takes no work, so it is no ready capacity.
        not_ready("Nomad node " + instance.node->id + " of " + instance.name +
                  " is ineligible and no drain of it is recorded (a lost state.db, or marked by "
                  "hand): scale in to remove it, or mark it eligible");
      }
    }
  }
  const auto& failures = state.launch_failures;
  if (failures.next_retry_at && now < *failures.next_retry_at) {
    not_ready("launch backoff until " + FormatUtc(*failures.next_retry_at) + " after " +
              std::to_string(failures.consecutive) +
              " consecutive launch failure(s); last error: " + failures.last_error);
  }
  return status;
}

std::map<std::string, std::string> PoolStatus::Meta() const {
  std::map<std::string, std::string> meta;
  if (last_event_ns) meta[kMetaLastEvent] = std::to_string(*last_event_ns);
  if (!reasons.empty()) meta[kMetaNotReady] = Join(reasons, "; ");
  if (!stopped.empty()) meta[kMetaStopped] = Join(stopped, ",");
  if (!suspended.empty()) meta[kMetaSuspended] = Join(suspended, ",");
  if (!deleted.empty()) meta[kMetaDeleted] = Join(deleted, ",");
  if (!unknown.empty()) meta[kMetaUnknown] = Join(unknown, ",");
  if (!warm.empty()) meta[kMetaWarm] = Join(warm, ",");
  if (!warming.empty()) meta[kMetaWarming] = Join(warming, ",");
  if (!unreachable_hosts.empty()) {
    std::vector<std::string> hosts;
    for (const auto& [host, why] : unreachable_hosts) hosts.push_back(host + ": " + why);
    meta[kMetaHostsUnreachable] = Join(hosts, "; ");
  }
  return meta;
}

}  // namespace mps::scaling
