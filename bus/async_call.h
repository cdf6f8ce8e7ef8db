#pragma once
// Asynchronous bus calls from inside an event-based actor. The BusClient
// answers on its I/O thread; the answer comes back to the actor as a
// (bus_done_atom, id, CallResult) message, and the actor runs the
// continuation it registered, so the actor never blocks and a continuation
// never runs on a foreign thread. Every call has the client's deadline, so a
// peer that stops answering costs at most that deadline.
//
// The actor owns a PendingCalls in its state, handles
//   [&](bus::bus_done_atom, std::uint64_t id, bus::CallResult& r) { calls.Complete(id, r); }
// and makes typed calls with CallContract.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <caf/all.hpp>

#include "bus/caf_bridge.h"
#include "bus/client.h"
#include "contracts/codec.h"

namespace mps::bus {

class PendingCalls {
 public:
  using Continuation = std::function<void(CallResult&)>;

  // `self`: the actor the answers go to (held weakly: a call in flight does
  // not keep a stopped actor alive).
  explicit PendingCalls(caf::actor_addr self) : self_(std::move(self)) {}

  void Call(BusClient& client, std::string type, nlohmann::json payload, CallOptions options,
            Continuation done);
  // Runs the continuation of call `id` once; unknown ids (forgotten calls) are ignored.
  void Complete(std::uint64_t id, CallResult& result);
  // Drops every continuation: their answers will be ignored.
  void Forget() { pending_.clear(); }
  std::size_t size() const { return pending_.size(); }

 private:
  caf::actor_addr self_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, Continuation> pending_;
};

// A typed answer: the decoded reply, or the error (a bus error, the far
// side's domain error, or a reply that does not match the contract).
template <class T>
struct Answer {
  std::optional<BusError> error;
  T value{};
  bool ok() const { return !error; }
};

template <class Request>
void CallContract(PendingCalls& calls, BusClient& client, const Request& request,
                  CallOptions options, std::function<void(Answer<typename Request::Reply>&)> done) {
  calls.Call(client, std::string(Request::kType), contracts::Encode(request), std::move(options),
             [done = std::move(done)](CallResult& result) {
               Answer<typename Request::Reply> answer;
               if (result.error) {
                 answer.error = std::move(result.error);
               } else {
                 try {
                   answer.value = contracts::DecodeReply<Request>(result.reply.payload);
                 } catch (const contracts::ContractError& e) {
                   answer.error = e;
                 }
               }
               done(answer);
             });
}

}  // namespace mps::bus
