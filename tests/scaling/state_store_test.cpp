#include "scaling/state_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <optional>

#include "scaling/state_dir_lock.h"
#include "support/temp_dir.h"

namespace mps::scaling {
namespace {

using ::testing::HasSubstr;

TimePoint At(std::int64_t seconds) {
  return TimePoint(std::chrono::seconds(seconds));
}

// A fresh directory per test, removed afterwards.
class StateStoreTest : public ::testing::Test {
 protected:
  std::string OpenError(const std::filesystem::path& dir) {
    try {
      StateStore store(dir);
    } catch (const StateStoreError& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected StateStoreError for " << dir;
    return {};
  }

  mps::testing::TempDir tmp_;
  std::filesystem::path dir_{tmp_.path()};
};

TEST_F(StateStoreTest, CreatesVersionedDatabase) {
  StateStore store(dir_);
  EXPECT_EQ(store.path(), dir_ / "state.db");
  EXPECT_TRUE(std::filesystem::exists(dir_ / "state.db"));
  EXPECT_FALSE(store.LastEvent("web"));
  EXPECT_TRUE(store.PendingOperations("web").empty());
  EXPECT_TRUE(store.LaunchTimes("web").empty());
  // WAL mode: a write goes to the -wal file while the store is open.
  store.SetLastEvent("web", 1);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "state.db-wal"));
}

TEST_F(StateStoreTest, SchemaVersionIsRecordedInTheHeader) {
  { StateStore store(dir_); }
  // user_version is the big-endian int at offset 60 of the database header.
  std::ifstream in(dir_ / "state.db", std::ios::binary);
  in.seekg(60);
  unsigned char version[4] = {};
  in.read(reinterpret_cast<char*>(version), 4);
  EXPECT_EQ(version[3], StateStore::kSchemaVersion);
  EXPECT_EQ(version[0] | version[1] | version[2], 0);
}

TEST_F(StateStoreTest, EverythingSurvivesReopen) {
  {
    StateStore store(dir_);
    store.RecordOperation({"op-1", "web", OperationKind::kLaunch, "web-a1", "req-1", At(100),
                           OperationStatus::kPending});
    store.RecordOperation({"op-2", "web", OperationKind::kDrain, "web-b2", "req-1", At(101),
                           OperationStatus::kPending});
    store.RecordOperation({"op-3", "web", OperationKind::kDelete, "web-c3", "req-0", At(50),
                           OperationStatus::kPending});
    store.RecordOperation({"op-4", "api", OperationKind::kLaunch, "api-x", "req-7", At(10),
                           OperationStatus::kPending});
    store.SetOperationStatus("op-3", OperationStatus::kDone);
    store.RecordLaunchTime("web", "web-a1", At(100));
    store.RecordLaunchTime("web", "web-old", At(10));
    store.ForgetInstance("web", "web-old");
    store.SetLastEvent("web", 1'700'000'000'000'000'001);
    store.SetLastEvent("web", 1'700'000'000'000'000'002);
    EXPECT_TRUE(store.BeginRequest("web", "req-1", 5, At(99)).is_new);
  }
  StateStore store(dir_);
  auto ops = store.PendingOperations("web");
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].id, "op-1");
  EXPECT_EQ(ops[0].kind, OperationKind::kLaunch);
  EXPECT_EQ(ops[0].instance, "web-a1");
  EXPECT_EQ(ops[0].request_id, "req-1");
  EXPECT_EQ(ops[0].started_at, At(100));
  EXPECT_EQ(ops[0].status, OperationStatus::kPending);
  EXPECT_EQ(ops[1].id, "op-2");
  EXPECT_EQ(ops[1].kind, OperationKind::kDrain);
  EXPECT_EQ(store.PendingOperations("api").size(), 1u);
  auto launches = store.LaunchTimes("web");
  ASSERT_EQ(launches.size(), 1u);
  EXPECT_EQ(launches.at("web-a1"), At(100));
  EXPECT_EQ(store.LastEvent("web"), 1'700'000'000'000'000'002);
  EXPECT_FALSE(store.LastEvent("api"));
  auto request = store.FindRequest("web", "req-1");
  ASSERT_TRUE(request);
  EXPECT_EQ(request->target, 5);
  EXPECT_EQ(request->status, RequestStatus::kInProgress);
}

TEST_F(StateStoreTest, RepeatedRequestIsRecognised) {
  StateStore store(dir_);
  auto first = store.BeginRequest("web", "req-1", 5, At(100));
  EXPECT_TRUE(first.is_new);
  EXPECT_EQ(first.record.status, RequestStatus::kInProgress);

  auto again = store.BeginRequest("web", "req-1", 5, At(101));
  EXPECT_FALSE(again.is_new);
  EXPECT_EQ(again.record.status, RequestStatus::kInProgress);
  EXPECT_EQ(again.record.started_at, At(100));

  store.CompleteRequest("web", "req-1", true, "launched 5");
  auto after = store.BeginRequest("web", "req-1", 5, At(102));
  EXPECT_FALSE(after.is_new);
  EXPECT_EQ(after.record.status, RequestStatus::kSucceeded);
  EXPECT_EQ(after.record.result, "launched 5");

  // The same id in another pool is another request.
  EXPECT_TRUE(store.BeginRequest("api", "req-1", 1, At(103)).is_new);
  store.CompleteRequest("api", "req-1", false, "image not found");
  EXPECT_EQ(store.FindRequest("api", "req-1")->status, RequestStatus::kFailed);
}

TEST_F(StateStoreTest, RequestRecognisedAfterReopen) {
  {
    StateStore store(dir_);
    ASSERT_TRUE(store.BeginRequest("web", "req-1", 3, At(100)).is_new);
  }
  StateStore store(dir_);
  auto again = store.BeginRequest("web", "req-1", 3, At(200));
  EXPECT_FALSE(again.is_new);
  EXPECT_EQ(again.record.target, 3);
}

TEST_F(StateStoreTest, OldCompletedRequestsAreForgotten) {
  StateStore store(dir_);
  store.BeginRequest("web", "old-done", 1, At(100));
  store.CompleteRequest("web", "old-done", true, "ok");
  store.BeginRequest("web", "old-running", 2, At(100));
  store.BeginRequest("web", "new-done", 3, At(300));
  store.CompleteRequest("web", "new-done", true, "ok");
  EXPECT_EQ(store.ForgetCompletedRequestsBefore(At(200)), 1);
  EXPECT_FALSE(store.FindRequest("web", "old-done"));
  EXPECT_TRUE(store.FindRequest("web", "old-running"));
  EXPECT_TRUE(store.FindRequest("web", "new-done"));
}

TEST_F(StateStoreTest, UnknownIdsAreErrors) {
  StateStore store(dir_);
  EXPECT_THROW(store.CompleteRequest("web", "nope", true, ""), StateStoreError);
  EXPECT_THROW(store.SetOperationStatus("nope", OperationStatus::kDone), StateStoreError);
}

TEST_F(StateStoreTest, MissingDirectoryNamed) {
  auto missing = dir_ / "does-not-exist";
  EXPECT_THAT(OpenError(missing), HasSubstr("state_dir " + missing.string() + " does not exist"));
}

TEST_F(StateStoreTest, FileInsteadOfDirectoryNamed) {
  auto file = dir_ / "plain-file";
  std::ofstream(file) << "x";
  EXPECT_THAT(OpenError(file), HasSubstr("state_dir " + file.string() + " is not a directory"));
}

TEST_F(StateStoreTest, CorruptFileNamed) {
  {
    std::ofstream out(dir_ / "state.db", std::ios::binary);
    out << std::string(8192, 'z');
  }
  std::string error = OpenError(dir_);
  EXPECT_THAT(error, HasSubstr((dir_ / "state.db").string()));
  EXPECT_THAT(error, HasSubstr("corrupt or not an SQLite database"));
}

TEST_F(StateStoreTest, NewerSchemaRefused) {
  { StateStore store(dir_); }
  // Bump the version the way a future build would.
  {
    StateStore store(dir_);
    store.RecordOperation(
        {"op", "web", OperationKind::kLaunch, "web-a", "r", At(1), OperationStatus::kPending});
  }
  // Patch user_version (big-endian int at offset 60 of the header).
  {
    std::fstream f(dir_ / "state.db", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(60);
    const char version[4] = {0, 0, 0, 9};
    f.write(version, 4);
  }
  std::string error = OpenError(dir_);
  EXPECT_THAT(error, HasSubstr("schema version 9, newer than this build supports (3)"));
  EXPECT_THAT(error, HasSubstr((dir_ / "state.db").string()));
}

TEST_F(StateStoreTest, WarmInstancesPersist) {
  {
    StateStore store(dir_);
    store.SetWarm("web", "web-a", WarmPhase::kWarming);
    store.SetWarm("web", "web-b", WarmPhase::kWarm);
    store.SetWarm("api", "api-a", WarmPhase::kWarm);
    store.SetWarm("web", "web-a", WarmPhase::kWarm);
    store.ForgetWarm("web", "web-b");
  }
  StateStore store(dir_);
  auto warm = store.WarmInstances("web");
  ASSERT_EQ(warm.size(), 1u);
  EXPECT_EQ(warm.at("web-a"), WarmPhase::kWarm);
  EXPECT_EQ(store.WarmInstances("api").size(), 1u);
}

TEST_F(StateStoreTest, SchemaVersionOneGainsTheWarmTable) {
  // A version 1 file as the previous build wrote it.
  {
    StateStore store(dir_);
    store.SetLastEvent("web", 42);
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "state.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "DROP TABLE warm_instances; ALTER TABLE operations DROP COLUMN host;"
                           " PRAGMA user_version=1",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  StateStore store(dir_);
  EXPECT_EQ(store.LastEvent("web"), 42);
  store.SetWarm("web", "web-a", WarmPhase::kWarming);
  EXPECT_EQ(store.WarmInstances("web").size(), 1u);
}

TEST_F(StateStoreTest, OperationsKeepTheirHost) {
  {
    StateStore store(dir_);
    StoredOperation op{"op", "web", OperationKind::kLaunch,   "web-a",
                       "r",  At(1), OperationStatus::kPending};
    op.host = "mp-b";
    store.RecordOperation(op);
  }
  StateStore store(dir_);
  auto pending = store.PendingOperations("web");
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].host, "mp-b");
}

TEST_F(StateStoreTest, SchemaVersionTwoOperationsAreOnTheDefaultHost) {
  // A version 2 file (before pools spanned hosts) with an operation pending.
  {
    StateStore store(dir_);
    store.SetWarm("web", "web-w", WarmPhase::kWarm);
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "state.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "ALTER TABLE operations DROP COLUMN host;"
                           " INSERT INTO operations(id, pool, kind, instance, request_id,"
                           " started_at_ns, status) VALUES ('op', 'web', 0, 'web-a', 'r', 1, 0);"
                           " PRAGMA user_version=2",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  StateStore store(dir_);
  auto pending = store.PendingOperations("web");
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].instance, "web-a");
  EXPECT_EQ(pending[0].host, kDefaultHost);
  EXPECT_EQ(store.WarmInstances("web").size(), 1u);
}

}  // namespace
}  // namespace mps::scaling

namespace {

// Two plugin processes on one state_dir both scaled the same pools (issue
// 16): the second is refused, naming the holder; the lock goes with its
// holder (the kernel releases an flock when the process dies).
TEST(StateDirLock, ASecondHolderIsRefusedNamingTheFirst) {
  mps::testing::TempDir dir;
  std::optional<mps::scaling::StateDirLock> first;
  first.emplace(dir.path());
  try {
    mps::scaling::StateDirLock second(dir.path());
    FAIL() << "a second lock on the same state_dir was granted";
  } catch (const mps::scaling::StateStoreError& e) {
    std::string what = e.what();
    EXPECT_NE(
        what.find("is in use by another multipass-target (pid " + std::to_string(::getpid()) + ")"),
        std::string::npos)
        << what;
    EXPECT_NE(what.find(dir.path()), std::string::npos) << what;
  }
  first.reset();
  EXPECT_NO_THROW(mps::scaling::StateDirLock again(dir.path()));
}

TEST(StateDirLock, AnUnwritableStateDirIsNamed) {
  try {
    mps::scaling::StateDirLock lock("/proc/no-such-state-dir");
    FAIL();
  } catch (const mps::scaling::StateStoreError& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/no-such-state-dir"), std::string::npos);
  }
}

}  // namespace
