#pragma once
// The answer to the autoscaler's Status call, computed from the cached pool
// state without any live query.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "scaling/pool_policy.h"
#include "scaling/pool_state.h"

namespace mps::scaling {

inline constexpr const char* kMetaLastEvent = "nomad_autoscaler.last_event";
inline constexpr const char* kMetaNotReady = "mps.not_ready";
inline constexpr const char* kMetaStopped = "mps.stopped";
inline constexpr const char* kMetaSuspended = "mps.suspended";
inline constexpr const char* kMetaDeleted = "mps.deleted";
inline constexpr const char* kMetaUnknown = "mps.unknown";
inline constexpr const char* kMetaWarm = "mps.warm";
inline constexpr const char* kMetaWarming = "mps.warming";
inline constexpr const char* kMetaHostsUnreachable = "mps.hosts_unreachable";

struct PoolStatus {
  // Instances that are or are about to be capacity: state preparing, starting
  // or running (plus launches not listed yet, and stopped/suspended instances
  // with a start in flight), without a drain or delete in flight. Stopped,
  // suspended, soft-deleted and unknown instances are NOT counted; they are
  // listed below instead.
  std::int64_t count = 0;
  bool ready = true;
  std::vector<std::string> reasons;  // one human sentence per not-ready cause
  std::optional<std::int64_t> last_event_ns;
  std::vector<std::string> counted;
  std::vector<std::string> stopped;
  std::vector<std::string> suspended;
  std::vector<std::string> deleted;  // soft-deleted, not purged
  std::vector<std::string> unknown;
  // The warm pool: prepared and stopped, and being prepared. Never counted;
  // their operations do not make the pool not ready (refilling runs in the
  // background and must not hold up the autoscaler).
  std::vector<std::string> warm;
  std::vector<std::string> warming;
  // Hosts of the pool that did not answer while others did, each with why
  // and how many of its instances are therefore not counted. The pool is not
  // made "not ready" by them: its count drops instead, so the autoscaler
  // scales out and the placement puts the new instances on the other hosts.
  std::map<std::string, std::string> unreachable_hosts;

  // StatusResponse.meta: last_event (when known) plus the mps.* keys above
  // (only when non-empty; lists are comma-separated, reasons "; "-separated).
  std::map<std::string, std::string> Meta() const;
};

PoolStatus ComputeStatus(const PoolState& state, const PoolPolicy& policy, TimePoint now);

// True when `instance` is counted by ComputeStatus. A warm-pool instance
// (warming or warm) never is: "counted" and "warm" exclude each other; nor
// is an instance on a host that is cut off (PoolState::HostCutOff).
bool IsCounted(const PoolState& state, const Instance& instance);

// An instance that should have become a Nomad node by now and has not: running
// without a node for node_registration_timeout (measured from
// first_seen_running_at, else launched_at), or stuck preparing/starting with no
// launch in flight for startup_timeout after launched_at.
bool RegistrationTimedOut(const PoolState& state, const Instance& instance,
                          const PoolPolicy& policy, TimePoint now);

// "2026-11-23T07:24:11Z".
std::string FormatUtc(TimePoint t);

}  // namespace mps::scaling
