// Status latency through the plugin's go-plugin gRPC socket, against a bare
// gRPC unary round trip (grpc.health.v1.Health/Check) on the same socket of
// the same process, in the same run. Status is answered from the state cache
// (the pool watcher keeps it in step with multipassd and Nomad in the
// background), measured once the pool is ready. Then the resident memory of
// multipass-target and multipass-hostd before and after a long run of Status
// calls, the start-up time from exec to the handshake line, and the stop time
// from GRPCController.Shutdown to the process's exit.
//
// usage: status_bench [timed calls, default 2000] [calls per RSS batch, default 10000]
//                     [RSS batches, default 3]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>
#include <vector>

#include "bench_stats.h"
#include "plugin_world.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

int Run(int iterations, int rss_calls, int rss_batches) {
  mps::bench::PluginWorld world({});

  std::vector<std::chrono::nanoseconds> startups, stops;
  for (int i = 0; i < 5; ++i) {
    if (i > 0) {
      auto stopped = world.StopPlugin();
      if (!stopped) throw std::runtime_error("multipass-target did not exit on Shutdown");
      stops.push_back(*stopped);
    }
    startups.push_back(world.StartPlugin());
  }
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

  // The RSS run in batches: steady growth per batch is a leak, growth only
  // in the first batch is the allocator and gRPC warming up.
  std::vector<long> plugin_rss{mps::bench::RssKiB(world.plugin_pid())};
  std::vector<long> hostd_rss{mps::bench::RssKiB(world.hostd_pid())};
  auto t0 = Clock::now();
  for (int batch = 0; batch < rss_batches; ++batch) {
    for (int i = 0; i < rss_calls; ++i) world.Status();
    plugin_rss.push_back(mps::bench::RssKiB(world.plugin_pid()));
    hostd_rss.push_back(mps::bench::RssKiB(world.hostd_pid()));
  }
  double rss_run_s = std::chrono::duration<double>(Clock::now() - t0).count();
  // Control: as long again without Status calls (the pool watcher still
  // lists the pool every second), to tell per-call growth from time-driven.
  std::this_thread::sleep_for(std::chrono::duration<double>(rss_run_s));
  long plugin_idle = mps::bench::RssKiB(world.plugin_pid());
  long hostd_idle = mps::bench::RssKiB(world.hostd_pid());
  pid_t plugin_pid = world.plugin_pid();
  // The stop that matters: configured, the pool watched (Nomad blocking queries open).
  auto watched_stop = world.StopPlugin();

  auto s = mps::bench::Summarize(status), b = mps::bench::Summarize(bare),
       up = mps::bench::Summarize(startups), down = mps::bench::Summarize(stops);
  std::printf("Status through the plugin socket vs bare unary on the same socket, %d calls\n",
              iterations);
  std::printf("(pool ready %.0f ms after SetConfig)\n", ready_after_ms);
  std::printf("%-44s %10s %10s\n", "path", "p50 (us)", "p99 (us)");
  std::printf("%-44s %10.1f %10.1f\n", "Status (from the state cache)", s.p50_us, s.p99_us);
  std::printf("%-44s %10.1f %10.1f\n", "bare unary (Health/Check)", b.p50_us, b.p99_us);
  std::printf("ratio Status/bare: p50 %.2f, p99 %.2f (aim: p99 < 1000 us and within 2x)\n",
              s.p50_us / b.p50_us, s.p99_us / b.p99_us);
  auto print_rss = [&](const char* name, pid_t pid, const std::vector<long>& rss) {
    std::printf("  %-16s (pid %d): %ld KiB", name, pid, rss.front());
    for (std::size_t i = 1; i < rss.size(); ++i) std::printf(" -> %ld", rss[i]);
    std::printf(" KiB; first batch %+ld KiB", rss[1] - rss[0]);
    if (rss.size() > 2) std::printf(", later batches %+ld KiB", rss.back() - rss[1]);
    std::printf("\n");
  };
  std::printf("VmRSS before and after each batch of %d Status calls (%d batches, %.1f s):\n",
              rss_calls, rss_batches, rss_run_s);
  print_rss("multipass-target", plugin_pid, plugin_rss);
  print_rss("multipass-hostd", world.hostd_pid(), hostd_rss);
  std::printf("  then %.1f s without calls: multipass-target %+ld KiB, multipass-hostd %+ld KiB\n",
              rss_run_s, plugin_idle - plugin_rss.back(), hostd_idle - hostd_rss.back());
  std::printf("start-up exec -> handshake line: p50 %.1f ms (5 runs)\n", up.p50_us / 1000.0);
  std::printf(
      "stop GRPCController.Shutdown -> exit, before SetConfig: p50 %.1f ms, max %.1f ms "
      "(4 runs)\n",
      down.p50_us / 1000.0, down.p99_us / 1000.0);
  if (watched_stop) {
    std::printf("stop GRPCController.Shutdown -> exit, pool watched: %.1f ms\n",
                std::chrono::duration<double, std::milli>(*watched_stop).count());
  } else {
    std::printf("stop GRPCController.Shutdown -> exit, pool watched: no clean exit within 10 s\n");
  }
  std::printf("(go-plugin kills a plugin that has not exited 2 s after Shutdown)\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 2000;
  int rss_calls = argc > 2 ? std::atoi(argv[2]) : 10000;
  int rss_batches = argc > 3 ? std::atoi(argv[3]) : 3;
  if (iterations <= 0 || rss_calls <= 0 || rss_batches <= 0) {
    std::fprintf(stderr,
                 "usage: status_bench [timed calls > 0] [calls per RSS batch > 0] [batches > 0]\n");
    return 2;
  }
  try {
    return Run(iterations, rss_calls, rss_batches);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "status_bench: %s\n", e.what());
    return 1;
  }
}
