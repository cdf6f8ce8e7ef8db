#pragma once
// A durable, bounded EventLog in SQLite. The stream id and the numbering
// survive restarts, so a subscriber that reconnects to a restarted publisher
// continues from its last sequence number with no gap and no duplicate.
#include <filesystem>
#include <mutex>

#include "bus/event_log.h"

struct sqlite3;

namespace mps::bus {

class SqliteEventLog : public EventLog {
 public:
  // Opens or creates `path`; keeps the newest `retain` events. Throws
  // std::runtime_error naming the path when it cannot be opened or is not ours.
  SqliteEventLog(const std::filesystem::path& path, std::size_t retain = 100000);
  ~SqliteEventLog() override;
  SqliteEventLog(const SqliteEventLog&) = delete;
  SqliteEventLog& operator=(const SqliteEventLog&) = delete;

  std::string stream_id() const override { return stream_id_; }
  std::uint64_t last_seq() const override;
  std::uint64_t first_seq() const override;
  std::uint64_t Append(const std::function<std::string(std::uint64_t)>& make_frame) override;
  std::vector<LoggedEvent> ReadFrom(std::uint64_t from, std::size_t limit) const override;

 private:
  void Exec(const char* sql) const;

  std::filesystem::path path_;
  std::size_t retain_;
  sqlite3* db_ = nullptr;
  std::string stream_id_;
  mutable std::mutex mutex_;
  std::uint64_t last_ = 0;
};

}  // namespace mps::bus
