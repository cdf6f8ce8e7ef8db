#pragma once
// The pool controller: one event-based actor that carries every Scale of
// every pool from plan to outcome, and the background work the watcher finds
// due (operations nobody drives after a restart, reconciliation). It asks the
// state cache for the plan, runs launches, starts, deletes, selects, drains
// and purges with asynchronous bus requests to the Multipass session and the
// Nomad actor (launches at most max_parallel_launches at a time on each
// Multipass host), reports
// each step to the cache as a message, and always ends a plan with a recorded
// outcome: whatever fails, throws or stops answering, the pool accepts the
// next Scale afterwards. Nothing in it blocks; a peer that stops answering
// costs at most its request's deadline.
//
// One actor owns all pools: the pools share the two bus links and the cache,
// a Scale's work is a handful of messages, and per-pool isolation comes from
// the cache refusing a second plan for a pool that has one in flight.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <caf/all.hpp>

#include "bus/caf_contract.h"
#include "bus/client.h"
#include "contracts/multipass.h"
#include "contracts/nomad.h"
#include "metrics/registry.h"

namespace mps::controller {

using ConfigMap = std::map<std::string, std::string>;

// One Multipass host's link: its hostd (or, in direct mode, the in-process
// session), with what the hosts file says of it.
struct HostLink {
  std::string name;  // what plans, operations and Status call the host
  std::string zone;
  std::shared_ptr<bus::BusClient> client;
  std::string where;  // "multipass-hostd at tcp://..."
};

// The bus links the scale path uses, with where they lead (for messages).
struct BusLinks {
  // Every Multipass host, in the hosts file's order. Empty: the one host is
  // `multipass` (named scaling::kDefaultHost).
  std::vector<HostLink> hosts;
  std::shared_ptr<bus::BusClient> multipass;
  std::string multipass_where;  // "multipass-hostd at tcp://..."
  std::shared_ptr<bus::BusClient> nomad;
  std::string nomad_where;  // "Nomad at http://..."

  // `hosts`, or the one host `multipass` leads to.
  std::vector<HostLink> MultipassHosts() const;
  // The link to `host`. With one host, every name is that host's: an
  // operation recorded before hosts had names was on it. Among several, an
  // unknown name has none (null).
  const HostLink* Host(std::string_view host) const;
};

struct ControllerOptions {
  BusLinks links;
  caf::actor cache;
  // A cache request's deadline (Plan may wait for a pool's first observation
  // on top of this: see CacheOptions::first_sync_wait).
  std::chrono::milliseconds cache_timeout = std::chrono::seconds(5);
  std::chrono::milliseconds first_sync_wait = std::chrono::seconds(60);
  // A launch's bus deadline is the policy's image_download_timeout + 2 x
  // startup_timeout (multipassd applies it to SSH-up and again to cloud-init,
  // after the download) + this: the session's queue in front of the daemon.
  std::chrono::milliseconds launch_grace = std::chrono::seconds(60);
  // On top of a drain's deadline: Nomad's force-stop of what is left.
  std::chrono::milliseconds drain_grace = std::chrono::minutes(2);
  // Scale durations and outcomes, drains, purges, reconciliation actions; may be null.
  std::shared_ptr<metrics::Registry> metrics;
};

using scale_atom = caf::atom_constant<caf::atom("pcscale")>;
using scale_done_atom = caf::atom_constant<caf::atom("pcdone")>;
using tend_atom = caf::atom_constant<caf::atom("pctend")>;
using stop_atom = caf::atom_constant<caf::atom("pcstop")>;
using later_atom = caf::atom_constant<caf::atom("pclater")>;  // a run's timer fired

struct ScaleCommand {
  ConfigMap policy;
  std::int64_t target = 0;
  bool dry_run = false;
  std::string reason;
  std::string request_id;
  template <class V>
  void VisitFields(V& v) {
    v.Required("policy", policy);
    v.Required("target", target);
    v.Optional("dry_run", dry_run);
    v.Optional("reason", reason);
    v.Required("request_id", request_id);
  }
};

enum class ScaleStatus {
  kDone,         // carried out
  kNoop,         // nothing to do (the plugin answers ABORTED: no cooldown)
  kInvalid,      // the policy is wrong (INVALID_ARGUMENT)
  kRefused,      // refused by the planner (FAILED_PRECONDITION)
  kUnavailable,  // a peer could not be reached, or backing off; a retry may succeed
  kFailed,       // some steps failed; the message names each
  kStopping,     // the plugin is stopping; what was in flight is resumed by the next process
};
inline constexpr std::array<std::pair<ScaleStatus, std::string_view>, 7> EnumNames(ScaleStatus) {
  return {{{ScaleStatus::kDone, "done"},
           {ScaleStatus::kNoop, "noop"},
           {ScaleStatus::kInvalid, "invalid"},
           {ScaleStatus::kRefused, "refused"},
           {ScaleStatus::kUnavailable, "unavailable"},
           {ScaleStatus::kFailed, "failed"},
           {ScaleStatus::kStopping, "stopping"}}};
}

struct ScaleOutcome {
  std::string request_id;
  ScaleStatus status = ScaleStatus::kFailed;
  std::string message;
  template <class V>
  void VisitFields(V& v) {
    v.Required("request_id", request_id);
    v.Required("status", status);
    v.Optional("message", message);
  }
};

// From the watcher: the pool's latest listing and nodes; the controller runs
// what is due (resume undriven operations, else reconcile) unless the pool
// already has a run.
struct TendRequest {
  std::string pool;
  ConfigMap policy;
  // Every listed host's latest listing, merged (names are unique across
  // hosts), and which hosts those are: an operation on a host not among
  // them is resolved once its host answers.
  contracts::multipass::ListReply instances;
  std::vector<std::string> listed_hosts;
  contracts::nomad::PoolNodesReply nodes;
  template <class V>
  void VisitFields(V& v) {
    v.Required("pool", pool);
    v.Required("policy", policy);
    v.Required("instances", instances);
    v.Optional("listed_hosts", listed_hosts);
    v.Required("nodes", nodes);
  }
};

MPS_CAF_INSPECT_BY_CONTRACT(ScaleCommand)
MPS_CAF_INSPECT_BY_CONTRACT(ScaleOutcome)
MPS_CAF_INSPECT_BY_CONTRACT(TendRequest)

caf::actor SpawnPoolController(caf::actor_system& system, ControllerOptions options);

// For the gRPC thread: sends `command` and waits for its outcome, or for the
// controller to end (kStopping). The only wait on the Scale path.
ScaleOutcome RunScale(caf::actor_system& system, const caf::actor& controller,
                      const ScaleCommand& command);

// Asks the controller to answer every waiting Scale with kStopping and quit;
// waits at most `grace` for it to finish.
void StopPoolController(caf::actor_system& system, const caf::actor& controller,
                        std::chrono::milliseconds grace);

}  // namespace mps::controller
