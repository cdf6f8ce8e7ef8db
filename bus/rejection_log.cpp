#include "bus/rejection_log.h"

#include <spdlog/spdlog.h>

namespace mps::bus {

void RejectionLog::Record(const std::string& kind, const std::string& detail) {
  std::uint64_t n;
  {
    std::lock_guard lock(mutex_);
    n = ++counts_[kind];
  }
  metrics::Inc(metrics_.get(), "mps_bus_rejected_requests_total",
               "Bus messages refused before any handler ran, by kind",
               {{"server", owner_}, {"kind", kind}});
  if (n == 1)
    spdlog::warn("bus {}: rejected a message ({}): {} (further '{}' rejections are only counted)",
                 owner_, kind, detail, kind);
}

std::map<std::string, std::uint64_t> RejectionLog::Snapshot() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

}  // namespace mps::bus
