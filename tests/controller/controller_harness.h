#pragma once
// What the controller tests share around the fake peers: the controller's
// and the watcher's options (deadlines and intervals short enough that a
// silent peer or a missed observation costs a test a second, not minutes),
// and the two questions every test asks (Status from the cache, a Scale run
// to its outcome).
#include <chrono>
#include <string>

#include "cache/messages.h"

#include "controller/pool_controller.h"
#include "watcher/pool_watcher.h"

namespace mps::testing {

inline controller::ControllerOptions FastControllerOptions(controller::BusLinks links,
                                                           caf::actor cache) {
  using namespace std::chrono_literals;
  controller::ControllerOptions o;
  o.links = std::move(links);
  o.cache = std::move(cache);
  o.cache_timeout = 1s;
  o.first_sync_wait = 2s;
  o.launch_grace = 300ms;
  o.drain_grace = 300ms;
  return o;
}

inline watcher::WatcherOptions FastWatcherOptions() {
  using namespace std::chrono_literals;
  watcher::WatcherOptions o;
  o.interval = 100ms;
  o.list_timeout = 1s;
  o.nodes_wait = 5s;
  o.nodes_retry = 100ms;
  return o;
}

// The cache's Status answer for `policy` (empty when it does not answer).
inline cache::StatusAnswer AskStatus(caf::actor_system& system, const caf::actor& cache,
                                     const cache::ConfigMap& policy) {
  using namespace std::chrono_literals;
  caf::scoped_actor self{system};
  cache::StatusAnswer answer;
  self->request(cache, 5s, cache::status_atom::value, cache::StatusQuery{policy})
      .receive([&](cache::StatusAnswer& a) { answer = a; }, [](caf::error&) {});
  return answer;
}

inline controller::ScaleOutcome RunScaleTo(caf::actor_system& system, const caf::actor& controller,
                                           const cache::ConfigMap& policy, std::int64_t target,
                                           std::string request_id) {
  controller::ScaleCommand c;
  c.policy = policy;
  c.target = target;
  c.request_id = std::move(request_id);
  return controller::RunScale(system, controller, c);
}

}  // namespace mps::testing
