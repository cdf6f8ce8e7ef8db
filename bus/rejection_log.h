#pragma once
// Counts rejected input per kind and logs each kind once, so a peer sending
// garbage in a loop cannot flood the log.
#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "metrics/registry.h"

namespace mps::bus {

class RejectionLog {
 public:
  explicit RejectionLog(std::string owner, std::shared_ptr<metrics::Registry> metrics = nullptr)
      : owner_(std::move(owner)), metrics_(std::move(metrics)) {}
  void Record(const std::string& kind, const std::string& detail);
  std::map<std::string, std::uint64_t> Snapshot() const;

 private:
  std::string owner_;
  std::shared_ptr<metrics::Registry> metrics_;  // mps_bus_rejected_requests_total; may be null
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t> counts_;
};

}  // namespace mps::bus
