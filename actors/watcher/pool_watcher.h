#pragma once
// The pool watcher keeps the state cache true to the world, as one
// event-based actor with no thread of its own:
//  - every interval (or at once when woken: a Status for a new pool, an
//    instance event from hostd) it lists each known pool's instances on
//    every Multipass host (multipass.list, without addresses; one listing
//    per host and pool in flight) and reports each host's to the cache;
//  - with several hosts, every capacity_interval (or when woken) it asks
//    each host's hostd for its capacity (host.capacity) for placement;
//  - per pool, one Nomad blocking query on the node table at a time
//    (nomad.pool_nodes with an index), reported whenever Nomad's nodes
//    change, so nodes are never polled;
//  - after a listing, when both sides are known, it hands the pool to the
//    pool controller (tend_atom), which resumes operations nobody drives or
//    reconciles.
#include <chrono>

#include <caf/all.hpp>

#include "controller/pool_controller.h"

namespace mps::watcher {

struct WatcherOptions {
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds list_timeout{3000};
  // How long one blocking query on Nomad's nodes waits for a change.
  std::chrono::milliseconds nodes_wait{30000};
  // After a failed node query, before the next.
  std::chrono::milliseconds nodes_retry{1000};
  // List with addresses, as before issue 12: multipassd SSHes into every
  // running VM for each listing. Only to measure that cost
  // (bench/daemon_load_bench); never for production.
  bool list_addresses = false;
  // With several hosts: how often each hostd is asked for its capacity
  // (host.capacity), for placement.
  std::chrono::milliseconds capacity_interval{5000};
};

using wake_atom = caf::atom_constant<caf::atom("pwwake")>;
// A hostd published a capacity change: ask that host's capacity now.
using capacity_wake_atom = caf::atom_constant<caf::atom("pwcapwake")>;

caf::actor SpawnPoolWatcher(caf::actor_system& system, WatcherOptions options,
                            controller::BusLinks links, caf::actor cache, caf::actor controller);

}  // namespace mps::watcher
