#pragma once
// What the state cache knows about one pool: plain data, filled from
// Multipass listings/events, Nomad node watches and the operations this
// process started. ComputeStatus and ScalePlanner read it; nothing here does
// I/O.
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scaling/host_placement.h"

namespace mps::scaling {

// The host of a plugin configured with one hostd (hostd_address) or with an
// in-process session (direct mode), and of operations recorded before a pool
// could span several hosts.
inline constexpr std::string_view kDefaultHost = "default";

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

enum class InstanceState {
  kPreparing,  // launch requested, not listed by multipassd yet
  kStarting,
  kRunning,
  kStopped,
  kSuspended,
  kDeleted,  // soft-deleted, not purged: the name is still taken
  kUnknown,
};
std::string_view ToString(InstanceState s);

enum class NodeStatus { kInitializing, kReady, kDown, kDisconnected };
std::string_view ToString(NodeStatus s);

struct NomadNode {
  std::string id;
  NodeStatus status = NodeStatus::kInitializing;
  bool draining = false;
  bool eligible = true;
  std::uint64_t create_index = 0;
};

struct Instance {
  std::string name;
  InstanceState state = InstanceState::kUnknown;
  std::optional<TimePoint> launched_at;
  std::optional<NomadNode> node;  // the node whose id attribute equals `name`
  std::optional<TimePoint> first_seen_running_at;
  std::string host{};  // the Multipass host that lists it
};

// kStop: a VM stopped to become (or go back to being) a warm instance.
enum class OperationKind { kLaunch, kStart, kDrain, kDelete, kStop };
inline constexpr std::array<std::pair<OperationKind, std::string_view>, 5> EnumNames(
    OperationKind) {
  return {{{OperationKind::kLaunch, "launch"},
           {OperationKind::kStart, "start"},
           {OperationKind::kDrain, "drain"},
           {OperationKind::kDelete, "delete"},
           {OperationKind::kStop, "stop"}}};
}
std::string_view ToString(OperationKind k);

struct Operation {
  OperationKind kind = OperationKind::kLaunch;
  std::string instance;
  TimePoint started_at;
  std::string request_id;
  // Where it runs: a launch's placed host, else the instance's host. Empty
  // only for operations built by tests of a single host.
  std::string host{};
  // A launch its host stopped answering about while other hosts answered:
  // it was no longer counted, so the autoscaler has placed its share
  // elsewhere since. Not persisted (after a restart it is made as recorded).
  bool host_lost = false;
  template <class V>
  void VisitFields(V& v) {
    v.Required("kind", kind);
    v.Required("instance", instance);
    v.Required("started_at", started_at);
    v.Optional("request_id", request_id);
    v.Optional("host", host);
    v.Optional("host_lost", host_lost);
  }
};

// First retry 10 s after a failure, doubling per consecutive failure, at most
// 5 minutes.
inline constexpr std::chrono::seconds kFirstLaunchBackoff{10};
inline constexpr std::chrono::seconds kMaxLaunchBackoff{300};
std::chrono::seconds LaunchBackoff(int consecutive_failures);

struct LaunchFailures {
  int consecutive = 0;  // Scale requests in a row whose launches failed
  std::string last_error;
  std::optional<TimePoint> next_retry_at;
  std::string last_request_id;  // of the latest failure
};

struct Reachability {
  bool reachable = true;
  std::string reason;  // why not, when not reachable
};

// A warm-pool instance (issue 14): being prepared (launched, waiting for its
// node, made ineligible, stopped), or prepared and stopped. Either way it is
// not capacity: never counted, never scaled in.
enum class WarmPhase { kWarming, kWarm };
inline constexpr std::array<std::pair<WarmPhase, std::string_view>, 2> EnumNames(WarmPhase) {
  return {{{WarmPhase::kWarming, "warming"}, {WarmPhase::kWarm, "warm"}}};
}
std::string_view ToString(WarmPhase p);

struct PoolState {
  std::string prefix;  // the pool's instance_name_prefix
  // Instances of the pool (names that BelongsToPool); others are ignored.
  std::vector<Instance> instances;
  std::vector<Operation> operations;  // in flight
  // Nodes of the pool whose instance no longer exists (purge candidates).
  std::vector<NomadNode> orphan_nodes;
  // Names left behind by failed launches, as reported by the Multipass side.
  std::vector<std::string> failed_launch_leftovers;
  LaunchFailures launch_failures;
  // The Scale request currently executing for this pool, if any.
  std::optional<std::string> active_scale_request_id;
  std::optional<std::int64_t> last_event_ns;  // last completed scaling event
  // Every host of the pool together: reachable while at least one of them
  // is (the rest of the code reads this); the reason names the unreachable
  // ones. Set through SetHostReachability once hosts are known.
  Reachability multipass;
  Reachability nomad;
  // Per host of the pool (the hosts its policy allows), as its last listing
  // went. Empty in tests of a single host that set `multipass` directly.
  std::map<std::string, Reachability, std::less<>> hosts;
  // What placement knows of each host (zone, weight, capacity, health).
  std::map<std::string, HostCapacity, std::less<>> capacity;
  // Warm-pool instances by name (persisted; see StateStore::WarmInstances).
  std::map<std::string, WarmPhase, std::less<>> warm;

  bool IsWarmPool(std::string_view name) const { return warm.find(name) != warm.end(); }
  std::optional<WarmPhase> WarmPhaseOf(std::string_view name) const {
    auto it = warm.find(name);
    return it == warm.end() ? std::nullopt : std::optional<WarmPhase>(it->second);
  }

  const Instance* Find(std::string_view name) const;
  const Operation* OperationOn(std::string_view instance) const;

  // Records one host's reachability and recomputes `multipass` from all of
  // them (with one host: exactly that host's).
  void SetHostReachability(const std::string& host, Reachability r);
  // True when `host` did not answer its last listing while another host of
  // the pool did: what is on it is neither counted nor touched (drained,
  // deleted, started) until it answers again. When every host is
  // unreachable the whole pool is (multipass.reachable is false) and
  // nothing is planned at all.
  bool HostCutOff(std::string_view host) const;
  // The host of an instance (listed, or the host of its operation); empty
  // when unknown.
  std::string HostOf(std::string_view instance) const;

  // Bookkeeping of launch outcomes; a success resets the backoff.
  // Failures count once per request: six launches of one Scale failing
  // together (one cause, e.g. a daemon restart) are one failure, not six.
  void RecordLaunchFailure(std::string error, TimePoint now, const std::string& request_id = {});
  void RecordLaunchSuccess();
};

}  // namespace mps::scaling
