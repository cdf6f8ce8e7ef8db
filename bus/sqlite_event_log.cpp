#include "bus/sqlite_event_log.h"

#include <sqlite3.h>

#include <stdexcept>

namespace mps::bus {
namespace {

// Finalizes a prepared statement on every path out.
struct Statement {
  sqlite3_stmt* stmt = nullptr;
  Statement(sqlite3* db, const char* sql, const std::filesystem::path& path) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK)
      throw std::runtime_error("event log " + path.string() + ": " + sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(stmt); }
};

}  // namespace

SqliteEventLog::SqliteEventLog(const std::filesystem::path& path, std::size_t retain)
    : path_(path), retain_(retain) {
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error("cannot open event log " + path.string() + ": " + why);
  }
  try {
    Exec("PRAGMA journal_mode=WAL");
    Exec("PRAGMA synchronous=NORMAL");
    Exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    Exec("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, frame BLOB NOT NULL)");
    {
      Statement s(db_, "SELECT value FROM meta WHERE key = 'stream'", path_);
      if (sqlite3_step(s.stmt) == SQLITE_ROW)
        stream_id_ = reinterpret_cast<const char*>(sqlite3_column_text(s.stmt, 0));
    }
    if (stream_id_.empty()) {
      stream_id_ = RandomStreamId();
      Statement s(db_, "INSERT INTO meta (key, value) VALUES ('stream', ?)", path_);
      sqlite3_bind_text(s.stmt, 1, stream_id_.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(s.stmt) != SQLITE_DONE)
        throw std::runtime_error("event log " + path_.string() + ": " + sqlite3_errmsg(db_));
    }
    // The highest number ever given out, kept in meta so that trimming the
    // table can never make a number be used twice.
    Statement s(db_, "SELECT value FROM meta WHERE key = 'last'", path_);
    if (sqlite3_step(s.stmt) == SQLITE_ROW)
      last_ = std::stoull(reinterpret_cast<const char*>(sqlite3_column_text(s.stmt, 0)));
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

SqliteEventLog::~SqliteEventLog() {
  sqlite3_close(db_);
}

void SqliteEventLog::Exec(const char* sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error("event log " + path_.string() + ": " + why + " (in: " + sql + ")");
  }
}

std::uint64_t SqliteEventLog::last_seq() const {
  std::lock_guard lock(mutex_);
  return last_;
}

std::uint64_t SqliteEventLog::first_seq() const {
  std::lock_guard lock(mutex_);
  Statement s(db_, "SELECT MIN(seq) FROM events", path_);
  if (sqlite3_step(s.stmt) == SQLITE_ROW && sqlite3_column_type(s.stmt, 0) != SQLITE_NULL)
    return static_cast<std::uint64_t>(sqlite3_column_int64(s.stmt, 0));
  return 0;
}

std::uint64_t SqliteEventLog::Append(const std::function<std::string(std::uint64_t)>& make_frame) {
  std::lock_guard lock(mutex_);
  std::uint64_t seq = last_ + 1;
  std::string frame = make_frame(seq);
  Exec("BEGIN IMMEDIATE");
  try {
    {
      Statement s(db_, "INSERT INTO events (seq, frame) VALUES (?, ?)", path_);
      sqlite3_bind_int64(s.stmt, 1, static_cast<sqlite3_int64>(seq));
      sqlite3_bind_blob(s.stmt, 2, frame.data(), static_cast<int>(frame.size()), SQLITE_TRANSIENT);
      if (sqlite3_step(s.stmt) != SQLITE_DONE)
        throw std::runtime_error("event log " + path_.string() + ": " + sqlite3_errmsg(db_));
    }
    {
      Statement s(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES ('last', ?)", path_);
      std::string v = std::to_string(seq);
      sqlite3_bind_text(s.stmt, 1, v.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_step(s.stmt);
    }
    if (seq > retain_) {
      Statement s(db_, "DELETE FROM events WHERE seq <= ?", path_);
      sqlite3_bind_int64(s.stmt, 1, static_cast<sqlite3_int64>(seq - retain_));
      sqlite3_step(s.stmt);
    }
    Exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  last_ = seq;
  return seq;
}

std::vector<LoggedEvent> SqliteEventLog::ReadFrom(std::uint64_t from, std::size_t limit) const {
  std::lock_guard lock(mutex_);
  Statement s(db_, "SELECT seq, frame FROM events WHERE seq >= ? ORDER BY seq LIMIT ?", path_);
  sqlite3_bind_int64(s.stmt, 1, static_cast<sqlite3_int64>(from));
  sqlite3_bind_int64(s.stmt, 2, static_cast<sqlite3_int64>(limit));
  std::vector<LoggedEvent> out;
  while (sqlite3_step(s.stmt) == SQLITE_ROW) {
    auto data = static_cast<const char*>(sqlite3_column_blob(s.stmt, 1));
    out.push_back({static_cast<std::uint64_t>(sqlite3_column_int64(s.stmt, 0)),
                   std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(s.stmt, 1)))});
  }
  return out;
}

}  // namespace mps::bus
