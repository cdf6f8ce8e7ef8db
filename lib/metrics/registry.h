#pragma once
// The metrics of one process: a thin layer over prometheus-cpp's Registry so
// that code which counts something names the metric once and never touches
// families. Every call is thread-safe. Code that may run without metrics holds
// a `Registry*` (or shared_ptr) that may be null and calls the free functions
// below, which do nothing on null.
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace mps::metrics {

using Labels = std::map<std::string, std::string>;

// Histogram buckets in seconds.
std::vector<double> DurationBuckets();      // 0.005 s .. 10 s: requests
std::vector<double> LongDurationBuckets();  // 1 s .. 1 h: launches, scales, drains

class Registry : public prometheus::Collectable {
 public:
  Registry();

  prometheus::Counter& Counter(const std::string& name, const std::string& help,
                               const Labels& labels = {});
  prometheus::Gauge& Gauge(const std::string& name, const std::string& help,
                           const Labels& labels = {});
  prometheus::Histogram& Histogram(const std::string& name, const std::string& help,
                                   const std::vector<double>& buckets, const Labels& labels = {});

  // Replaces every series of gauge `name` whose labels contain `scope` with
  // `values` (series not in `values` are removed, not left at their last
  // value): "instances of pool web by state" without stale states.
  void ReplaceGauges(const std::string& name, const std::string& help, const Labels& scope,
                     const std::vector<std::pair<Labels, double>>& values);

  // Runs before each collection (scrape), e.g. to set a gauge computed on demand.
  void OnCollect(std::function<void()> hook);

  std::vector<prometheus::MetricFamily> Collect() const override;
  // The text exposition format, as served on /metrics.
  std::string Text() const;

 private:
  template <class T>
  prometheus::Family<T>& FamilyOf(const std::string& name, const std::string& help);

  std::shared_ptr<prometheus::Registry> registry_;
  mutable std::mutex mutex_;
  std::map<std::string, void*> families_;  // name -> prometheus::Family<T>*
  std::map<std::string, std::map<Labels, prometheus::Gauge*>> replaced_;
  std::vector<std::function<void()>> hooks_;
};

// Metrics found by a short key on hot paths (a bus request): the labels are
// built and the family searched once per key, then one hash lookup.
template <class T>
class MetricCache {
 public:
  template <class Make>
  T& Get(const std::string& key, Make make) {
    std::lock_guard lock(mutex_);
    auto it = map_.find(key);
    if (it != map_.end()) return *it->second;
    T& metric = make();
    map_.emplace(key, &metric);
    return metric;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, T*> map_;
};

// Null-safe helpers for code where metrics are optional.
inline void Inc(Registry* r, const std::string& name, const std::string& help,
                const Labels& labels = {}, double by = 1) {
  if (r) r->Counter(name, help, labels).Increment(by);
}
inline void Set(Registry* r, const std::string& name, const std::string& help, const Labels& labels,
                double value) {
  if (r) r->Gauge(name, help, labels).Set(value);
}
inline void Observe(Registry* r, const std::string& name, const std::string& help,
                    const std::vector<double>& buckets, const Labels& labels, double value) {
  if (r) r->Histogram(name, help, buckets, labels).Observe(value);
}
inline double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace mps::metrics
