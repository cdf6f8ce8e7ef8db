#pragma once
// The controller's and the watcher's options for tests against the fake
// peers: deadlines and intervals short enough that a silent peer or a
// missed observation costs a test a second, not minutes.
#include <chrono>

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

}  // namespace mps::testing
