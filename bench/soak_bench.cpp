// Soak: RATE Status calls per second for MINUTES minutes through the
// plugin's go-plugin gRPC socket (as the autoscaler calls it), with a Scale
// every SCALE_EVERY seconds alternating the pool between 2 and 4 instances
// (each Scale launches or drains and deletes two VMs of cluster-sim through
// multipass-hostd). Per minute: Status calls made, errors (any non-OK
// answer; "not ready" during a Scale is an answer, not an error), p50/p99/max
// latency, the Scales of that minute, and the resident memory of
// multipass-target and multipass-hostd at the minute's end. The aim: 0
// errors, p99 under 1 ms, RSS flat after the first minute.
//
// usage: soak_bench [RATE, default 1000] [MINUTES, default 10] [SCALE_EVERY s, default 30]
// (fractional MINUTES are allowed: 0.5 = 30 s)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "plugin_world.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Minute {
  std::vector<std::chrono::nanoseconds> latencies;
  long errors = 0;
  std::string first_error;
  int scales = 0, scale_errors = 0;
  double scale_max_s = 0;
};

double PercentileUs(std::vector<std::chrono::nanoseconds>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * v.size()))].count() / 1000.0;
}

int Run(int rate, double minutes, int scale_every_s) {
  mps::bench::PluginWorld world({});
  world.StartPlugin();
  world.SetConfig();
  world.WaitReady(0, 30s);
  std::printf(
      "soak: %d Status/s for %.1f min, a Scale (2 <-> 4) every %d s; plugin pid %d, hostd pid %d\n",
      rate, minutes, scale_every_s, world.plugin_pid(), world.hostd_pid());
  std::printf("%6s %8s %6s %9s %9s %9s %7s %10s %11s %10s %10s\n", "minute", "calls", "errors",
              "p50 us", "p99 us", "max us", "scales", "scale errs", "scale max s", "plugin MiB",
              "hostd MiB");
  std::fflush(stdout);

  auto total =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(minutes * 60));
  auto start = Clock::now();
  auto end = start + total;
  int minute_count = static_cast<int>((total + 59s) / 60s);
  std::vector<Minute> stats(static_cast<std::size_t>(std::max(minute_count, 1)));
  std::mutex mu;
  auto minute_of = [&](Clock::time_point t) {
    auto i = static_cast<std::size_t>((t - start) / 60s);
    return std::min(i, stats.size() - 1);
  };

  std::atomic<bool> stop{false};
  std::thread scaler([&] {
    std::int64_t target = 2;
    for (auto next = start; !stop;) {
      while (!stop && Clock::now() < next) std::this_thread::sleep_for(50ms);
      if (stop) break;
      auto t0 = Clock::now();
      auto st = world.TryScale(target, 180s);
      double took = std::chrono::duration<double>(Clock::now() - t0).count();
      {
        std::lock_guard lock(mu);
        auto& m = stats[minute_of(t0)];
        ++m.scales;
        m.scale_max_s = std::max(m.scale_max_s, took);
        if (!st.ok()) {
          ++m.scale_errors;
          std::fprintf(stderr, "soak: Scale to %lld: %s\n", static_cast<long long>(target),
                       st.error_message().c_str());
        }
      }
      target = target == 2 ? 4 : 2;
      next = t0 + std::chrono::seconds(scale_every_s);
    }
  });

  auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
  std::vector<long> plugin_rss, hostd_rss;
  std::size_t reported = 0;
  auto report = [&](std::size_t i) {
    plugin_rss.push_back(mps::bench::RssKiB(world.plugin_pid()));
    hostd_rss.push_back(mps::bench::RssKiB(world.hostd_pid()));
    std::lock_guard lock(mu);
    auto& m = stats[i];
    std::printf("%6zu %8zu %6ld %9.0f %9.0f %9.0f %7d %10d %11.2f %10.1f %10.1f%s%s\n", i + 1,
                m.latencies.size(), m.errors, PercentileUs(m.latencies, 0.50),
                PercentileUs(m.latencies, 0.99), PercentileUs(m.latencies, 1.0), m.scales,
                m.scale_errors, m.scale_max_s, plugin_rss.back() / 1024.0,
                hostd_rss.back() / 1024.0,
                m.first_error.empty() ? "" : "  first error: ", m.first_error.c_str());
    std::fflush(stdout);
  };
  std::int64_t n = 0;
  for (auto next = start; next < end; next = start + ++n * interval) {
    std::this_thread::sleep_until(next);
    auto t0 = Clock::now();
    mps::bench::target_proto::StatusResponse resp;
    auto st = world.TryStatus(&resp, 2s);
    auto took = Clock::now() - t0;
    auto i = minute_of(t0);
    while (reported < i) report(reported++);
    std::lock_guard lock(mu);
    auto& m = stats[i];
    m.latencies.push_back(took);
    if (!st.ok()) {
      if (m.errors++ == 0) m.first_error = st.error_message();
    }
  }
  stop = true;
  scaler.join();
  while (reported < stats.size()) report(reported++);

  long errors = 0, calls = 0;
  std::vector<std::chrono::nanoseconds> all;
  for (auto& m : stats) {
    errors += m.errors;
    calls += static_cast<long>(m.latencies.size());
    all.insert(all.end(), m.latencies.begin(), m.latencies.end());
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "soak: %ld Status calls in %.0f s (%.0f/s), %ld errors, p50 %.0f us, p99 %.0f us, max %.0f "
      "us\n",
      calls, seconds, calls / seconds, errors, PercentileUs(all, 0.50), PercentileUs(all, 0.99),
      PercentileUs(all, 1.0));
  std::printf(
      "soak: RSS plugin %.1f -> %.1f MiB, hostd %.1f -> %.1f MiB (end of minute 1 -> end)\n",
      plugin_rss.front() / 1024.0, plugin_rss.back() / 1024.0, hostd_rss.front() / 1024.0,
      hostd_rss.back() / 1024.0);
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int rate = argc > 1 ? std::atoi(argv[1]) : 1000;
    double minutes = argc > 2 ? std::atof(argv[2]) : 10;
    int scale_every = argc > 3 ? std::atoi(argv[3]) : 30;
    if (rate < 1 || minutes <= 0 || scale_every < 1) {
      std::fprintf(stderr, "usage: soak_bench [RATE/s] [MINUTES] [SCALE_EVERY s]\n");
      return 2;
    }
    return Run(rate, minutes, scale_every);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "soak_bench: %s\n", e.what());
    return 1;
  }
}
