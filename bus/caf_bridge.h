#pragma once
// Bridges the bus and CAF. Bus sockets stay on their I/O threads; actors see
// ordinary CAF messages, and CAF owns scheduling and request timeouts.
//
// Serving: an actor that handles `(bus_request_atom, Envelope)` and answers a
// BusAnswer (directly or through a response promise) serves a bus message type.
// Calling: the actor from SpawnBusCaller answers `(bus_call_atom, type,
// payload, CallOptions)` with a BusAnswer once the remote side replied.
//
// Shutdown order: destroy BusServer/BusClient objects before the
// caf::actor_system, since they hold actor handles.
#include <memory>
#include <optional>
#include <string>

#include <caf/all.hpp>

#include "bus/client.h"
#include "bus/server.h"

namespace mps::bus {

using bus_request_atom = caf::atom_constant<caf::atom("busreq")>;
using bus_call_atom = caf::atom_constant<caf::atom("buscall")>;
using bus_done_atom = caf::atom_constant<caf::atom("busdone")>;

struct BusAnswer {
  std::optional<BusError> error;
  nlohmann::json payload = nlohmann::json::object();

  static BusAnswer Ok(nlohmann::json payload) { return {std::nullopt, std::move(payload)}; }
  static BusAnswer Fail(BusError error) { return {std::move(error), nlohmann::json::object()}; }
};

// Serves `type` on `server` with `handler`; the CAF request timeout is the
// bus request's remaining deadline. Call before server.Start().
void ServeWithActor(BusServer& server, caf::actor_system& system, const std::string& type,
                    const caf::actor& handler);

caf::actor SpawnBusCaller(caf::actor_system& system, std::shared_ptr<BusClient> client);

}  // namespace mps::bus

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mps::bus::Envelope)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mps::bus::BusAnswer)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mps::bus::Responder)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mps::bus::CallResult)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(mps::bus::CallOptions)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(nlohmann::json)
