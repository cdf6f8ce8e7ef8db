#pragma once
// Serves the nomad.* bus contract (contracts/nomad.h) with CAF actors.
// Every request runs on its own blocking (hence detached) actor, because the
// Nomad calls block for up to minutes (drains): neither the bus I/O thread
// nor CAF's scheduler threads ever wait on HTTP. All of them share one
// Cancellation, so a stop ends every call at once.
#include <chrono>
#include <memory>

#include <caf/all.hpp>

#include "bus/events.h"
#include "bus/server.h"
#include "nomad/nomad_config.h"

namespace mps::nomad {

struct NomadActorOptions {
  // Per HTTP call (blocking queries add their wait on top).
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);
  // Where NOMAD_ALLOC_ID is looked up to find the autoscaler's own node.
  EnvLookup env = ProcessEnv();
  // How long a drain is watched past its deadline, and in all when the policy
  // sets no deadline (DrainOptions::grace / no_deadline_limit).
  std::chrono::milliseconds drain_grace = std::chrono::seconds(30);
  std::chrono::milliseconds drain_no_deadline_limit = std::chrono::hours(1);
};

// What ServeNomad returns: a handle on the served actor. Copyable.
//
// Stop() cancels every Nomad call in flight (blocking queries, drains, writes),
// answers those requests with the bus error kShuttingDown and refuses new ones
// with it; the blocking workers return within milliseconds, so the
// actor_system's destructor no longer waits for them. Idempotent, thread-safe.
//
// The service also stops by itself once every copy of the handle AND the
// BusServer it serves on are gone: a handle that is dropped (or never kept)
// while the server still serves does not stop it.
class NomadService {
 public:
  NomadService() = default;
  void Stop();
  bool stopped() const;

 private:
  friend NomadService ServeNomad(caf::actor_system&, bus::BusServer&, bus::EventPublisher*,
                                 NomadConnectionConfig, NomadActorOptions);
  struct Owner;
  std::shared_ptr<Owner> owner_;
};

// Registers nomad.pool_nodes, nomad.select, nomad.drain, nomad.purge and
// nomad.mark_eligible on `server` (call before server.Start()). `events` may
// be null (no events published); it must outlive the server. The connection
// config is fixed for the server's lifetime. Each request runs on a blocking
// actor of its own until answered: stop the service (or destroy the server and
// the handle) before destroying the actor_system, whose destructor waits for them.
NomadService ServeNomad(caf::actor_system& system, bus::BusServer& server,
                        bus::EventPublisher* events, NomadConnectionConfig config,
                        NomadActorOptions options = {});

// Stops every Nomad service of this process, as NomadService::Stop() does:
// for a process that is ending and holds no handle (multipass-target when its
// host asks it to stop).
void StopAllNomadServices();

}  // namespace mps::nomad
