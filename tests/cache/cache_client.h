#pragma once
// Blocking calls into the state cache actor, for tests only: each call is
// one message to the actor, in order, from one scoped actor.
#include <stdexcept>

#include <caf/all.hpp>

#include "bus/caf_bridge.h"
#include "cache/state_cache.h"

namespace mps::testing {

class CacheClient {
 public:
  CacheClient(caf::actor_system& system, caf::actor actor)
      : self_(system), actor_(std::move(actor)) {}

  template <class Answer, class... Ts>
  Answer Ask(Ts&&... xs) {
    std::optional<Answer> answer;
    std::string error;
    self_->request(actor_, std::chrono::seconds(10), std::forward<Ts>(xs)...)
        .receive([&](Answer& a) { answer = std::move(a); },
                 [&](caf::error& e) { error = self_->system().render(e); });
    if (!answer) throw std::runtime_error("state cache did not answer: " + error);
    return std::move(*answer);
  }

  cache::StatusAnswer Status(const cache::ConfigMap& policy) {
    return Ask<cache::StatusAnswer>(cache::status_atom::value, cache::StatusQuery{policy});
  }
  cache::PlanAnswer Plan(const cache::PlanQuery& query) {
    return Ask<cache::PlanAnswer>(cache::plan_atom::value, query);
  }
  void Report(const cache::OpReport& report) {
    Ask<cache::ack_atom>(cache::report_atom::value, report);
  }
  // Sent, not asked (as the watcher does); the round trip after it returns
  // once the cache has handled it.
  void Observe(const cache::Observation& o) {
    self_->send(actor_, cache::observe_atom::value, o);
    Pools();
  }
  void Finish(const cache::ScaleFinish& f) { Ask<cache::ack_atom>(cache::finish_atom::value, f); }
  std::vector<cache::PoolTarget> Pools() {
    return Ask<cache::PoolTargets>(cache::pools_atom::value).pools;
  }
  cache::UndrivenWork TakeUndriven(const std::string& pool) {
    return Ask<cache::UndrivenWork>(cache::undriven_atom::value, pool);
  }
  const caf::actor& actor() const { return actor_; }

  // The state.pools reply.
  nlohmann::json View(const std::string& pool) {
    bus::Envelope request;
    request.type = "state.pools";
    if (!pool.empty()) request.payload["pool"] = pool;
    auto answer = Ask<bus::BusAnswer>(bus::bus_request_atom::value, request);
    if (answer.error) throw *answer.error;
    return answer.payload;
  }

 private:
  caf::scoped_actor self_;
  caf::actor actor_;
};

}  // namespace mps::testing
