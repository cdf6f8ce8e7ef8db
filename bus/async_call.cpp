#include "bus/async_call.h"

namespace mps::bus {

void PendingCalls::Call(BusClient& client, std::string type, nlohmann::json payload,
                        CallOptions options, Continuation done) {
  auto id = next_id_++;
  pending_.emplace(id, std::move(done));
  client.Call(std::move(type), std::move(payload), std::move(options),
              [self = self_, id](CallResult r) {
                if (auto target = caf::actor_cast<caf::actor>(self)) {
                  caf::anon_send(target, bus_done_atom::value, id, std::move(r));
                }
              });
}

void PendingCalls::Complete(std::uint64_t id, CallResult& result) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  auto done = std::move(it->second);
  pending_.erase(it);
  done(result);
}

}  // namespace mps::bus
