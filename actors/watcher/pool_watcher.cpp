#include "watcher/pool_watcher.h"

#include <map>
#include <optional>

#include <spdlog/spdlog.h>

#include "bus/async_call.h"
#include "cache/messages.h"

namespace mps::watcher {
namespace {

namespace mp = contracts::multipass;
namespace nm = contracts::nomad;
using tick_atom = caf::atom_constant<caf::atom("pwtick")>;
using nodes_atom = caf::atom_constant<caf::atom("pwnodes")>;

struct WatchedPool {
  cache::ConfigMap policy;
  std::uint64_t epoch = 0;
  bool listing = false;                     // a multipass.list is in flight
  bool querying = false;                    // a nomad.pool_nodes is in flight (or waiting to retry)
  std::uint64_t index = 0;                  // Nomad's node table index of the last answer
  std::optional<nm::PoolNodesReply> nodes;  // the latest successful answer
};

struct WatcherState {
  static inline const char* name = "pool-watcher";
  WatcherOptions options;
  controller::BusLinks links;
  caf::actor cache;
  caf::actor controller;
  std::unique_ptr<bus::PendingCalls> calls;
  std::map<std::string, WatchedPool> pools;
  bool asking = false;  // a Pools request to the cache is in flight
  bool again = false;   // woken while asking: list once more afterwards
};

using Self = caf::stateful_actor<WatcherState>;

void List(Self* self, const cache::PoolTarget& target);
void QueryNodes(Self* self, const std::string& pool);

// Learns the pools from the cache, then lists each (and starts its node watch).
void Round(Self* self) {
  auto& st = self->state;
  if (st.asking) {
    st.again = true;
    return;
  }
  st.asking = true;
  self->request(st.cache, st.options.list_timeout, cache::pools_atom::value)
      .then(
          [self](cache::PoolTargets& targets) {
            auto& st = self->state;
            st.asking = false;
            for (const auto& target : targets.pools) {
              auto& pool = st.pools[target.pool];
              pool.policy = target.policy;
              if (!pool.querying) QueryNodes(self, target.pool);
              List(self, target);
            }
            if (std::exchange(st.again, false)) Round(self);
          },
          [self](caf::error& e) {
            self->state.asking = false;
            spdlog::warn("pool watcher: the state cache did not answer: {}",
                         self->system().render(e));
          });
}

void List(Self* self, const cache::PoolTarget& target) {
  auto& st = self->state;
  auto& pool = st.pools[target.pool];
  if (pool.listing) return;
  pool.listing = true;
  mp::ListRequest request;
  request.prefix = target.pool;
  // States only: addresses cost multipassd an SSH command per running VM.
  request.addresses = st.options.list_addresses;
  bus::CallContract(
      *st.calls, *st.links.multipass, request, {st.options.list_timeout, {}},
      [self, name = target.pool, epoch = target.epoch](bus::Answer<mp::ListReply>& a) {
        auto& st = self->state;
        auto& pool = st.pools[name];
        pool.listing = false;
        cache::Observation o;
        o.pool = name;
        o.epoch = epoch;
        if (a.ok()) {
          o.instances = a.value;
        } else {
          o.multipass_error = st.links.multipass_where + ": " + a.error->what();
        }
        self->send(st.cache, cache::observe_atom::value, o);
        if (!a.ok() || !pool.nodes) return;
        // Both sides known: whatever is due now is the controller's.
        self->send(st.controller, controller::tend_atom::value,
                   controller::TendRequest{name, pool.policy, std::move(a.value), *pool.nodes});
      });
}

void QueryNodes(Self* self, const std::string& name) {
  auto& st = self->state;
  auto& pool = st.pools[name];
  pool.querying = true;
  nm::PoolNodesRequest request;
  request.policy = pool.policy;
  request.index = pool.index;
  request.wait_ms = st.options.nodes_wait.count();
  bus::CallContract(*st.calls, *st.links.nomad, request,
                    {st.options.nodes_wait + std::chrono::seconds(30), {}},
                    [self, name](bus::Answer<nm::PoolNodesReply>& a) {
                      auto& st = self->state;
                      auto& pool = st.pools[name];
                      cache::Observation o;
                      o.pool = name;
                      bool changed = true;
                      if (a.ok()) {
                        std::uint64_t next = a.value.index.value_or(0);
                        // Nomad's index only grows; one that went back means a restored
                        // cluster: start over from a full answer.
                        changed = next != pool.index;
                        pool.index = next < pool.index ? 0 : next;
                        pool.nodes = a.value;
                        o.nodes = std::move(a.value);
                      } else {
                        o.nomad_error = st.links.nomad_where + ": " + a.error->what();
                      }
                      self->send(st.cache, cache::observe_atom::value, o);
                      if (changed) Round(self);  // a node change may make a reconciliation due
                      if (a.ok()) {
                        QueryNodes(self, name);
                      } else {
                        self->delayed_send(self, st.options.nodes_retry, nodes_atom::value, name);
                      }
                    });
}

caf::behavior PoolWatcher(Self* self, WatcherOptions options, controller::BusLinks links,
                          caf::actor cache, caf::actor controller) {
  auto& st = self->state;
  st.options = options;
  st.links = std::move(links);
  st.cache = std::move(cache);
  st.controller = std::move(controller);
  st.calls = std::make_unique<bus::PendingCalls>(self->address());
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) {
        Round(self);
        self->delayed_send(self, self->state.options.interval, tick_atom::value);
      },
      [self](wake_atom) { Round(self); },
      [self](nodes_atom, const std::string& pool) { QueryNodes(self, pool); },
      [self](bus::bus_done_atom, std::uint64_t id, bus::CallResult& result) {
        self->state.calls->Complete(id, result);
      },
  };
}

}  // namespace

caf::actor SpawnPoolWatcher(caf::actor_system& system, WatcherOptions options,
                            controller::BusLinks links, caf::actor cache, caf::actor controller) {
  return system.spawn(PoolWatcher, options, std::move(links), std::move(cache),
                      std::move(controller));
}

}  // namespace mps::watcher
