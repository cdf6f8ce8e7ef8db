#include "bus/caf_bridge.h"

#include <map>

namespace mps::bus {
namespace {

// Relays one request to the handler and its answer back, then quits. One
// actor per request: a quit actor is not waited for at shutdown, whereas a
// long-lived dispatcher would be kept running by each answered request's
// still-pending CAF timeout until that deadline.
caf::behavior OneRequest(caf::event_based_actor* self, caf::actor handler, Envelope request,
                         Responder responder) {
  auto left = responder.remaining();
  if (left.count() <= 0) {
    responder.Fail(BusError(ErrorCode::kDeadlineExpired,
                            "'" + request.type + "' expired before its handler could start"));
    self->quit();
    return {};
  }
  auto type = request.type;
  self->request(handler, left, bus_request_atom::value, std::move(request))
      .then(
          [self, responder](const BusAnswer& answer) {
            if (answer.error) {
              responder.Fail(*answer.error);
            } else {
              responder.Reply(answer.payload);
            }
            self->quit();
          },
          [self, responder, type](caf::error& err) {
            if (err == caf::sec::request_timeout) {
              responder.Fail(
                  BusError(ErrorCode::kTimeout,
                           "handler of '" + type + "' did not answer before the deadline"));
            } else {
              responder.Fail(
                  BusError(ErrorCode::kHandlerFailed,
                           "handler of '" + type + "' failed: " + self->system().render(err)));
            }
            self->quit();
          });
  return {};
}

struct CallerState {
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, caf::typed_response_promise<BusAnswer>> pending;
};

caf::behavior BusCaller(caf::stateful_actor<CallerState>* self, std::shared_ptr<BusClient> client) {
  return {
      [=](bus_call_atom, BusCall& call) -> caf::result<BusAnswer> {
        auto id = self->state.next_id++;
        auto promise = self->make_response_promise<BusAnswer>();
        self->state.pending.emplace(id, promise);
        auto me = caf::actor_cast<caf::actor>(self);
        client->Call(
            std::move(call.type), std::move(call.payload), std::move(call.options),
            [me, id](CallResult r) { caf::anon_send(me, bus_done_atom::value, id, std::move(r)); });
        return promise;
      },
      [=](bus_done_atom, std::uint64_t id, CallResult& result) {
        auto it = self->state.pending.find(id);
        if (it == self->state.pending.end()) return;
        if (result.error) {
          it->second.deliver(BusAnswer::Fail(*result.error));
        } else {
          it->second.deliver(BusAnswer::Ok(std::move(result.reply.payload)));
        }
        self->state.pending.erase(it);
      },
  };
}

}  // namespace

void ServeWithActor(BusServer& server, caf::actor_system& system, const std::string& type,
                    const caf::actor& handler) {
  server.Handle(type, [&system, handler](const Request& request, Responder responder) {
    system.spawn(OneRequest, handler, request.envelope, std::move(responder));
  });
}

std::optional<std::uint64_t> ResponderTable::Park(Responder responder) {
  std::optional<BusError> refused;
  {
    std::lock_guard lock(mutex_);
    if (!closed_) {
      auto ticket = next_ticket_++;
      parked_.emplace(ticket, std::move(responder));
      return ticket;
    }
    refused = closed_;
  }
  responder.Fail(*refused);
  return std::nullopt;
}

std::optional<Responder> ResponderTable::Claim(std::uint64_t ticket) {
  std::lock_guard lock(mutex_);
  auto it = parked_.find(ticket);
  if (it == parked_.end()) return std::nullopt;
  auto responder = std::move(it->second);
  parked_.erase(it);
  return responder;
}

void ResponderTable::Close(const BusError& error) {
  std::map<std::uint64_t, Responder> left;
  {
    std::lock_guard lock(mutex_);
    if (!closed_) closed_ = error;
    left.swap(parked_);
  }
  for (const auto& [ticket, responder] : left) responder.Fail(error);
}

void ServeWithResponders(BusServer& server, const std::string& type, const caf::actor& actor,
                         std::shared_ptr<ResponderTable> table) {
  server.Handle(type, [actor, table](const Request& request, Responder responder) {
    if (auto ticket = table->Park(std::move(responder)))
      caf::anon_send(actor, bus_serve_atom::value, *ticket, request.envelope);
  });
}

caf::actor SpawnBusCaller(caf::actor_system& system, std::shared_ptr<BusClient> client) {
  return system.spawn(BusCaller, std::move(client));
}

}  // namespace mps::bus
