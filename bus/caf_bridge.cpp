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
      [=](bus_call_atom, std::string& type, nlohmann::json& payload,
          CallOptions& options) -> caf::result<BusAnswer> {
        auto id = self->state.next_id++;
        auto promise = self->make_response_promise<BusAnswer>();
        self->state.pending.emplace(id, promise);
        auto me = caf::actor_cast<caf::actor>(self);
        client->Call(
            std::move(type), std::move(payload), std::move(options),
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

caf::actor SpawnBusCaller(caf::actor_system& system, std::shared_ptr<BusClient> client) {
  return system.spawn(BusCaller, std::move(client));
}

}  // namespace mps::bus
