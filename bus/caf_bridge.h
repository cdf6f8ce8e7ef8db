#pragma once
// Bridges the bus and CAF. Bus sockets stay on their I/O threads; actors see
// ordinary CAF messages, and CAF owns scheduling and request timeouts.
//
// Serving: an actor that handles `(bus_request_atom, Envelope)` and answers a
// BusAnswer (directly or through a response promise) serves a bus message
// type through ServeWithActor; an actor that handles `(bus_serve_atom,
// ticket, Envelope)` and answers through the Responder it claims from a
// ResponderTable serves one through ServeWithResponders.
// Calling: the actor from SpawnBusCaller answers `(bus_call_atom, BusCall)`
// with a BusAnswer once the remote side replied.
//
// Every type here that travels in a CAF message (Envelope, BusAnswer, BusCall,
// CallResult, CallOptions) is an inspectable CAF type; see the end of this file.
//
// Shutdown order: destroy BusServer/BusClient objects before the
// caf::actor_system, since they hold actor handles.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/all.hpp>

#include "bus/client.h"
#include "bus/server.h"

namespace mps::bus {

using bus_request_atom = caf::atom_constant<caf::atom("busreq")>;
using bus_call_atom = caf::atom_constant<caf::atom("buscall")>;
using bus_done_atom = caf::atom_constant<caf::atom("busdone")>;
using bus_serve_atom = caf::atom_constant<caf::atom("busserve")>;

struct BusAnswer {
  std::optional<BusError> error;
  nlohmann::json payload = nlohmann::json::object();

  static BusAnswer Ok(nlohmann::json payload) { return {std::nullopt, std::move(payload)}; }
  static BusAnswer Fail(BusError error) { return {std::move(error), nlohmann::json::object()}; }
};

// One call for SpawnBusCaller's actor.
struct BusCall {
  std::string type;
  nlohmann::json payload = nlohmann::json::object();
  CallOptions options;
};

// Serves `type` on `server` with `handler`; the CAF request timeout is the
// bus request's remaining deadline. Call before server.Start().
void ServeWithActor(BusServer& server, caf::actor_system& system, const std::string& type,
                    const caf::actor& handler);

// Responders waiting for an actor to claim them, by ticket. A Responder is a
// handle on a reply slot of a BusServer in this process, not a message: the
// server's handler parks it here and sends the actor only the ticket. The
// actor claims it and answers through it from any thread. Thread-safe.
class ResponderTable {
 public:
  // The ticket for `responder`; nullopt once the table is closed, after
  // failing the responder with the error given to Close.
  std::optional<std::uint64_t> Park(Responder responder);
  // The responder parked under `ticket`, once; nullopt when claimed or closed.
  std::optional<Responder> Claim(std::uint64_t ticket);
  // Fails every responder still parked with `error` and refuses later ones.
  // The serving actor calls it when it stops, so that no request waits for
  // an actor that is gone.
  void Close(const BusError& error);

 private:
  std::mutex mutex_;
  std::optional<BusError> closed_;  // set by Close
  std::uint64_t next_ticket_ = 1;
  std::map<std::uint64_t, Responder> parked_;
};

// Serves `type` on `server`: each request's Responder is parked in `table` and
// `actor` gets `(bus_serve_atom, ticket, Envelope)`. No relay actor and no CAF
// request timeout are involved, so nothing keeps the actor system busy after
// the answer (a process stops as soon as its own actors are done). Requests
// arriving after table->Close() are answered with its error at once. Call
// before server.Start().
void ServeWithResponders(BusServer& server, const std::string& type, const caf::actor& actor,
                         std::shared_ptr<ResponderTable> table);

caf::actor SpawnBusCaller(caf::actor_system& system, std::shared_ptr<BusClient> client);

// -- CAF inspection -----------------------------------------------------------
// nlohmann::json cannot be a CAF message type by itself: CAF 0.17 takes any
// type with begin()/end() for a container of its value_type, and a json's
// value_type is json again, so the serializability trait never ends. A json
// member travels instead as the msgpack bytes the bus itself carries payloads
// in (to_string shows it as json text). BusError is not default-constructible,
// so an optional BusError travels as its code name, message and app code.
namespace caf_fields {

struct Json {
  nlohmann::json& value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Json& x) {
  if constexpr (Inspector::writes_state) {
    std::vector<std::uint8_t> bytes;
    auto load = [&]() -> caf::error {
      x.value = nlohmann::json::from_msgpack(bytes, true, false);
      if (x.value.is_discarded()) return caf::sec::invalid_argument;
      return caf::none;
    };
    return f(bytes, caf::meta::load_callback(load));
  } else if constexpr (std::is_base_of_v<caf::serializer, Inspector>) {
    auto bytes = nlohmann::json::to_msgpack(x.value);
    return f(bytes);
  } else {
    auto text = x.value.dump();
    return f(text);
  }
}

struct Error {
  std::optional<BusError>& value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Error& x) {
  bool present = x.value.has_value();
  std::string code, message, app_code;
  if (present) {
    code = ErrorCodeName(x.value->code());
    message = x.value->what();
    app_code = x.value->app_code();
  }
  auto load = [&]() -> caf::error {
    if (present) {
      x.value.emplace(ErrorCodeFromName(code), message, app_code);
    } else {
      x.value.reset();
    }
    return caf::none;
  };
  return f(present, code, message, app_code, caf::meta::load_callback(load));
}

}  // namespace caf_fields

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, Envelope& x) {
  caf_fields::Json payload{x.payload};
  return f(caf::meta::type_name("mps.bus.Envelope"), x.version, x.type, x.correlation_id, x.sender,
           x.deadline_ms, x.idempotency_key, x.seq, x.stream, x.time_ms, payload);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, BusAnswer& x) {
  caf_fields::Error error{x.error};
  caf_fields::Json payload{x.payload};
  return f(caf::meta::type_name("mps.bus.BusAnswer"), error, payload);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, CallOptions& x) {
  auto timeout_ms = static_cast<std::int64_t>(x.timeout.count());
  auto load = [&]() -> caf::error {
    x.timeout = std::chrono::milliseconds(timeout_ms);
    return caf::none;
  };
  return f(caf::meta::type_name("mps.bus.CallOptions"), timeout_ms, x.idempotency_key,
           caf::meta::load_callback(load));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, CallResult& x) {
  caf_fields::Error error{x.error};
  return f(caf::meta::type_name("mps.bus.CallResult"), error, x.reply);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, BusCall& x) {
  caf_fields::Json payload{x.payload};
  return f(caf::meta::type_name("mps.bus.BusCall"), x.type, payload, x.options);
}

}  // namespace mps::bus
