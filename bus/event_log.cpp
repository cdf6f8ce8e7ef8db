#include "bus/event_log.h"

#include <random>

namespace mps::bus {

std::string RandomStreamId() {
  std::random_device rd;
  std::uniform_int_distribution<int> hex(0, 15);
  std::string id;
  for (int i = 0; i < 16; ++i) id += "0123456789abcdef"[hex(rd)];
  return id;
}

MemoryEventLog::MemoryEventLog(std::size_t capacity)
    : capacity_(capacity), stream_id_(RandomStreamId()) {}

std::uint64_t MemoryEventLog::last_seq() const {
  std::lock_guard lock(mutex_);
  return last_;
}

std::uint64_t MemoryEventLog::first_seq() const {
  std::lock_guard lock(mutex_);
  return events_.empty() ? 0 : events_.front().seq;
}

std::uint64_t MemoryEventLog::Append(const std::function<std::string(std::uint64_t)>& make_frame) {
  std::lock_guard lock(mutex_);
  std::uint64_t seq = ++last_;
  events_.push_back({seq, make_frame(seq)});
  while (events_.size() > capacity_) events_.pop_front();
  return seq;
}

std::vector<LoggedEvent> MemoryEventLog::ReadFrom(std::uint64_t from, std::size_t limit) const {
  std::lock_guard lock(mutex_);
  std::vector<LoggedEvent> out;
  if (events_.empty() || from > last_) return out;
  std::uint64_t first = events_.front().seq;
  std::size_t start = from <= first ? 0 : static_cast<std::size_t>(from - first);
  for (std::size_t i = start; i < events_.size() && out.size() < limit; ++i)
    out.push_back(events_[i]);
  return out;
}

}  // namespace mps::bus
