#pragma once
// The bus contract of the Multipass session actor: served by multipass-hostd
// (split mode) and in-process by multipass-target (direct mode). One type
// per request and reply; `Request::kType` is the message type and
// `Request::Reply` its reply. Errors come back as bus errors with
// kHandlerFailed and an AppCode (contracts/app_code.h): the MultipassError
// kind, or kNotAllowed for a name outside hostd's --allow-prefix.
// Requests that change the world need an idempotency key.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mps::contracts::multipass {

struct Instance {
  std::string name;
  std::string state;  // InstanceState name: "running", "starting", "stopped", ...
  std::vector<std::string> ipv4;
  std::string release;
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
    v.Required("state", state);
    v.Optional("ipv4", ipv4);
    v.Optional("release", release);
  }
};

struct InFlight {  // a launch the session has accepted and not finished
  std::string name;
  std::string image;
  std::int64_t submitted_ms = 0;
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
    v.Optional("image", image);
    v.Required("submitted_ms", submitted_ms);
  }
};

struct ListReply {
  std::vector<Instance> instances;
  std::vector<InFlight> in_flight;
  template <class V>
  void VisitFields(V& v) {
    v.Required("instances", instances);
    v.Optional("in_flight", in_flight);
  }
};
struct ListRequest {
  static constexpr std::string_view kType = "multipass.list";
  using Reply = ListReply;
  std::string prefix;  // the pool: names "<prefix>-..."; empty = every allowed name
  // With each running instance's IPv4 addresses. multipassd gets them with
  // an SSH command per running VM on its only RPC thread: background
  // observation sends false; true (the default, for the operator's
  // `mpscale instances`) only when someone wants to see them.
  bool addresses = true;
  template <class V>
  void VisitFields(V& v) {
    v.Optional("prefix", prefix);
    v.Optional("addresses", addresses);
  }
};

struct LaunchReply {
  std::string name;
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
  }
};
struct LaunchRequest {
  static constexpr std::string_view kType = "multipass.launch";
  using Reply = LaunchReply;
  std::string name;
  std::string image;  // empty: the daemon's default
  std::optional<int> cpus;
  std::string memory;  // "2G"; empty: default
  std::string disk;
  std::string cloud_init;  // user-data text
  std::optional<int> timeout_s;
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
    v.Optional("image", image);
    v.Optional("cpus", cpus);
    v.Optional("memory", memory);
    v.Optional("disk", disk);
    v.Optional("cloud_init", cloud_init);
    v.Optional("timeout_s", timeout_s);
  }
};

struct NamesRequestFields {
  std::vector<std::string> names;
  template <class V>
  void VisitFields(V& v) {
    v.Required("names", names);
  }
};

struct DeleteReply {
  std::vector<std::string> deleted;
  template <class V>
  void VisitFields(V& v) {
    v.Required("deleted", deleted);
  }
};
struct DeleteRequest : NamesRequestFields {  // names non-empty
  static constexpr std::string_view kType = "multipass.delete";
  using Reply = DeleteReply;
};

struct StartReply {
  std::vector<std::string> started;
  template <class V>
  void VisitFields(V& v) {
    v.Required("started", started);
  }
};
struct StartRequest : NamesRequestFields {  // names non-empty
  static constexpr std::string_view kType = "multipass.start";
  using Reply = StartReply;
};

struct StopReply {
  std::vector<std::string> stopped;
  template <class V>
  void VisitFields(V& v) {
    v.Required("stopped", stopped);
  }
};
// Stops running instances (a warm-pool instance once prepared, issue 14).
struct StopRequest : NamesRequestFields {  // names non-empty
  static constexpr std::string_view kType = "multipass.stop";
  using Reply = StopReply;
};

struct InfoReply {
  std::vector<Instance> instances;  // only those that exist
  template <class V>
  void VisitFields(V& v) {
    v.Required("instances", instances);
  }
};
// State and image of the named instances, without the daemon's runtime
// information (no SSH, no addresses); names that do not exist are left out.
struct InfoRequest : NamesRequestFields {
  static constexpr std::string_view kType = "multipass.info";
  using Reply = InfoReply;
};

struct VersionReply {
  std::string version;
  std::string address;
  template <class V>
  void VisitFields(V& v) {
    v.Required("version", version);
    v.Required("address", address);
  }
};
struct VersionRequest {
  static constexpr std::string_view kType = "multipass.version";
  using Reply = VersionReply;
  template <class V>
  void VisitFields(V&) {}
};

// Events (topic = kType).
struct InstanceLaunching {
  static constexpr std::string_view kType = "instance.launching";
  std::string name;
  std::string image;
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
    v.Optional("image", image);
  }
};
struct InstanceRunning {
  static constexpr std::string_view kType = "instance.running";
  std::string name;
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
  }
};
struct InstanceFailed {
  static constexpr std::string_view kType = "instance.failed";
  std::string name;
  std::string error;
  std::string kind;  // AppCode name
  std::optional<std::string> leftover;
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
    v.Required("error", error);
    v.Required("kind", kind);
    v.Optional("leftover", leftover);
  }
};
struct InstanceDeleted {
  static constexpr std::string_view kType = "instance.deleted";
  std::string name;
  template <class V>
  void VisitFields(V& v) {
    v.Required("name", name);
  }
};

}  // namespace mps::contracts::multipass
