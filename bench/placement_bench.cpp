// Issue 13: how long placing a pool's instances over many hosts takes (the
// pure PlaceInstances: filter, zone spread, host spread). Aim: under 1 ms for
// 1,000 instances over 50 hosts. Baseline in the same run: handing the same
// 1,000 instances round-robin to the 50 hosts (no capacity, no balance), the
// least any placement can cost.
//
// usage: placement_bench [instances, default 1000] [hosts, default 50] [rounds, default 200]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_stats.h"
#include "scaling/host_placement.h"

using Clock = std::chrono::steady_clock;
using namespace mps::scaling;

int main(int argc, char** argv) {
  long instances = argc > 1 ? std::atol(argv[1]) : 1000;
  long host_count = argc > 2 ? std::atol(argv[2]) : 50;
  int rounds = argc > 3 ? std::atoi(argv[3]) : 200;
  std::vector<HostCapacity> hosts;
  for (long i = 0; i < host_count; ++i) {
    HostCapacity h;
    h.name = "host-" + std::to_string(i);
    h.zone = "zone-" + std::to_string(i % 5);
    h.cpus = 64;
    h.memory_bytes = 256LL << 30;
    h.disk_bytes = 4LL << 40;
    h.allocated_memory_bytes = (i % 7) * (8LL << 30);
    h.pool_instances = i % 3;
    hosts.push_back(h);
  }
  PlacementRequest request;
  request.count = instances;
  request.shape = {1, 4LL << 30, 10LL << 30};

  std::vector<std::chrono::nanoseconds> ours, baseline;
  std::size_t placed = 0, sink = 0;
  for (int r = 0; r < rounds; ++r) {
    auto t0 = Clock::now();
    auto p = PlaceInstances(hosts, request);
    ours.push_back(Clock::now() - t0);
    placed = p.hosts.size();
    t0 = Clock::now();
    std::vector<std::string> rr;
    rr.reserve(static_cast<std::size_t>(instances));
    for (long i = 0; i < instances; ++i)
      rr.push_back(hosts[static_cast<std::size_t>(i % host_count)].name);
    baseline.push_back(Clock::now() - t0);
    sink += rr.size();
  }
  auto o = mps::bench::Summarize(ours), b = mps::bench::Summarize(baseline);
  std::printf("placement: %ld instances over %ld hosts, %d rounds (placed %zu)\n", instances,
              host_count, rounds, placed);
  std::printf("  PlaceInstances  p50 %9.1f us  p99 %9.1f us\n", o.p50_us, o.p99_us);
  std::printf("  round-robin     p50 %9.1f us  p99 %9.1f us\n", b.p50_us, b.p99_us);
  std::printf("  ratio p50 %.1f (aim: PlaceInstances p50 under 1000 us)\n", o.p50_us / b.p50_us);
  return sink == 0 ? 1 : 0;
}
