// Scale-out and scale-in through the plugin's go-plugin gRPC socket, end to
// end: Scale 0 -> 16 and back to 0 (max_parallel_launches 16 in the plugin, the policy and hostd)
// against Scale 0 -> 1, each on a fresh world (cluster-sim with a 2 s boot
// delay, multipass-hostd, multipass-target), in the same run. Two times per
// case: until Scale returns (every launch finished) and until Status reports
// the pool ready with the new count (the instances joined Nomad).
//
// hostd runs the first launch of an image alone (two concurrent first
// launches make multipassd download the image twice), so both measured worlds
// launch the image once outside the pool first; a third, cold world shows
// what 0 -> 16 costs without that.
//
// usage: scale_bench [rounds, default 1]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

#include "plugin_world.h"

using namespace std::chrono_literals;

namespace {

struct ScaleTimes {
  double scale_s = 0;     // until Scale returned
  double ready_s = 0;     // until Status said ready with the new count
  double in_scale_s = 0;  // scale in back to 0: until Scale returned
  double in_ready_s = 0;  // ... until Status said ready with 0
};

ScaleTimes ScaleOut(int count, bool warm) {
  mps::bench::WorldOptions options;
  options.boot_delay = "2s";
  options.join_delay = "100ms";
  options.max_parallel_launches = 16;
  mps::bench::PluginWorld world(options);
  if (warm) world.WarmImage();
  world.StartPlugin();
  world.SetConfig();
  world.WaitReady(0, 30s);
  auto out = world.TimeScale(count, 60s);
  // And back: select, drain (the nodes run nothing), delete, purge.
  auto in = world.TimeScale(0, 60s);
  return {out.scale_s, out.ready_s, in.scale_s, in.ready_s};
}

int Run(int rounds) {
  std::printf(
      "Scale-out through the plugin socket (-> hostd -> cluster-sim), boot delay 2 s,\n"
      "join delay 100 ms, max_parallel_launches 16; each case on a fresh world\n");
  std::printf("%-6s %-34s %12s %12s\n", "round", "case", "Scale (s)", "ready (s)");
  double worst_scale_ratio = 0, worst_ready_ratio = 0;
  for (int r = 1; r <= rounds; ++r) {
    auto one = ScaleOut(1, true);
    auto sixteen = ScaleOut(16, true);
    auto cold = ScaleOut(16, false);
    std::printf("%-6d %-34s %12.2f %12.2f\n", r, "0 -> 1 (image launched before)", one.scale_s,
                one.ready_s);
    std::printf("%-6d %-34s %12.2f %12.2f\n", r, "0 -> 16 (image launched before)", sixteen.scale_s,
                sixteen.ready_s);
    std::printf("%-6d %-34s %12.2f %12.2f\n", r, "0 -> 16 cold (first launch alone)", cold.scale_s,
                cold.ready_s);
    std::printf("%-6d %-34s %12.2f %12.2f\n", r, "1 -> 0", one.in_scale_s, one.in_ready_s);
    std::printf("%-6d %-34s %12.2f %12.2f\n", r, "16 -> 0", sixteen.in_scale_s, sixteen.in_ready_s);
    double scale_ratio = sixteen.scale_s / one.scale_s, ready_ratio = sixteen.ready_s / one.ready_s;
    std::printf("       scale in 16/1: Scale %.2f, ready %.2f\n",
                sixteen.in_scale_s / one.in_scale_s, sixteen.in_ready_s / one.in_ready_s);
    std::printf(
        "       ratio 16/1: Scale %.2f, ready %.2f (aim <= 1.3; one at a time: 16); "
        "cold 16/1: Scale %.2f\n",
        scale_ratio, ready_ratio, cold.scale_s / one.scale_s);
    worst_scale_ratio = std::max(worst_scale_ratio, scale_ratio);
    worst_ready_ratio = std::max(worst_ready_ratio, ready_ratio);
  }
  if (rounds > 1) {
    std::printf("worst ratio over %d rounds: Scale %.2f, ready %.2f\n", rounds, worst_scale_ratio,
                worst_ready_ratio);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 1;
  if (rounds <= 0) {
    std::fprintf(stderr, "usage: scale_bench [rounds > 0]\n");
    return 2;
  }
  try {
    return Run(rounds);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "scale_bench: %s\n", e.what());
    return 1;
  }
}
