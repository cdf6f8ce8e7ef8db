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

bool RefusalLog::Remember(const std::string& key) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    recent_.splice(recent_.begin(), recent_, it->second);
    return false;
  }
  recent_.push_front(key);
  index_.emplace(key, recent_.begin());
  while (index_.size() > std::max<std::size_t>(limits_.max_keys, 1)) {
    index_.erase(recent_.back());
    recent_.pop_back();
  }
  return true;
}

std::optional<std::string> RefusalLog::Tick(Clock::time_point now) {
  if (window_start_ && now - *window_start_ < limits_.interval) return std::nullopt;
  // The interval is over: a new one starts now.
  auto started = window_start_;
  window_start_ = now;
  lines_in_window_ = 0;
  if (pending_ == 0) return std::nullopt;
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now - *started).count();
  std::string summary =
      "bus: refused " + std::to_string(pending_) + " more unlisted key(s) in the last " +
      std::to_string(seconds) + " s, not logged (at most " +
      std::to_string(limits_.lines_per_interval) + " refusals are logged per " +
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(limits_.interval).count()) +
      " s; mps_bus_refused_keys_total counts every one)";
  pending_ = 0;
  ++lines_in_window_;
  return summary;
}

std::vector<std::string> RefusalLog::Record(const std::string& key, const std::string& line,
                                            Clock::time_point now) {
  std::vector<std::string> lines;
  if (auto summary = Tick(now)) lines.push_back(std::move(*summary));
  if (!Remember(key)) return lines;  // logged already (or counted) while remembered
  if (lines_in_window_ < limits_.lines_per_interval) {
    ++lines_in_window_;
    lines.push_back(line);
  } else {
    ++pending_;
    ++not_logged_;
  }
  return lines;
}

}  // namespace mps::bus
