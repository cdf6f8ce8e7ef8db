// Drain-and-purge of N nodes in parallel against one node, each with a 1 s
// simulated migration, through the real DrainCoordinator and NomadApi (HTTP
// with blocking queries) against the simulated Nomad API on loopback.
// The ratio N-node wall time / 1-node wall time shows the drains overlap
// (aim <= 1.3; sequential would be N). Then the blocking queries the drains
// and the pool watcher rely on: how long after a change a held query answers,
// and when one whose index never moves answers.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cluster_sim/nomad/nomad_sim.h"
#include "nomad/drain_coordinator.h"
#include "nomad/nomad_api.h"
#include "nomad/nomad_config.h"

using Clock = std::chrono::steady_clock;

namespace {

double DrainAndPurge(mps::sim::NomadSim& sim, const mps::nomad::NomadApi& api,
                     const std::vector<std::string>& instances) {
  std::vector<std::string> nodes;
  for (const auto& name : instances) {
    auto id = sim.RegisterNode(name, "web");
    sim.AddAllocation(id, "service", "running", 500, 512);
    nodes.push_back(id);
  }
  mps::nomad::DrainOptions options;
  options.deadline = std::chrono::minutes(5);
  options.query_wait = std::chrono::milliseconds(2000);
  mps::nomad::DrainCoordinator coordinator(api, options);
  auto t0 = Clock::now();
  auto results = coordinator.DrainAll(nodes);
  for (const auto& r : results) {
    if (r.outcome != mps::nomad::DrainOutcome::drained) {
      std::fprintf(stderr, "drain of %s failed: %s\n", r.node_id.c_str(), r.reason.c_str());
      std::exit(1);
    }
  }
  for (const auto& id : nodes) coordinator.Purge(id);
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One node's allocation list as a blocking query, 5 times each way: held
// until an allocation is added 200 ms in (answered how long after the
// change), and held on an index that never moves with wait = 300 ms.
void BlockingQueries(mps::sim::NomadSim& sim, const mps::nomad::NomadApi& api) {
  using std::chrono::milliseconds;
  auto node = sim.RegisterNode("blocking-1", "web");
  std::vector<double> after_change, unchanged;
  for (int i = 0; i < 5; ++i) {
    auto index = api.GetNodeAllocations(node).index;
    Clock::time_point changed_at;
    std::thread change([&] {
      std::this_thread::sleep_for(milliseconds(200));
      changed_at = Clock::now();
      sim.AddAllocation(node, "service");
    });
    auto answer =
        api.GetNodeAllocations(node, mps::nomad::BlockingQuery{index, milliseconds(5000)});
    auto answered = Clock::now();
    change.join();
    if (answer.index <= index) {
      std::fprintf(stderr, "a blocking query missed the change\n");
      std::exit(1);
    }
    after_change.push_back(
        std::chrono::duration<double, std::milli>(answered - changed_at).count());

    auto t0 = Clock::now();
    auto same =
        api.GetNodeAllocations(node, mps::nomad::BlockingQuery{answer.index, milliseconds(300)});
    unchanged.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (same.index != answer.index) {
      std::fprintf(stderr, "the node's allocations moved during the unchanged query\n");
      std::exit(1);
    }
  }
  std::printf("blocking query, answered after a change: median %.1f ms after it (5 runs)\n",
              Median(after_change));
  std::printf("blocking query, index never moves, wait 300 ms: answered after median %.1f ms\n",
              Median(unchanged));
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 16;
  mps::sim::NomadSimOptions so;
  so.migration_delay = std::chrono::milliseconds(1000);
  mps::sim::NomadSim sim(so);
  sim.Start(0);
  std::map<std::string, std::string> keys = {{"nomad_address", sim.address()}};
  mps::nomad::NomadApi api(mps::nomad::FromConfigMap(keys, mps::nomad::EnvFromMap({})));

  double one = DrainAndPurge(sim, api, {"single-1"});
  std::vector<std::string> many;
  for (int i = 0; i < n; ++i) many.push_back("many-" + std::to_string(i));
  double all = DrainAndPurge(sim, api, many);
  std::printf("drain+purge, simulated Nomad on loopback, 1 s migration per node\n");
  std::printf("%-28s %10s\n", "case", "wall (s)");
  std::printf("%-28s %10.2f\n", "1 node", one);
  std::printf("%-28s %10.2f\n", (std::to_string(n) + " nodes in parallel").c_str(), all);
  std::printf("ratio %d nodes / 1 node: %.2f (aim <= 1.3; sequential would be %d)\n", n, all / one,
              n);
  BlockingQueries(sim, api);
  sim.Stop();
  return 0;
}
