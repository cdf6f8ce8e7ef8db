// Status latency through the plugin's go-plugin gRPC socket, against a bare
// gRPC unary round trip (grpc.health.v1.Health/Check) on the same socket of
// the same process, in the same run. Status is answered from the state cache
// (the pool watcher keeps it in step with multipassd and Nomad in the
// background), measured once the pool is ready. Then the resident memory of
// multipass-target and multipass-hostd before and after a long run of Status
// calls, and the start-up time from exec to the handshake line.
//
// usage: status_bench [timed calls, default 2000] [calls for the RSS run, default 10000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

#include "bench_stats.h"
#include "plugin_world.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

int Run(int iterations, int rss_calls) {
  mps::bench::PluginWorld world({});

  std::vector<std::chrono::nanoseconds> startups;
  for (int i = 0; i < 5; ++i) startups.push_back(world.StartPlugin());
  world.SetConfig();
  auto ready_wait_start = Clock::now();
  world.WaitReady(0, 30s);
  double ready_after_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - ready_wait_start).count();

  for (int i = 0; i < 200; ++i) {
    world.Status();
    world.HealthCheck();
  }
  std::vector<std::chrono::nanoseconds> status, bare;
  for (int i = 0; i < iterations; ++i) {
    auto t0 = Clock::now();
    auto r = world.Status();
    status.push_back(Clock::now() - t0);
    if (!r.ready()) throw std::runtime_error("Status went not ready during the run");
    t0 = Clock::now();
    if (!world.HealthCheck()) throw std::runtime_error("Health/Check failed");
    bare.push_back(Clock::now() - t0);
  }

  long plugin_before = mps::bench::RssKiB(world.plugin_pid());
  long hostd_before = mps::bench::RssKiB(world.hostd_pid());
  auto t0 = Clock::now();
  for (int i = 0; i < rss_calls; ++i) world.Status();
  double rss_run_s = std::chrono::duration<double>(Clock::now() - t0).count();
  long plugin_after = mps::bench::RssKiB(world.plugin_pid());
  long hostd_after = mps::bench::RssKiB(world.hostd_pid());

  auto s = mps::bench::Summarize(status), b = mps::bench::Summarize(bare),
       up = mps::bench::Summarize(startups);
  std::printf("Status through the plugin socket vs bare unary on the same socket, %d calls\n",
              iterations);
  std::printf("(pool ready %.0f ms after SetConfig)\n", ready_after_ms);
  std::printf("%-44s %10s %10s\n", "path", "p50 (us)", "p99 (us)");
  std::printf("%-44s %10.1f %10.1f\n", "Status (from the state cache)", s.p50_us, s.p99_us);
  std::printf("%-44s %10.1f %10.1f\n", "bare unary (Health/Check)", b.p50_us, b.p99_us);
  std::printf("ratio Status/bare: p50 %.2f, p99 %.2f (aim: p99 < 1000 us and within 2x)\n",
              s.p50_us / b.p50_us, s.p99_us / b.p99_us);
  std::printf("VmRSS before/after %d Status calls (%.1f s):\n", rss_calls, rss_run_s);
  std::printf("  multipass-target (pid %d): %ld KiB -> %ld KiB (%+ld KiB)\n", world.plugin_pid(),
              plugin_before, plugin_after, plugin_after - plugin_before);
  std::printf("  multipass-hostd  (pid %d): %ld KiB -> %ld KiB (%+ld KiB)\n", world.hostd_pid(),
              hostd_before, hostd_after, hostd_after - hostd_before);
  std::printf("start-up exec -> handshake line: p50 %.1f ms (5 runs)\n", up.p50_us / 1000.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 2000;
  int rss_calls = argc > 2 ? std::atoi(argv[2]) : 10000;
  if (iterations <= 0 || rss_calls < 0) {
    std::fprintf(stderr, "usage: status_bench [timed calls > 0] [RSS-run calls >= 0]\n");
    return 2;
  }
  try {
    return Run(iterations, rss_calls);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "status_bench: %s\n", e.what());
    return 1;
  }
}
