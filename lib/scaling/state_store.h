#pragma once
// What must survive a restart of the plugin: operations that were in flight,
// launch times (for the registration timeout), the last scaling event, and
// every Scale request by id, so a repeated request is recognised and never
// launches or deletes twice. One SQLite file, <state_dir>/state.db, WAL mode.
// Not thread-safe: one owner (the state cache actor) uses it.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "scaling/pool_state.h"

namespace mps::scaling {

// Every failure of the store; the message names the file or directory.
class StateStoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class OperationStatus { kPending, kDone, kFailed };

struct StoredOperation {
  std::string id;  // unique, chosen by the caller
  std::string pool;
  OperationKind kind = OperationKind::kLaunch;
  std::string instance;
  std::string request_id;
  TimePoint started_at;
  OperationStatus status = OperationStatus::kPending;
  // Where it runs (a launch: the placed host). Rows written before schema 3
  // read as kDefaultHost: they were all on the one host there was.
  std::string host = std::string(kDefaultHost);
};

enum class RequestStatus { kInProgress, kSucceeded, kFailed };

struct ScaleRequestRecord {
  std::string pool;
  std::string request_id;
  std::int64_t target = 0;
  RequestStatus status = RequestStatus::kInProgress;
  std::string result;  // the answer given when it completed
  TimePoint started_at;
};

struct BeginRequestResult {
  // True: first time this id is seen, the caller executes it. False: `record`
  // is the earlier one (in progress or completed); the caller must not act
  // again but wait for it or return its result.
  bool is_new = false;
  ScaleRequestRecord record;
};

class StateStore {
 public:
  // 2: warm_instances (issue 14); 3: operations.host (issue 13). An older
  // file is migrated on open.
  inline static constexpr int kSchemaVersion = 3;

  // Opens or creates <state_dir>/state.db. The directory must exist and be
  // writable. Throws StateStoreError.
  explicit StateStore(const std::filesystem::path& state_dir);
  ~StateStore();
  StateStore(StateStore&&) noexcept;
  StateStore& operator=(StateStore&&) noexcept;

  const std::filesystem::path& path() const;

  // Writes made between Begin and Commit land together or not at all (a
  // Transaction that is destroyed uncommitted rolls them back).
  class Transaction {
   public:
    explicit Transaction(StateStore& store);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void Commit();

   private:
    StateStore& store_;
    bool open_ = true;
  };

  // Throws when state.db is no longer the file this store opened (removed,
  // or replaced by another file): acting on a store nobody reads is losing
  // what is written to it.
  void CheckStillOpen() const;
  // A small write and its removal: throws while the disk is
  // full, so a caller can tell when writing works again.
  void ProbeWrite();

  // Operations. RecordOperation replaces a row with the same id.
  void RecordOperation(const StoredOperation& op);
  void SetOperationStatus(const std::string& id, OperationStatus status);
  std::vector<StoredOperation> PendingOperations(const std::string& pool) const;

  // Launch time per instance; ForgetInstance drops it once the instance is gone.
  void RecordLaunchTime(const std::string& pool, const std::string& instance, TimePoint at);
  std::map<std::string, TimePoint> LaunchTimes(const std::string& pool) const;
  void ForgetInstance(const std::string& pool, const std::string& instance);

  // The warm pool's members (issue 14). Written in the same transaction as
  // the operation that moves an instance into or out of the warm pool, so a
  // crash never leaves an instance both counted and warm.
  void SetWarm(const std::string& pool, const std::string& instance, WarmPhase phase);
  void ForgetWarm(const std::string& pool, const std::string& instance);
  std::map<std::string, WarmPhase, std::less<>> WarmInstances(const std::string& pool) const;

  void SetLastEvent(const std::string& pool, std::int64_t unix_ns);
  std::optional<std::int64_t> LastEvent(const std::string& pool) const;

  // Idempotent Scale requests, keyed by (pool, request id).
  BeginRequestResult BeginRequest(const std::string& pool, const std::string& request_id,
                                  std::int64_t target, TimePoint now);
  // Throws when the request was never begun.
  void CompleteRequest(const std::string& pool, const std::string& request_id, bool succeeded,
                       const std::string& result);
  std::optional<ScaleRequestRecord> FindRequest(const std::string& pool,
                                                const std::string& request_id) const;
  // Drops completed requests begun before `cutoff` (in-progress ones stay), so
  // the table stays bounded; returns how many were dropped.
  int ForgetCompletedRequestsBefore(TimePoint cutoff);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mps::scaling
