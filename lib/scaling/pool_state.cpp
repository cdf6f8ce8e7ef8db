#include "scaling/pool_state.h"

#include <algorithm>

namespace mps::scaling {

std::string_view ToString(InstanceState s) {
  switch (s) {
    case InstanceState::kPreparing:
      return "preparing";
    case InstanceState::kStarting:
      return "starting";
    case InstanceState::kRunning:
      return "running";
    case InstanceState::kStopped:
      return "stopped";
    case InstanceState::kSuspended:
      return "suspended";
    case InstanceState::kDeleted:
      return "deleted";
    case InstanceState::kUnknown:
      return "unknown";
  }
  return "unknown";
}

std::string_view ToString(NodeStatus s) {
  switch (s) {
    case NodeStatus::kInitializing:
      return "initializing";
    case NodeStatus::kReady:
      return "ready";
    case NodeStatus::kDown:
      return "down";
    case NodeStatus::kDisconnected:
      return "disconnected";
  }
  return "unknown";
}

std::string_view ToString(OperationKind k) {
  for (const auto& [value, name] : EnumNames(k))
    if (value == k) return name;
  return "unknown";
}

std::string_view ToString(WarmPhase p) {
  for (const auto& [value, name] : EnumNames(p))
    if (value == p) return name;
  return "unknown";
}

std::chrono::seconds LaunchBackoff(int consecutive_failures) {
  if (consecutive_failures <= 0) return std::chrono::seconds(0);
  std::chrono::seconds backoff = kFirstLaunchBackoff;
  for (int i = 1; i < consecutive_failures && backoff < kMaxLaunchBackoff; ++i) backoff *= 2;
  return std::min(backoff, kMaxLaunchBackoff);
}

const Instance* PoolState::Find(std::string_view name) const {
  auto it = std::find_if(instances.begin(), instances.end(),
                         [&](const Instance& i) { return i.name == name; });
  return it == instances.end() ? nullptr : &*it;
}

const Operation* PoolState::OperationOn(std::string_view instance) const {
  auto it = std::find_if(operations.begin(), operations.end(),
                         [&](const Operation& o) { return o.instance == instance; });
  return it == operations.end() ? nullptr : &*it;
}

void PoolState::SetHostReachability(const std::string& host, Reachability r) {
  hosts[host] = std::move(r);
  bool any = false;
  std::string reasons;
  for (const auto& [name, reach] : hosts) {
    if (reach.reachable) {
      any = true;
      continue;
    }
    reasons += (reasons.empty() ? "" : "; ") +
               (hosts.size() == 1 ? reach.reason : "host " + name + ": " + reach.reason);
  }
  multipass = any ? Reachability{} : Reachability{false, reasons};
}

bool PoolState::HostCutOff(std::string_view host) const {
  if (!multipass.reachable) return false;
  auto it = hosts.find(host);
  return it != hosts.end() && !it->second.reachable;
}

std::string PoolState::HostOf(std::string_view instance) const {
  if (const Instance* i = Find(instance); i && !i->host.empty()) return i->host;
  if (const Operation* op = OperationOn(instance)) return op->host;
  return {};
}

void PoolState::RecordLaunchFailure(std::string error, TimePoint now,
                                    const std::string& request_id) {
  bool same_request = !request_id.empty() && launch_failures.consecutive > 0 &&
                      launch_failures.last_request_id == request_id;
  launch_failures.last_error = std::move(error);
  if (same_request) return;
  launch_failures.last_request_id = request_id;
  ++launch_failures.consecutive;
  launch_failures.next_retry_at = now + LaunchBackoff(launch_failures.consecutive);
}

void PoolState::RecordLaunchSuccess() {
  launch_failures = LaunchFailures{};
}

}  // namespace mps::scaling
