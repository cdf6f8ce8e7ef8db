#pragma once
// Serves the nomad.* bus contract (contracts/nomad.h) with CAF actors.
// Every request runs on its own blocking (hence detached) actor, because the
// Nomad calls block for up to minutes (drains): neither the bus I/O thread
// nor CAF's scheduler threads ever wait on HTTP.
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

// Registers nomad.pool_nodes, nomad.select, nomad.drain, nomad.purge and
// nomad.mark_eligible on `server` (call before server.Start()). `events` may
// be null (no events published); it must outlive the server. The connection
// config is fixed for the server's lifetime. The actor_system's destructor
// waits for drains still running (each ends by its deadline + grace).
void ServeNomad(caf::actor_system& system, bus::BusServer& server, bus::EventPublisher* events,
                NomadConnectionConfig config, NomadActorOptions options = {});

}  // namespace mps::nomad
