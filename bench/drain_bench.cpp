// Drain-and-purge of N nodes in parallel against one node, each with a 1 s
// simulated migration, through the real DrainCoordinator and NomadApi (HTTP
// with blocking queries) against the simulated Nomad API on loopback.
// The ratio N-node wall time / 1-node wall time shows the drains overlap
// (aim <= 1.3; sequential would be N).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
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
  sim.Stop();
  return 0;
}
