#include "scaling/state_store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <system_error>

namespace mps::scaling {
namespace {

std::int64_t ToNs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
TimePoint FromNs(std::int64_t ns) {
  return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

// Owns a sqlite3 connection; every error names the database file.
class SqliteDb {
 public:
  SqliteDb(const std::filesystem::path& path) : path_(path) {
    int rc =
        sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc != SQLITE_OK) {
      std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close(db_);
      db_ = nullptr;
      throw StateStoreError("cannot open state file " + path_.string() + ": " + message);
    }
    sqlite3_busy_timeout(db_, 2000);
  }
  ~SqliteDb() { sqlite3_close(db_); }
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  sqlite3* get() const { return db_; }
  const std::filesystem::path& path() const { return path_; }

  [[noreturn]] void Fail(std::string_view what) const {
    int code = sqlite3_errcode(db_);
    std::string message = sqlite3_errmsg(db_);
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) {
      throw StateStoreError("state file " + path_.string() +
                            " is corrupt or not an SQLite database (" + message +
                            "); move it away to start with an empty state");
    }
    throw StateStoreError("state file " + path_.string() + ": " + std::string(what) + ": " +
                          message);
  }

  void Exec(const char* sql) const {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      sqlite3_free(error);
      Fail(sql);
    }
  }

 private:
  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
};

// A prepared statement; parameters are bound 1-based in call order.
class Statement {
 public:
  Statement(const SqliteDb& db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db.get(), sql, -1, &stmt_, nullptr) != SQLITE_OK) db.Fail(sql);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(std::string_view text) {
    Check(sqlite3_bind_text(stmt_, ++index_, text.data(), static_cast<int>(text.size()),
                            SQLITE_TRANSIENT));
    return *this;
  }
  Statement& Bind(std::int64_t value) {
    Check(sqlite3_bind_int64(stmt_, ++index_, value));
    return *this;
  }

  // True while a row is available.
  bool Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    db_.Fail(sqlite3_sql(stmt_));
  }
  void Run() {
    while (Step()) {
    }
  }

  std::string Text(int column) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)))
             : std::string();
  }
  std::int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK) db_.Fail("bind");
  }
  const SqliteDb& db_;
  sqlite3_stmt* stmt_ = nullptr;
  int index_ = 0;
};

std::filesystem::path CheckedDatabasePath(const std::filesystem::path& state_dir) {
  std::error_code ec;
  auto status = std::filesystem::status(state_dir, ec);
  if (!std::filesystem::exists(status)) {
    throw StateStoreError("state_dir " + state_dir.string() + " does not exist");
  }
  if (!std::filesystem::is_directory(status)) {
    throw StateStoreError("state_dir " + state_dir.string() + " is not a directory");
  }
  if (::access(state_dir.c_str(), W_OK | X_OK) != 0) {
    throw StateStoreError("state_dir " + state_dir.string() + " is not writable");
  }
  return state_dir / "state.db";
}

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE operations (
  id TEXT PRIMARY KEY,
  pool TEXT NOT NULL,
  kind INTEGER NOT NULL,
  instance TEXT NOT NULL,
  request_id TEXT NOT NULL,
  started_at_ns INTEGER NOT NULL,
  status INTEGER NOT NULL
);
CREATE INDEX operations_by_pool ON operations(pool, status);
CREATE TABLE launch_times (
  pool TEXT NOT NULL,
  instance TEXT NOT NULL,
  launched_at_ns INTEGER NOT NULL,
  PRIMARY KEY (pool, instance)
);
CREATE TABLE pools (
  pool TEXT PRIMARY KEY,
  last_event_ns INTEGER
);
CREATE TABLE scale_requests (
  pool TEXT NOT NULL,
  request_id TEXT NOT NULL,
  target INTEGER NOT NULL,
  status INTEGER NOT NULL,
  result TEXT NOT NULL,
  started_at_ns INTEGER NOT NULL,
  PRIMARY KEY (pool, request_id)
);
)sql";

// Version 1 -> 2: the warm pool's members.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE warm_instances (
  pool TEXT NOT NULL,
  instance TEXT NOT NULL,
  phase INTEGER NOT NULL,
  PRIMARY KEY (pool, instance)
);
)sql";

// Version 2 -> 3: where each operation runs, once a pool spans several
// hosts. Rows of version 2 were on the one host: kDefaultHost.
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE operations ADD COLUMN host TEXT NOT NULL DEFAULT 'default';
)sql";

}  // namespace

struct StateStore::Impl {
  explicit Impl(const std::filesystem::path& path) : db(path) {}
  SqliteDb db;
  dev_t device = 0;  // of state.db as opened, for CheckStillOpen
  ino_t inode = 0;
};

StateStore::StateStore(const std::filesystem::path& state_dir)
    : impl_(std::make_unique<Impl>(CheckedDatabasePath(state_dir))) {
  const SqliteDb& db = impl_->db;
  // The first read of the header is where a corrupt file shows.
  std::int64_t version = 0;
  {
    Statement version_query(db, "PRAGMA user_version");
    if (version_query.Step()) version = version_query.Int(0);
  }
  if (version > kSchemaVersion) {
    throw StateStoreError("state file " + db.path().string() + " has schema version " +
                          std::to_string(version) + ", newer than this build supports (" +
                          std::to_string(kSchemaVersion) + ")");
  }
  {
    Statement wal(db, "PRAGMA journal_mode=WAL");
    wal.Run();
  }
  db.Exec("PRAGMA synchronous=NORMAL");
  if (version < kSchemaVersion) {
    db.Exec("BEGIN IMMEDIATE");
    if (version < 1) db.Exec(kSchemaV1);
    if (version < 2) db.Exec(kSchemaV2);
    if (version < 3) db.Exec(kSchemaV3);
    db.Exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
    db.Exec("COMMIT");
  }
  struct stat st {};
  if (::stat(db.path().c_str(), &st) != 0) {
    throw StateStoreError("state file " + db.path().string() + " vanished right after opening");
  }
  impl_->device = st.st_dev;
  impl_->inode = st.st_ino;
}

StateStore::Transaction::Transaction(StateStore& store) : store_(store) {
  store_.impl_->db.Exec("BEGIN IMMEDIATE");
}

StateStore::Transaction::~Transaction() {
  if (open_) sqlite3_exec(store_.impl_->db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void StateStore::Transaction::Commit() {
  store_.impl_->db.Exec("COMMIT");
  open_ = false;
}

void StateStore::CheckStillOpen() const {
  struct stat st {};
  const auto& file = impl_->db.path();
  if (::stat(file.c_str(), &st) != 0) {
    throw StateStoreError("state file " + file.string() +
                          " was removed while the plugin ran; nothing is changed until the "
                          "plugin is configured again (SetConfig or a restart)");
  }
  if (st.st_dev != impl_->device || st.st_ino != impl_->inode) {
    throw StateStoreError("state file " + file.string() +
                          " was replaced by another file while the plugin ran; nothing is "
                          "changed until the plugin is configured again (SetConfig or a restart)");
  }
}

void StateStore::ProbeWrite() {
  // A pool name no policy can have (prefixes are [a-z0-9-]).
  static const std::string kProbe = " write probe " + std::string(2048, '.');
  {
    Statement s(impl_->db, "INSERT OR REPLACE INTO pools(pool, last_event_ns) VALUES (?, NULL)");
    s.Bind(kProbe).Run();
  }
  Statement s(impl_->db, "DELETE FROM pools WHERE pool = ?");
  s.Bind(kProbe).Run();
}

StateStore::~StateStore() = default;
StateStore::StateStore(StateStore&&) noexcept = default;
StateStore& StateStore::operator=(StateStore&&) noexcept = default;

const std::filesystem::path& StateStore::path() const {
  return impl_->db.path();
}

void StateStore::RecordOperation(const StoredOperation& op) {
  Statement s(impl_->db,
              "INSERT OR REPLACE INTO operations"
              "(id, pool, kind, instance, request_id, started_at_ns, status, host)"
              " VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  s.Bind(op.id).Bind(op.pool).Bind(static_cast<std::int64_t>(op.kind)).Bind(op.instance);
  s.Bind(op.request_id).Bind(ToNs(op.started_at)).Bind(static_cast<std::int64_t>(op.status));
  s.Bind(op.host);
  s.Run();
}

void StateStore::SetOperationStatus(const std::string& id, OperationStatus status) {
  Statement s(impl_->db, "UPDATE operations SET status = ? WHERE id = ?");
  s.Bind(static_cast<std::int64_t>(status)).Bind(id).Run();
  if (sqlite3_changes(impl_->db.get()) == 0) {
    throw StateStoreError("state file " + path().string() + ": no operation with id " + id);
  }
}

std::vector<StoredOperation> StateStore::PendingOperations(const std::string& pool) const {
  Statement s(impl_->db,
              "SELECT id, pool, kind, instance, request_id, started_at_ns, status, host"
              " FROM operations"
              " WHERE pool = ? AND status = ? ORDER BY started_at_ns, id");
  s.Bind(pool).Bind(static_cast<std::int64_t>(OperationStatus::kPending));
  std::vector<StoredOperation> out;
  while (s.Step()) {
    StoredOperation op;
    op.id = s.Text(0);
    op.pool = s.Text(1);
    op.kind = static_cast<OperationKind>(s.Int(2));
    op.instance = s.Text(3);
    op.request_id = s.Text(4);
    op.started_at = FromNs(s.Int(5));
    op.status = static_cast<OperationStatus>(s.Int(6));
    op.host = s.Text(7);
    out.push_back(std::move(op));
  }
  return out;
}

void StateStore::RecordLaunchTime(const std::string& pool, const std::string& instance,
                                  TimePoint at) {
  Statement s(
      impl_->db,
      "INSERT OR REPLACE INTO launch_times(pool, instance, launched_at_ns) VALUES (?, ?, ?)");
  s.Bind(pool).Bind(instance).Bind(ToNs(at)).Run();
}

std::map<std::string, TimePoint> StateStore::LaunchTimes(const std::string& pool) const {
  Statement s(impl_->db, "SELECT instance, launched_at_ns FROM launch_times WHERE pool = ?");
  s.Bind(pool);
  std::map<std::string, TimePoint> out;
  while (s.Step()) out[s.Text(0)] = FromNs(s.Int(1));
  return out;
}

void StateStore::ForgetInstance(const std::string& pool, const std::string& instance) {
  Statement s(impl_->db, "DELETE FROM launch_times WHERE pool = ? AND instance = ?");
  s.Bind(pool).Bind(instance).Run();
}

void StateStore::SetWarm(const std::string& pool, const std::string& instance, WarmPhase phase) {
  Statement s(impl_->db,
              "INSERT OR REPLACE INTO warm_instances(pool, instance, phase) VALUES (?, ?, ?)");
  s.Bind(pool).Bind(instance).Bind(static_cast<std::int64_t>(phase)).Run();
}

void StateStore::ForgetWarm(const std::string& pool, const std::string& instance) {
  Statement s(impl_->db, "DELETE FROM warm_instances WHERE pool = ? AND instance = ?");
  s.Bind(pool).Bind(instance).Run();
}

std::map<std::string, WarmPhase, std::less<>> StateStore::WarmInstances(
    const std::string& pool) const {
  Statement s(impl_->db, "SELECT instance, phase FROM warm_instances WHERE pool = ?");
  s.Bind(pool);
  std::map<std::string, WarmPhase, std::less<>> out;
  while (s.Step()) {
    out[s.Text(0)] = s.Int(1) == static_cast<std::int64_t>(WarmPhase::kWarm) ? WarmPhase::kWarm
                                                                             : WarmPhase::kWarming;
  }
  return out;
}

void StateStore::SetLastEvent(const std::string& pool, std::int64_t unix_ns) {
  Statement s(impl_->db,
              "INSERT INTO pools(pool, last_event_ns) VALUES (?, ?)"
              " ON CONFLICT(pool) DO UPDATE SET last_event_ns = excluded.last_event_ns");
  s.Bind(pool).Bind(unix_ns).Run();
}

std::optional<std::int64_t> StateStore::LastEvent(const std::string& pool) const {
  Statement s(impl_->db, "SELECT last_event_ns FROM pools WHERE pool = ?");
  s.Bind(pool);
  if (!s.Step()) return std::nullopt;
  return s.Int(0);
}

std::optional<ScaleRequestRecord> StateStore::FindRequest(const std::string& pool,
                                                          const std::string& request_id) const {
  Statement s(impl_->db,
              "SELECT target, status, result, started_at_ns FROM scale_requests"
              " WHERE pool = ? AND request_id = ?");
  s.Bind(pool).Bind(request_id);
  if (!s.Step()) return std::nullopt;
  ScaleRequestRecord r;
  r.pool = pool;
  r.request_id = request_id;
  r.target = s.Int(0);
  r.status = static_cast<RequestStatus>(s.Int(1));
  r.result = s.Text(2);
  r.started_at = FromNs(s.Int(3));
  return r;
}

BeginRequestResult StateStore::BeginRequest(const std::string& pool, const std::string& request_id,
                                            std::int64_t target, TimePoint now) {
  // INSERT OR IGNORE decides atomically which caller is first.
  Statement s(
      impl_->db,
      "INSERT OR IGNORE INTO scale_requests"
      "(pool, request_id, target, status, result, started_at_ns) VALUES (?, ?, ?, ?, '', ?)");
  s.Bind(pool).Bind(request_id).Bind(target);
  s.Bind(static_cast<std::int64_t>(RequestStatus::kInProgress)).Bind(ToNs(now)).Run();
  bool inserted = sqlite3_changes(impl_->db.get()) > 0;
  return BeginRequestResult{inserted, *FindRequest(pool, request_id)};
}

void StateStore::CompleteRequest(const std::string& pool, const std::string& request_id,
                                 bool succeeded, const std::string& result) {
  Statement s(impl_->db,
              "UPDATE scale_requests SET status = ?, result = ? WHERE pool = ? AND request_id = ?");
  s.Bind(static_cast<std::int64_t>(succeeded ? RequestStatus::kSucceeded : RequestStatus::kFailed));
  s.Bind(result).Bind(pool).Bind(request_id).Run();
  if (sqlite3_changes(impl_->db.get()) == 0) {
    throw StateStoreError("state file " + path().string() + ": scale request " + request_id +
                          " of pool " + pool + " was never begun");
  }
}

int StateStore::ForgetCompletedRequestsBefore(TimePoint cutoff) {
  Statement s(impl_->db, "DELETE FROM scale_requests WHERE status != ? AND started_at_ns < ?");
  s.Bind(static_cast<std::int64_t>(RequestStatus::kInProgress)).Bind(ToNs(cutoff)).Run();
  return sqlite3_changes(impl_->db.get());
}

}  // namespace mps::scaling
