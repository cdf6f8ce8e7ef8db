// What the plugin's background observation of a pool costs multipassd, whose
// RPCs run one at a time on its main thread: a 20-VM pool (Scale 0 -> 20
// through the plugin), then N seconds of doing nothing but observing, against
// cluster-sim with a 50 ms SSH cost per VM (its default). Two worlds in the
// same run:
//   before: the watcher lists with addresses every second, as it did before
//           issue 12 (MPS_BENCH_WATCHER_LIST_ADDRESSES=1): an SSH command in
//           every running VM per listing;
//   after:  the watcher lists without addresses (today's default).
// Measured by cluster-sim itself: the time its one RPC thread was busy
// (SIGUSR2 "stats rpc_busy_us=..."), per second of wall time, plus the
// round trip of a multipass.version through hostd sampled every 250 ms (it
// waits behind whatever occupies the daemon's thread).
//
// usage: daemon_load_bench [vms, default 20] [seconds, default 10]
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

struct Load {
  double busy_pct = 0;  // of wall time, the daemon's RPC thread
  double rpc_per_s = 0;
  double ssh_per_s = 0;
  mps::bench::Percentiles version;  // round trip through hostd while observing
};

Load Observe(bool with_addresses, int vms, int seconds) {
  mps::bench::WorldOptions options;
  options.ssh_delay = "50ms";
  options.max_parallel_launches = 8;
  if (with_addresses) options.plugin_env = {{"MPS_BENCH_WATCHER_LIST_ADDRESSES", "1"}};
  mps::bench::PluginWorld world(options);
  world.policy["max_instances"] = std::to_string(vms);
  world.StartPlugin();
  world.SetConfig();
  world.Scale(vms);
  world.WaitReady(vms, 180s);
  std::this_thread::sleep_for(2s);  // the launches' last events settle

  // Window 1: only the plugin's observation.
  auto s0 = world.SimStats();
  auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  auto s1 = world.SimStats();
  double wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  Load load;
  load.busy_pct = 100.0 * (s1["rpc_busy_us"] - s0["rpc_busy_us"]) / 1e6 / wall_s;
  // The two SIGUSR2 reads are not RPCs; everything counted is the plugin's.
  load.rpc_per_s = (s1["rpc_calls"] - s0["rpc_calls"]) / wall_s;
  load.ssh_per_s = (s1["ssh_commands"] - s0["ssh_commands"]) / wall_s;

  // Window 2: how long another caller waits for the daemon meanwhile.
  std::vector<std::chrono::nanoseconds> samples;
  auto until = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < until) {
    samples.push_back(world.VersionRoundTrip());
    std::this_thread::sleep_for(250ms);
  }
  load.version = mps::bench::Summarize(samples);
  return load;
}

void Print(const char* name, const Load& l) {
  std::printf("%-34s %9.3f %% %9.2f %9.1f %12.1f %12.1f\n", name, l.busy_pct, l.rpc_per_s,
              l.ssh_per_s, l.version.p50_us / 1000.0, l.version.p99_us / 1000.0);
}

}  // namespace

int main(int argc, char** argv) {
  int vms = argc > 1 ? std::atoi(argv[1]) : 20;
  int seconds = argc > 2 ? std::atoi(argv[2]) : 10;
  if (vms < 1 || seconds < 1) {
    std::fprintf(stderr, "usage: daemon_load_bench [vms >= 1] [seconds >= 1]\n");
    return 2;
  }
  try {
    std::printf("daemon load of observing a %d-VM pool, cluster-sim --ssh-delay 50ms, %d s\n", vms,
                seconds);
    std::printf("%-34s %11s %9s %9s %12s %12s\n", "watcher listing", "daemon busy", "rpc/s",
                "ssh/s", "version p50", "p99 (ms)");
    Print("before: with addresses, every 1 s", Observe(true, vms, seconds));
    Print("after: without addresses", Observe(false, vms, seconds));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "daemon_load_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
