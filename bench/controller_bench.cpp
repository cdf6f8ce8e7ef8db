// What a Scale costs the state cache, and what the control path itself costs:
// the real pool controller and state cache against the fake peers of
// tests/controller (inproc://, answering at once), so only our actors, the
// bus and SQLite are on the path. Per Scale 0 -> N and N -> 0:
//  - the messages the cache handled, by kind (it must not grow with waiting:
//    the cache is never polled);
//  - wall time from the Scale command to its outcome.
// Baseline in the same run: the same number of bare bus round trips to the
// same fake (what the launches/deletes alone cost without the controller).
//
// usage: controller_bench [N, default 16] [rounds, default 5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <vector>

#include <caf/all.hpp>

#include "bus/context.h"
#include "cache/state_cache.h"
#include "contracts/codec.h"
#include "controller/pool_controller.h"
#include "fake_peers.h"
#include "support/temp_dir.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace mp = mps::contracts::multipass;
namespace nm = mps::contracts::nomad;

namespace {

struct World {
  mps::testing::TempDir dir;
  caf::actor_system_config config;
  caf::actor_system system{config};
  mps::bus::BusContext context;
  mps::testing::FakeMultipass multipass{context, "inproc://bench-mp"};
  mps::testing::FakeNomad nomad{context, "inproc://bench-nomad"};
  mps::controller::BusLinks links;
  caf::actor cache;
  caf::actor controller;
  std::map<std::string, std::string> policy{{"node_class", "web"},
                                            {"instance_image_name", "noble"},
                                            {"max_instances", "64"},
                                            {"max_parallel_launches", "16"},
                                            {"node_purge", "true"}};

  World() {
    links.multipass = multipass.Client(context);
    links.nomad = nomad.Client(context);
    links.multipass_where = "fake multipass";
    links.nomad_where = "fake Nomad";
    mps::cache::CacheOptions co;
    co.state_dir = dir.path();
    cache = mps::cache::SpawnStateCache(system, co);
    mps::controller::ControllerOptions o;
    o.links = links;
    o.cache = cache;
    controller = mps::controller::SpawnPoolController(system, o);
  }
  ~World() {
    mps::controller::StopPoolController(system, controller, 1s);
    links.multipass->Shutdown();
    links.nomad->Shutdown();
    caf::anon_send_exit(cache, caf::exit_reason::user_shutdown);
  }

  template <class Answer, class... Ts>
  Answer Ask(Ts&&... xs) {
    caf::scoped_actor self{system};
    Answer answer{};
    self->request(cache, 10s, std::forward<Ts>(xs)...)
        .receive([&](Answer& a) { answer = std::move(a); }, [](caf::error&) {});
    return answer;
  }

  // What the watcher reports: the fakes' world as it is, nodes ready.
  void Observe() {
    Ask<mps::cache::StatusAnswer>(mps::cache::status_atom::value, mps::cache::StatusQuery{policy});
    mps::cache::Observation o;
    o.pool = "web";
    for (const auto& p : Ask<mps::cache::PoolTargets>(mps::cache::pools_atom::value).pools)
      o.epoch = p.epoch;
    o.instances = multipass.Listing();
    for (const auto& instance : o.instances->instances) nomad.PutNode(instance.name);
    o.nodes = mps::testing::FakeMultipass::ReadyNodesOf(*o.instances);
    caf::scoped_actor self{system};
    self->send(cache, mps::cache::observe_atom::value, o);
  }

  std::map<std::string, std::uint64_t> Messages() {
    return Ask<mps::cache::CacheStats>(mps::cache::stats_atom::value).messages;
  }

  double Scale(int target, const std::string& id, mps::controller::ScaleStatus& status) {
    mps::controller::ScaleCommand c;
    c.policy = policy;
    c.target = target;
    c.request_id = id;
    auto t0 = Clock::now();
    status = mps::controller::RunScale(system, controller, c).status;
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }

  // N bare round trips of the same requests to the same fake, 16 at a time.
  double Baseline(int n) {
    auto client = multipass.Client(context);
    auto t0 = Clock::now();
    std::vector<std::future<void>> calls;
    for (int i = 0; i < n; ++i) {
      calls.push_back(std::async(std::launch::async, [&client, i] {
        mp::LaunchRequest req;
        req.name = "base-" + std::to_string(i);
        client->CallSync(std::string(mp::LaunchRequest::kType), mps::contracts::Encode(req),
                         {10s, "base:" + std::to_string(i)});
      }));
    }
    for (auto& c : calls) c.get();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }
};

std::string Delta(const std::map<std::string, std::uint64_t>& before,
                  const std::map<std::string, std::uint64_t>& after, std::uint64_t& total) {
  std::string out;
  total = 0;
  for (const auto& [kind, n] : after) {
    auto b = before.contains(kind) ? before.at(kind) : 0;
    if (n == b) continue;
    total += n - b;
    out += (out.empty() ? "" : ", ") + kind + " " + std::to_string(n - b);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 16;
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  std::printf(
      "Scale 0 -> %d -> 0 through the pool controller and state cache (fake peers on\n"
      "inproc:// answering at once; SQLite state in a temp dir), %d rounds\n",
      n, rounds);
  std::printf("%-6s %-10s %10s %10s %10s  %s\n", "round", "scale", "ours (ms)", "bare (ms)", "msgs",
              "cache messages by kind");
  for (int r = 1; r <= rounds; ++r) {
    World world;
    world.Observe();
    for (auto [from, to] : {std::pair{0, n}, std::pair{n, 0}}) {
      auto before = world.Messages();
      mps::controller::ScaleStatus status;
      double ours = world.Scale(to, "r" + std::to_string(r) + "-" + std::to_string(to), status);
      std::uint64_t total = 0;
      auto kinds = Delta(before, world.Messages(), total);
      double bare = world.Baseline(n);
      std::printf("%-6d %3d -> %-3d %10.1f %10.1f %10llu  %s%s\n", r, from, to, ours, bare,
                  static_cast<unsigned long long>(total), kinds.c_str(),
                  status == mps::controller::ScaleStatus::kDone ? "" : "  (NOT DONE)");
      world.Observe();
    }
  }
  return 0;
}
