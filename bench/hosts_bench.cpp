// A pool over several Multipass hosts (issue 13): Scale 0 -> 64 over 4 hosts
// (cluster-sim --hosts 4, one multipass-hostd per host, multipass-target with
// a hosts_file) against Scale 0 -> 1 on one host, each on a fresh world,
// through the plugin's go-plugin gRPC socket. Three times per case, from the
// Scale call: until Scale returns (every launch finished), until Status
// says ready with the new count (every node joined Nomad), and until the
// simulated Nomad itself had every node ready (polled beside it: the
// world's own limit, so ready - Nomad is the plugin's observation lag); and
// the busiest host's daemon RPC thread meanwhile (multipassd handles one
// RPC at a time). The boot takes
// 2 s, a node joins 1 s after its VM is up; every host has room for 16
// instances and more. Each hostd launches the image once outside the pool
// first (hostd runs the first launch of an image alone).
//
// usage: hosts_bench [rounds, default 1] [max_parallel_launches, default 16]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>

#include <httplib.h>

#include "plugin_world.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kHosts = 4;
constexpr int kCount = 64;

// When the simulated Nomad first had `count` ready nodes of the pool, polled
// every 10 ms from a thread of its own: the world's own limit for "ready"
// (boot + join), against which the plugin's Status is late by its
// observation.
std::future<Clock::time_point> AllNodesReady(const std::string& nomad, std::size_t count) {
  return std::async(std::launch::async, [nomad, count] {
    httplib::Client http(nomad);
    auto give_up = Clock::now() + 120s;
    while (Clock::now() < give_up) {
      if (auto r = http.Get("/v1/nodes"); r && r->status == 200) {
        std::size_t ready = 0;
        for (const auto& n : nlohmann::json::parse(r->body)) {
          ready += n["Status"] == "ready" && n["Name"].get<std::string>().rfind("web-", 0) == 0;
        }
        if (ready >= count) return Clock::now();
      }
      std::this_thread::sleep_for(10ms);
    }
    throw std::runtime_error("Nomad never had " + std::to_string(count) + " ready nodes");
  });
}

struct Measured {
  mps::bench::PluginWorld::ScaleTimes times;
  double nomad_ready_s = 0;  // from the Scale call until Nomad had every node ready
  // The busiest host's daemon RPC thread from the Scale call to ready
  // (cluster-sim's SimWorld::Turn), and the RPCs all daemons took meanwhile.
  double busiest_rpc_thread_ms = 0;
  long rpc_calls = 0;
};

Measured ScaleOut(int hosts, int count, int parallel) {
  mps::bench::WorldOptions options;
  options.hosts = hosts;
  options.boot_delay = "2s";
  options.join_delay = "1s";
  options.max_parallel_launches = parallel;
  mps::bench::PluginWorld world(options);
  world.WarmImage();
  world.policy["max_instances"] = std::to_string(kCount);
  world.StartPlugin();
  world.SetConfig();
  world.WaitReady(0, 30s);
  auto before = world.SimStatsPerHost();
  Measured m;
  auto nomad_ready = AllNodesReady(world.nomad_address(), static_cast<std::size_t>(count));
  auto t0 = Clock::now();
  m.times = world.TimeScale(count, 120s);
  m.nomad_ready_s = std::chrono::duration<double>(nomad_ready.get() - t0).count();
  auto after = world.SimStatsPerHost();
  for (std::size_t i = 0; i < after.size(); ++i) {
    m.busiest_rpc_thread_ms = std::max(
        m.busiest_rpc_thread_ms, (after[i]["rpc_busy_us"] - before[i]["rpc_busy_us"]) / 1000.0);
    m.rpc_calls += after[i]["rpc_calls"] - before[i]["rpc_calls"];
  }
  return m;
}

int Run(int rounds, int parallel) {
  std::printf(
      "Scale 0 -> %d over %d hosts vs 0 -> 1 on one host, through the plugin socket\n"
      "(-> one hostd per host -> cluster-sim), boot 2 s, join 1 s, max_parallel_launches %d\n"
      "(plugin policy and every hostd); each case on a fresh world\n",
      kCount, kHosts, parallel);
  std::printf("%-6s %-22s %10s %10s %12s %22s %6s\n", "round", "case", "Scale (s)", "ready (s)",
              "Nomad (s)", "busiest RPC thread (ms)", "RPCs");
  double worst = 0;
  for (int r = 1; r <= rounds; ++r) {
    auto one = ScaleOut(1, 1, parallel);
    auto many = ScaleOut(kHosts, kCount, parallel);
    for (const auto& [name, m] :
         {std::pair{"0 -> 1, one host", one}, std::pair{"0 -> 64 over 4 hosts", many}}) {
      std::printf("%-6d %-22s %10.2f %10.2f %12.2f %22.1f %6ld\n", r, name, m.times.scale_s,
                  m.times.ready_s, m.nomad_ready_s, m.busiest_rpc_thread_ms, m.rpc_calls);
    }
    double ratio = many.times.ready_s / one.times.ready_s;
    std::printf("       ratio 64/1: ready %.2f (aim <= 1.3), Scale %.2f, Nomad's own %.2f\n", ratio,
                many.times.scale_s / one.times.scale_s, many.nomad_ready_s / one.nomad_ready_s);
    worst = std::max(worst, ratio);
  }
  if (rounds > 1) std::printf("worst ready ratio over %d rounds: %.2f\n", rounds, worst);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 1;
  int parallel = argc > 2 ? std::atoi(argv[2]) : 16;
  if (rounds <= 0 || parallel <= 0) {
    std::fprintf(stderr, "usage: hosts_bench [rounds > 0] [max_parallel_launches > 0]\n");
    return 2;
  }
  try {
    return Run(rounds, parallel);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hosts_bench: %s\n", e.what());
    return 1;
  }
}
