#pragma once
// Counts rejected input per kind and logs each kind once, so a peer sending
// garbage in a loop cannot flood the log.
#include <atomic>
#include <map>
#include <mutex>
#include <string>

namespace mps::bus {

class RejectionLog {
 public:
  explicit RejectionLog(std::string owner) : owner_(std::move(owner)) {}
  void Record(const std::string& kind, const std::string& detail);
  std::map<std::string, std::uint64_t> Snapshot() const;

 private:
  std::string owner_;
  mutable std::mutex mutex_;
  std::map<std::string, std::uint64_t> counts_;
};

}  // namespace mps::bus
