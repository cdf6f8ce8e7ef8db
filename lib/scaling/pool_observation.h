#pragma once
// Folds what the Multipass and Nomad actors report (the replies of
// multipass.list and nomad.pool_nodes) into a PoolState, and decides what a
// launch left pending by a crashed process needs. Pure: no I/O, no clock.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "contracts/status.h"
#include "scaling/pool_state.h"
#include "scaling/pool_status.h"

namespace mps::cache {

// "running", "starting", ... as the Multipass session names states.
scaling::InstanceState InstanceStateFromName(const std::string& name);
scaling::NodeStatus NodeStatusFromName(const std::string& name);

// Replaces the pool's instances on `host` (and those of no known host) with
// the ones that host lists that BelongsToPool, keeping what the cache knew of
// each (launch time, first seen running, its node); other hosts' instances
// are left as they are. Returns the names newly seen running.
std::vector<std::string> ApplyInstanceList(scaling::PoolState& state, const nlohmann::json& list,
                                           scaling::TimePoint now,
                                           std::string_view host = scaling::kDefaultHost);

struct NodeChanges {
  // {instance, node id} of nodes seen for the first time.
  std::vector<std::pair<std::string, std::string>> registered;
};

// Attaches each node to the instance named by its node_id_attribute value;
// down nodes of the pool whose instance no longer exists become orphan_nodes.
NodeChanges ApplyPoolNodes(scaling::PoolState& state, const nlohmann::json& pool_nodes);

// What to do with a launch operation nobody is driving (its process died, or
// the link to multipassd broke mid-launch), given the latest multipass.list.
enum class PendingLaunch {
  kDone,      // listed running: the daemon finished it while nobody watched
  kWait,      // listed starting, or still in the daemon's launch queue
  kRelaunch,  // nowhere: launch again under the same name and idempotency key
  kCleanUp,   // listed in another state: a failed launch's leftover, delete it
};
PendingLaunch ResolvePendingLaunch(const std::string& instance, const nlohmann::json& list);

// The state.pools view of one pool (contracts/status.h), and its payload.
contracts::status::PoolView PoolViewOf(const scaling::PoolState& state,
                                       const scaling::PoolStatus& status);
nlohmann::json PoolViewJson(const scaling::PoolState& state, const scaling::PoolStatus& status);

std::int64_t UnixNanos(scaling::TimePoint t);

}  // namespace mps::cache
