#pragma once
// The contract of what multipass-target serves on its status endpoint
// (plugin config `status_address`; events on
// bus::EventsEndpointFor(status_address)). Only reads are served there: every
// key admitted is a read-only key. Requests: `state.pools` (below) and
// `events.replay` (bus/events.h). Events: one stream for every pool, topic =
// type, every event carries its pool.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace mps::contracts::status {

enum class OperationKind { kLaunch, kStart, kDrain, kDelete, kStop };
inline constexpr std::array<std::pair<OperationKind, std::string_view>, 5> EnumNames(
    OperationKind) {
  return {{{OperationKind::kLaunch, "launch"},
           {OperationKind::kStart, "start"},
           {OperationKind::kDrain, "drain"},
           {OperationKind::kDelete, "delete"},
           {OperationKind::kStop, "stop"}}};
}

// An operation of a Scale in flight.
struct Operation {
  OperationKind kind = OperationKind::kLaunch;
  std::string instance;
  std::int64_t started_ns = 0;  // Unix time
  std::string request_id;
  template <class V>
  void VisitFields(V& v) {
    v.Required("kind", kind);
    v.Required("instance", instance);
    v.Required("started_ns", started_ns);
    v.Required("request_id", request_id);
  }
};

struct InstanceView {
  std::string name;
  std::string state;     // "running", "starting", "stopped", ..., "warming", "warm"
  bool counted = false;  // counts toward the pool's count
  std::optional<std::string> node_id;
  std::optional<std::string> node_status;  // "ready", "draining", "down", ...
  std::optional<std::int64_t> launched_ns;
  std::string host{};  // the Multipass host it is on
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
    v.Required("state", state);
    v.Required("counted", counted);
    v.Nullable("node_id", node_id);
    v.Nullable("node_status", node_status);
    v.Nullable("launched_ns", launched_ns);
    v.Optional("host", host);
  }
};

// One Multipass host of a pool: its health as the pool's listings see it,
// and how many of the pool's instances it holds.
struct HostView {
  std::string name;
  std::string zone;
  bool reachable = true;
  std::string reason;          // why not, when not reachable
  std::int64_t instances = 0;  // of this pool, listed on it
  std::int64_t counted = 0;    // of those, counted
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
    v.Optional("zone", zone);
    v.Required("reachable", reachable);
    v.Optional("reason", reason);
    v.Required("instances", instances);
    v.Required("counted", counted);
  }
};

struct LaunchFailures {
  std::int64_t consecutive = 0;
  std::string last_error;
  std::optional<std::int64_t> next_retry_ns;
  template <class V>
  void VisitFields(V& v) {
    v.Required("consecutive", consecutive);
    v.Required("last_error", last_error);
    v.Nullable("next_retry_ns", next_retry_ns);
  }
};

// One pool as the state cache sees it.
struct PoolView {
  std::string pool;  // the instance name prefix
  std::int64_t count = 0;
  bool ready = false;
  std::vector<std::string> reasons;  // why not ready
  std::optional<std::int64_t> last_event_ns;
  std::optional<std::string> scale_request;  // the Scale running now
  std::vector<Operation> operations;
  std::vector<InstanceView> instances;
  LaunchFailures launch_failures;
  std::vector<HostView> hosts;  // where the pool's instances are, and each host's health
  template <class V>
  void VisitFields(V& v) {
    v.Optional("hosts", hosts);
    v.Required("pool", pool);
    v.Required("count", count);
    v.Required("ready", ready);
    v.Required("reasons", reasons);
    v.Nullable("last_event_ns", last_event_ns);
    v.Nullable("scale_request", scale_request);
    v.Required("operations", operations);
    v.Required("instances", instances);
    v.Required("launch_failures", launch_failures);
  }
};

struct PoolsReply {
  std::vector<PoolView> pools;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pools", pools);
  }
};
struct PoolsRequest {
  static constexpr std::string_view kType = "state.pools";
  using Reply = PoolsReply;
  std::optional<std::string> pool;  // only this pool; absent: every pool
  template <class V>
  void VisitFields(V& v) {
    v.Optional("pool", pool);
  }
};

// Events (topic = kType).
struct ScaleRequested {
  static constexpr std::string_view kType = "scale.requested";
  std::string pool;
  std::string request_id;
  std::int64_t target = 0;
  std::int64_t current = 0;
  bool dry_run = false;
  std::string reason;  // the autoscaler's
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("request_id", request_id);
    v.Required("target", target);
    v.Required("current", current);
    v.Required("dry_run", dry_run);
    v.Required("reason", reason);
  }
};
struct ScalePlanned {
  static constexpr std::string_view kType = "scale.planned";
  std::string pool;
  std::string request_id;
  std::string outcome;  // the planner's outcome name
  std::string message;
  bool dry_run = false;
  std::vector<std::string> actions;  // "launch web-4", ...
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("request_id", request_id);
    v.Required("outcome", outcome);
    v.Required("message", message);
    v.Optional("dry_run", dry_run);
    v.Required("actions", actions);
  }
};
struct ScaleCompleted {
  static constexpr std::string_view kType = "scale.completed";
  std::string pool;
  std::string request_id;
  std::int64_t count = 0;
  std::string message;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("request_id", request_id);
    v.Required("count", count);
    v.Required("message", message);
  }
};
struct ScaleFailed {
  static constexpr std::string_view kType = "scale.failed";
  std::string pool;
  std::string request_id;
  std::string error;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("request_id", request_id);
    v.Required("error", error);
  }
};
struct InstanceLaunching {
  static constexpr std::string_view kType = "instance.launching";
  std::string pool;
  std::string name;
  std::string image;
  // With several hosts: the host it is on (absent with one).
  std::optional<std::string> host{};
  template <class V>
  void VisitFields(V& v) {
    v.Optional("host", host);
    v.Required("pool", pool);
    v.Required("name", name);
    v.Required("image", image);
  }
};
struct InstanceRunning {
  static constexpr std::string_view kType = "instance.running";
  std::string pool;
  std::string name;
  // With several hosts: the host it is on (absent with one).
  std::optional<std::string> host{};
  template <class V>
  void VisitFields(V& v) {
    v.Optional("host", host);
    v.Required("pool", pool);
    v.Required("name", name);
  }
};
struct InstanceFailed {
  static constexpr std::string_view kType = "instance.failed";
  std::string pool;
  std::string name;
  std::string error;
  // With several hosts: the host it is on (absent with one).
  std::optional<std::string> host{};
  template <class V>
  void VisitFields(V& v) {
    v.Optional("host", host);
    v.Required("pool", pool);
    v.Required("name", name);
    v.Required("error", error);
  }
};
// The warm pool (issue 14): an instance is being prepared (launched or
// resumed preparing), and is prepared (node ineligible, VM stopped).
struct InstanceWarming {
  static constexpr std::string_view kType = "instance.warming";
  std::string pool;
  std::string name;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("name", name);
  }
};
struct InstanceWarm {
  static constexpr std::string_view kType = "instance.warm";
  std::string pool;
  std::string name;
  std::string node_id;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("name", name);
    v.Optional("node_id", node_id);
  }
};
struct InstanceDeleted {
  static constexpr std::string_view kType = "instance.deleted";
  std::string pool;
  std::string name;
  std::string reason;
  // With several hosts: the host it is on (absent with one).
  std::optional<std::string> host{};
  template <class V>
  void VisitFields(V& v) {
    v.Optional("host", host);
    v.Required("pool", pool);
    v.Required("name", name);
    v.Required("reason", reason);
  }
};
struct NodeRegistered {  // first seen for one of the pool's instances
  static constexpr std::string_view kType = "node.registered";
  std::string pool;
  std::string instance;
  std::string node_id;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("instance", instance);
    v.Required("node_id", node_id);
  }
};
struct NodeDraining {  // a Scale in started its drain
  static constexpr std::string_view kType = "node.draining";
  std::string pool;
  std::string instance;
  std::string node_id;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("instance", instance);
    v.Required("node_id", node_id);
  }
};
struct NodeDrained {  // its instance is deleted next
  static constexpr std::string_view kType = "node.drained";
  std::string pool;
  std::string instance;
  std::string node_id;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("instance", instance);
    v.Required("node_id", node_id);
  }
};
struct NodeDrainFailed {
  static constexpr std::string_view kType = "node.drain_failed";
  std::string pool;
  std::string instance;
  std::string node_id;
  std::string reason;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("instance", instance);
    v.Required("node_id", node_id);
    v.Required("reason", reason);
  }
};
struct NodePurged {
  static constexpr std::string_view kType = "node.purged";
  std::string pool;
  std::string node_id;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("node_id", node_id);
  }
};

// Every event of the status stream, for code that dispatches on the type.
using Events = std::tuple<ScaleRequested, ScalePlanned, ScaleCompleted, ScaleFailed,
                          InstanceLaunching, InstanceRunning, InstanceFailed, InstanceDeleted,
                          NodeRegistered, NodeDraining, NodeDrained, NodeDrainFailed, NodePurged>;

}  // namespace mps::contracts::status
