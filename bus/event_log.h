#pragma once
// The bounded log a publisher keeps so that subscribers can replay what they
// missed. Sequence numbers are contiguous within one stream id; a log that
// survives restarts keeps its stream id, an in-memory one makes a new one.
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace mps::bus {

struct LoggedEvent {
  std::uint64_t seq = 0;
  std::string frame;  // the encoded event envelope
};

class EventLog {
 public:
  virtual ~EventLog() = default;
  virtual std::string stream_id() const = 0;
  virtual std::uint64_t last_seq() const = 0;   // 0 when empty
  virtual std::uint64_t first_seq() const = 0;  // oldest retained; 0 when empty
  // Stores the event `make_frame(seq)` builds for the next sequence number and
  // returns that number. Atomic: numbers are never skipped or reused.
  virtual std::uint64_t Append(const std::function<std::string(std::uint64_t)>& make_frame) = 0;
  // Retained events with seq >= from, oldest first, at most `limit`.
  virtual std::vector<LoggedEvent> ReadFrom(std::uint64_t from, std::size_t limit) const = 0;
};

class MemoryEventLog : public EventLog {
 public:
  explicit MemoryEventLog(std::size_t capacity = 10000);
  std::string stream_id() const override { return stream_id_; }
  std::uint64_t last_seq() const override;
  std::uint64_t first_seq() const override;
  std::uint64_t Append(const std::function<std::string(std::uint64_t)>& make_frame) override;
  std::vector<LoggedEvent> ReadFrom(std::uint64_t from, std::size_t limit) const override;

 private:
  std::size_t capacity_;
  std::string stream_id_;
  mutable std::mutex mutex_;
  std::deque<LoggedEvent> events_;
  std::uint64_t last_ = 0;
};

std::string RandomStreamId();

}  // namespace mps::bus
