#include "metrics/registry.h"

#include <prometheus/text_serializer.h>

#include <algorithm>

namespace mps::metrics {

std::vector<double> DurationBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> LongDurationBuckets() {
  return {1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600};
}

Registry::Registry() : registry_(std::make_shared<prometheus::Registry>()) {}

template <class T>
prometheus::Family<T>& Registry::FamilyOf(const std::string& name, const std::string& help) {
  // Called with mutex_ held. A name is one type for the life of the process.
  auto it = families_.find(name);
  if (it != families_.end()) return *static_cast<prometheus::Family<T>*>(it->second);
  prometheus::Family<T>* family = nullptr;
  if constexpr (std::is_same_v<T, prometheus::Counter>) {
    family = &prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
  } else if constexpr (std::is_same_v<T, prometheus::Gauge>) {
    family = &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_);
  } else {
    family = &prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_);
  }
  families_.emplace(name, family);
  return *family;
}

prometheus::Counter& Registry::Counter(const std::string& name, const std::string& help,
                                       const Labels& labels) {
  std::lock_guard lock(mutex_);
  return FamilyOf<prometheus::Counter>(name, help).Add(labels);
}

prometheus::Gauge& Registry::Gauge(const std::string& name, const std::string& help,
                                   const Labels& labels) {
  std::lock_guard lock(mutex_);
  return FamilyOf<prometheus::Gauge>(name, help).Add(labels);
}

prometheus::Histogram& Registry::Histogram(const std::string& name, const std::string& help,
                                           const std::vector<double>& buckets,
                                           const Labels& labels) {
  std::lock_guard lock(mutex_);
  return FamilyOf<prometheus::Histogram>(name, help).Add(labels, buckets);
}

void Registry::ReplaceGauges(const std::string& name, const std::string& help, const Labels& scope,
                             const std::vector<std::pair<Labels, double>>& values) {
  std::lock_guard lock(mutex_);
  auto& family = FamilyOf<prometheus::Gauge>(name, help);
  auto& series = replaced_[name];
  auto in_scope = [&](const Labels& labels) {
    return std::all_of(scope.begin(), scope.end(), [&](const auto& kv) {
      auto it = labels.find(kv.first);
      return it != labels.end() && it->second == kv.second;
    });
  };
  std::map<Labels, double> wanted;
  for (const auto& [labels, value] : values) {
    Labels full = labels;
    full.insert(scope.begin(), scope.end());
    wanted[full] = value;
  }
  for (auto it = series.begin(); it != series.end();) {
    if (in_scope(it->first) && !wanted.contains(it->first)) {
      family.Remove(it->second);
      it = series.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [labels, value] : wanted) {
    auto& gauge = family.Add(labels);
    gauge.Set(value);
    series[labels] = &gauge;
  }
}

void Registry::OnCollect(std::function<void()> hook) {
  std::lock_guard lock(mutex_);
  hooks_.push_back(std::move(hook));
}

std::vector<prometheus::MetricFamily> Registry::Collect() const {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard lock(mutex_);
    hooks = hooks_;
  }
  for (const auto& hook : hooks) hook();
  return registry_->Collect();
}

std::string Registry::Text() const {
  return prometheus::TextSerializer().Serialize(Collect());
}

}  // namespace mps::metrics
