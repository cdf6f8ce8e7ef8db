#pragma once
// The bus contract of a Multipass host's capacity, served by multipass-hostd
// next to the multipass.* types: what the host has, what its instances hold,
// the headroom rules set on hostd and how healthy it is. The plugin feeds
// the reply to placement (scaling/host_capacity_view.h); hostd also
// publishes the same payload as a `host.capacity` event when it changes.
#include <cstdint>
#include <string>
#include <string_view>

namespace mps::contracts::host {

struct Totals {
  std::int64_t cpus = 0;
  std::int64_t memory_bytes = 0;
  std::int64_t disk_bytes = 0;
  // "daemon_info" (multipassd 1.15+) or "host" (this machine's
  // /proc/meminfo, CPU count and statvfs of `disk_path`).
  std::string source;
  std::string disk_path;  // with source "host"
  std::string error;      // what could not be read (those totals are 0)
  template <class V>
  void VisitFields(V& v) {
    v.Required("cpus", cpus);
    v.Required("memory_bytes", memory_bytes);
    v.Required("disk_bytes", disk_bytes);
    v.Required("source", source);
    v.Optional("disk_path", disk_path);
    v.Optional("error", error);
  }
};

// What the instances multipassd lists (every state but deleted, within
// hostd's --allow-prefix or not: they all take the host's resources) hold.
// Sizes are those hostd launched them with; multipassd reports an
// instance's size only with runtime information (an SSH command per VM), so
// an instance hostd did not launch is counted at Multipass's defaults (1
// CPU, 1 GiB, 5 GiB) and in `estimated`.
struct Allocation {
  std::int64_t instances = 0;
  std::int64_t cpus = 0;
  std::int64_t memory_bytes = 0;
  std::int64_t disk_bytes = 0;
  std::int64_t estimated = 0;
  template <class V>
  void VisitFields(V& v) {
    v.Required("instances", instances);
    v.Required("cpus", cpus);
    v.Required("memory_bytes", memory_bytes);
    v.Required("disk_bytes", disk_bytes);
    v.Required("estimated", estimated);
  }
};

// hostd's --cpu-allocation-ratio, --memory-allocation-ratio,
// --reserve-memory, --reserve-disk and --max-instances.
struct Headroom {
  double cpu_allocation_ratio = 1.0;
  double memory_allocation_ratio = 1.0;
  std::int64_t reserve_memory_bytes = 0;
  std::int64_t reserve_disk_bytes = 0;
  std::int64_t max_instances = 0;  // 0: no limit
  template <class V>
  void VisitFields(V& v) {
    v.Required("cpu_allocation_ratio", cpu_allocation_ratio);
    v.Required("memory_allocation_ratio", memory_allocation_ratio);
    v.Required("reserve_memory_bytes", reserve_memory_bytes);
    v.Required("reserve_disk_bytes", reserve_disk_bytes);
    v.Required("max_instances", max_instances);
  }
};

struct Health {
  bool daemon_reachable = false;  // multipassd answered (and knows our certificate)
  std::string daemon_error;       // why not, when not
  std::string daemon_version;
  // Launches that failed in a row since the last one that succeeded, and the
  // last failure's message.
  std::int64_t consecutive_launch_failures = 0;
  std::string last_launch_failure;
  template <class V>
  void VisitFields(V& v) {
    v.Required("daemon_reachable", daemon_reachable);
    v.Optional("daemon_error", daemon_error);
    v.Optional("daemon_version", daemon_version);
    v.Required("consecutive_launch_failures", consecutive_launch_failures);
    v.Optional("last_launch_failure", last_launch_failure);
  }
};

struct CapacityReply {
  Totals totals;
  Allocation allocated;
  Headroom headroom;
  Health health;
  template <class V>
  void VisitFields(V& v) {
    v.Required("totals", totals);
    v.Required("allocated", allocated);
    v.Required("headroom", headroom);
    v.Required("health", health);
  }
};

struct CapacityRequest {
  static constexpr std::string_view kType = "host.capacity";
  using Reply = CapacityReply;
  template <class V>
  void VisitFields(V&) {}
};

// Event (topic = kType): the reply, published by hostd when it changed.
struct CapacityChanged : CapacityReply {
  static constexpr std::string_view kType = "host.capacity";
};

}  // namespace mps::contracts::host
