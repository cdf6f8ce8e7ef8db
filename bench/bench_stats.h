#pragma once
// Latency percentiles for the benchmark programs.
#include <algorithm>
#include <chrono>
#include <vector>

namespace mps::bench {

struct Percentiles {
  double p50_us = 0, p99_us = 0, mean_us = 0;
};

inline Percentiles Summarize(std::vector<std::chrono::nanoseconds> samples) {
  Percentiles p;
  if (samples.empty()) return p;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    return samples[std::min(samples.size() - 1, static_cast<std::size_t>(q * samples.size()))]
               .count() /
           1000.0;
  };
  p.p50_us = at(0.50);
  p.p99_us = at(0.99);
  double sum = 0;
  for (auto s : samples) sum += s.count();
  p.mean_us = sum / samples.size() / 1000.0;
  return p;
}

}  // namespace mps::bench
