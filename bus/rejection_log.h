#pragma once
// Logs of refused input that a hostile peer cannot use to flood the log or
// grow our memory.
// - RejectionLog counts rejected messages per kind (a fixed, small set) and
//   logs each kind once.
// - RefusalLog logs refused peers (unlisted Curve keys): each key once while
//   it is remembered (the last `max_keys` distinct keys), and at most
//   `lines_per_interval` lines per `interval`; new keys beyond that are
//   counted and reported in one summary line once the interval is over.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

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

struct RefusalLogLimits {
  std::size_t max_keys = 1024;  // distinct keys remembered (least recently refused forgotten)
  int lines_per_interval = 5;
  std::chrono::milliseconds interval = std::chrono::seconds(10);
};

// Not thread-safe: its owner serializes calls. Returns the lines to log
// instead of logging them, so the owner can log outside its lock (and tests
// can read them).
class RefusalLog {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RefusalLog(RefusalLogLimits limits = {}) : limits_(limits) {}

  // A refusal of `key`, described by `line`. A key already remembered is not
  // logged again. A new one is logged when the interval's budget allows,
  // else counted for the summary (which comes first when its interval is over).
  std::vector<std::string> Record(const std::string& key, const std::string& line,
                                  Clock::time_point now);
  // The summary of new keys not logged, once their interval is over.
  std::optional<std::string> Tick(Clock::time_point now);

  std::size_t remembered_keys() const { return index_.size(); }
  std::uint64_t not_logged() const { return not_logged_; }  // new keys never logged, in all
  const RefusalLogLimits& limits() const { return limits_; }

 private:
  bool Remember(const std::string& key);  // false when already remembered

  RefusalLogLimits limits_;
  std::list<std::string> recent_;  // most recently refused first
  std::unordered_map<std::string, std::list<std::string>::iterator> index_;
  std::optional<Clock::time_point> window_start_;
  int lines_in_window_ = 0;
  std::uint64_t pending_ = 0;     // new keys not logged in the current window
  std::uint64_t not_logged_ = 0;  // new keys never logged, in all
};

}  // namespace mps::bus
