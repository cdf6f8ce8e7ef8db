#include "watcher/pool_watcher.h"

#include <map>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>

#include "bus/async_call.h"
#include "cache/messages.h"
#include "contracts/host.h"

namespace mps::watcher {
namespace {

namespace mp = contracts::multipass;
namespace nm = contracts::nomad;
using tick_atom = caf::atom_constant<caf::atom("pwtick")>;
using nodes_atom = caf::atom_constant<caf::atom("pwnodes")>;

struct WatchedPool {
  cache::ConfigMap policy;
  std::uint64_t epoch = 0;
  std::set<std::string> listing;  // hosts with a multipass.list in flight
  // Each host's latest successful listing, for the controller's tending.
  std::map<std::string, mp::ListReply> listings;
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
  // host.capacity per host: in flight, and when last asked.
  std::set<std::string> capacity_asking;
  std::map<std::string, std::chrono::steady_clock::time_point> capacity_asked;
  bool asking = false;  // a Pools request to the cache is in flight
  bool again = false;   // woken while asking: list once more afterwards
};

using Self = caf::stateful_actor<WatcherState>;

void List(Self* self, const cache::PoolTarget& target);
void QueryNodes(Self* self, const std::string& pool);
void AskCapacity(Self* self, bool now);

// Learns the pools from the cache, then lists each (and starts its node watch).
void Round(Self* self) {
  auto& st = self->state;
  if (st.asking) {
    st.again = true;
    return;
  }
  st.asking = true;
  AskCapacity(self, false);
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
  for (const auto& host : st.links.hosts) {
    auto& pool = st.pools[target.pool];
    if (!pool.listing.insert(host.name).second) continue;
    mp::ListRequest request;
    request.prefix = target.pool;
    // States only: addresses cost multipassd an SSH command per running VM.
    request.addresses = st.options.list_addresses;
    bus::CallContract(
        *st.calls, *host.client, request, {st.options.list_timeout, {}},
        [self, name = target.pool, epoch = target.epoch, host = host.name,
         where = host.where](bus::Answer<mp::ListReply>& a) {
          auto& st = self->state;
          auto& pool = st.pools[name];
          pool.listing.erase(host);
          cache::Observation o;
          o.pool = name;
          o.host = host;
          o.epoch = epoch;
          if (a.ok()) {
            o.instances = a.value;
            pool.listings[host] = std::move(a.value);
          } else {
            o.multipass_error = where + ": " + a.error->what();
            pool.listings.erase(host);
          }
          self->send(st.cache, cache::observe_atom::value, o);
          if (!a.ok() || !pool.nodes) return;
          // Both sides known: whatever is due now is the controller's. The
          // hosts listed are merged (names are unique across hosts).
          controller::TendRequest tend{name, pool.policy, {}, {}, *pool.nodes};
          for (const auto& [listed, reply] : pool.listings) {
            tend.listed_hosts.push_back(listed);
            tend.instances.instances.insert(tend.instances.instances.end(), reply.instances.begin(),
                                            reply.instances.end());
            tend.instances.in_flight.insert(tend.instances.in_flight.end(), reply.in_flight.begin(),
                                            reply.in_flight.end());
          }
          self->send(st.controller, controller::tend_atom::value, std::move(tend));
        });
  }
}

// Each host's capacity, every capacity_interval (`now`: at once), one
// request per host in flight. One host places nothing: not asked.
void AskCapacity(Self* self, bool now) {
  auto& st = self->state;
  if (st.links.hosts.size() < 2) return;
  auto at = std::chrono::steady_clock::now();
  for (const auto& host : st.links.hosts) {
    if (st.capacity_asking.contains(host.name)) continue;
    auto last = st.capacity_asked.find(host.name);
    if (!now && last != st.capacity_asked.end() && at - last->second < st.options.capacity_interval)
      continue;
    st.capacity_asking.insert(host.name);
    st.capacity_asked[host.name] = at;
    bus::CallContract(*st.calls, *host.client, contracts::host::CapacityRequest{},
                      {st.options.list_timeout, {}},
                      [self, host = host.name,
                       where = host.where](bus::Answer<contracts::host::CapacityReply>& a) {
                        auto& st = self->state;
                        st.capacity_asking.erase(host);
                        cache::HostCapacityReport report;
                        report.host = host;
                        if (a.ok()) {
                          report.capacity = std::move(a.value);
                        } else {
                          report.error = where + ": " + a.error->what();
                        }
                        self->send(st.cache, cache::capacity_atom::value, report);
                      });
  }
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
  st.links.hosts = st.links.MultipassHosts();
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
      [self](capacity_wake_atom) { AskCapacity(self, true); },
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
