#pragma once
// The state cache actor: the current view of every pool the autoscaler has
// asked about (instances, their Nomad nodes, operations in flight, launch
// failures, the last scaling event), so Status is answered from memory. It is
// also the only writer of the StateStore and the only publisher of the
// scale.*, instance.* and node.* events of the status endpoint: whoever
// changes the world reports to it, and it records before it answers.
// Its messages are in cache/messages.h.
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <vector>

#include <caf/all.hpp>

#include "bus/events.h"
#include "cache/messages.h"
#include "config/hosts_file.h"
#include "metrics/registry.h"
#include "scaling/instance_namer.h"

namespace mps::cache {

class StatusBoard;

struct CacheOptions {
  std::filesystem::path state_dir;        // holds state.db (scaling/state_store.h)
  std::shared_ptr<StatusBoard> board;     // may be null: Status always asks the actor
  bus::EventPublisher* events = nullptr;  // may be null; must outlive the actor
  scaling::InstanceNamer::Random random;  // empty: std::random_device
  // How long a Plan for a pool never observed yet waits for its first
  // observation before it is answered "not synced".
  std::chrono::milliseconds first_sync_wait = std::chrono::seconds(60);
  std::shared_ptr<metrics::Registry> metrics;  // the pool gauges (pool_metrics.h); may be null
  // Every Multipass host (name, zone, weight), in the hosts file's order.
  // Empty: one host, scaling::kDefaultHost.
  std::vector<config::HostEntry> hosts;
};

// The Status answers the cache actor posts after every message it handles
// (so at least once a second, with each observation), keyed by the policy
// map they answer. Status reads them here without a round trip to the actor:
// the zguide's Clone pattern within one process. An answer older than the
// caller's limit is not used (the actor is asked instead).
class StatusBoard {
 public:
  void Post(const ConfigMap& policy, const StatusAnswer& answer);
  std::optional<StatusAnswer> Read(const ConfigMap& policy,
                                   std::chrono::steady_clock::duration max_age) const;

 private:
  struct Entry;
  mutable std::shared_mutex mutex_;
  std::map<ConfigMap, std::shared_ptr<const Entry>> entries_;
};

// Throws scaling::StateStoreError when state_dir cannot hold the store.
caf::actor SpawnStateCache(caf::actor_system& system, CacheOptions options);

// Status for the gRPC thread: the board's answer when it is fresh, else the
// actor's (blocking, bounded by `timeout`; throws std::runtime_error).
class StatusReader {
 public:
  StatusReader(caf::actor_system& system, caf::actor actor,
               std::shared_ptr<const StatusBoard> board,
               std::chrono::milliseconds timeout = std::chrono::seconds(5));
  StatusAnswer Status(const ConfigMap& policy) const;

 private:
  caf::actor_system& system_;
  caf::actor actor_;
  std::shared_ptr<const StatusBoard> board_;
  std::chrono::milliseconds timeout_;
};

}  // namespace mps::cache
