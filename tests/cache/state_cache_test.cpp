// The state cache actor with a real StateStore in a temp dir: what it
// answers, what it records before answering, and what a new process finds.
#include "cache/state_cache.h"

#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/resource.h>

#include <csignal>

#include <filesystem>
#include <fstream>
#include <thread>

#include "cache_client.h"
#include "contracts/codec.h"
#include "scaling/state_store.h"
#include "support/temp_dir.h"

using namespace mps;
using json = nlohmann::json;

namespace {

class StateCacheTest : public ::testing::Test {
 protected:
  mps::testing::CacheClient Spawn(std::shared_ptr<cache::StatusBoard> board = nullptr) {
    cache::CacheOptions o;
    o.state_dir = dir_path_override_.empty() ? dir_.path() : dir_path_override_;
    o.board = std::move(board);
    o.first_sync_wait = first_sync_wait_;
    std::uint64_t n = 0;
    o.random = [n]() mutable { return ++n * 7919; };
    auto actor = cache::SpawnStateCache(system_, o);
    spawned_.push_back(actor);
    return mps::testing::CacheClient(system_, actor);
  }

  // A held plan's timer keeps the cache alive: every cache is told to stop.
  void TearDown() override {
    for (auto& a : spawned_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  static contracts::multipass::ListReply Listing(json instances) {
    return contracts::Decode<contracts::multipass::ListReply>(
        json{{"instances", instances}, {"in_flight", json::array()}}, "test listing");
  }
  static contracts::nomad::PoolNodesReply Nodes(json nodes) {
    for (auto& n : nodes) {
      if (!n.contains("drain")) n["drain"] = false;
      if (!n.contains("eligible")) n["eligible"] = true;
    }
    return contracts::Decode<contracts::nomad::PoolNodesReply>(json{{"nodes", nodes}},
                                                               "test nodes");
  }

  void ObserveWorld(mps::testing::CacheClient& c, json instances, json nodes = json::array()) {
    cache::Observation o;
    o.pool = "web";
    for (const auto& p : c.Pools()) o.epoch = p.epoch;
    o.instances = Listing(instances);
    o.nodes = Nodes(nodes);
    c.Observe(o);
  }

  cache::PlanAnswer ScaleTo(mps::testing::CacheClient& c, std::int64_t target, std::string id) {
    cache::PlanQuery q;
    q.policy = policy_;
    q.request.target = target;
    q.request.request_id = std::move(id);
    return c.Plan(q);
  }

  std::chrono::milliseconds first_sync_wait_{200};
  std::string dir_path_override_;  // another state_dir than dir_
  std::vector<caf::actor> spawned_;
  mps::testing::TempDir dir_;
  caf::actor_system_config config_;
  caf::actor_system system_{config_};
  cache::ConfigMap policy_{{"node_class", "web"}, {"instance_image_name", "noble"}};
};

TEST_F(StateCacheTest, NotReadyAndNoPlanUntilObserved) {
  auto c = Spawn();
  auto s = c.Status(policy_);
  EXPECT_FALSE(s.synced);
  EXPECT_FALSE(s.ready);
  EXPECT_NE(s.meta["mps.not_ready"].find("reconciling"), std::string::npos);
  EXPECT_FALSE(ScaleTo(c, 1, "r0").synced);
  ObserveWorld(c, {{{"name", "web-a"}, {"state", "running"}}},
               {{{"id", "n1"}, {"instance", "web-a"}, {"status", "ready"}}});
  s = c.Status(policy_);
  EXPECT_TRUE(s.ready) << s.meta["mps.not_ready"];
  EXPECT_EQ(s.count, 1);
}

TEST_F(StateCacheTest, BadPolicyIsNamed) {
  auto c = Spawn();
  auto s = c.Status({{"instance_cpus", "two"}});
  EXPECT_NE(s.error.find("node_class"), std::string::npos) << s.error;
  EXPECT_NE(s.error.find("instance_cpus"), std::string::npos) << s.error;
}

TEST_F(StateCacheTest, PlanRecordsLaunchesBeforeAnsweringAndRefusesASecondScale) {
  auto c = Spawn();
  c.Status(policy_);
  ObserveWorld(c, json::array());
  auto a = ScaleTo(c, 2, "r1");
  ASSERT_TRUE(a.plan.ShouldExecute()) << a.plan.message;
  int launches = 0;
  for (const auto& action : a.plan.actions)
    launches += std::holds_alternative<scaling::LaunchAction>(action) ? 1 : 0;
  EXPECT_EQ(launches, 2);
  auto s = c.Status(policy_);
  EXPECT_EQ(s.count, 2);  // launches count from the moment they are planned
  EXPECT_FALSE(s.ready);
  // Persisted: another reader of the store sees both pending launches.
  EXPECT_EQ(scaling::StateStore(dir_.path()).PendingOperations("web").size(), 2u);
  auto second = ScaleTo(c, 3, "r2");
  EXPECT_EQ(second.plan.outcome, scaling::PlanOutcome::kRefused);
  EXPECT_NE(second.plan.message.find("r1"), std::string::npos) << second.plan.message;
}

TEST_F(StateCacheTest, ReportsAndFinishSetLastEventThatSurvivesARestart) {
  {
    auto c = Spawn();
    c.Status(policy_);
    ObserveWorld(c, json::array());
    auto a = ScaleTo(c, 1, "r1");
    ASSERT_TRUE(a.plan.ShouldExecute());
    const auto& name = std::get<scaling::LaunchAction>(a.plan.actions.at(0)).name;
    cache::OpReport r;
    r.pool = "web";
    r.kind = scaling::OperationKind::kLaunch;
    r.instance = name;
    r.request_id = "r1";
    r.phase = cache::OpPhase::kSucceeded;
    c.Report(r);
    c.Finish({"web", "r1", true, true, "done"});
    auto view = c.View("web");
    EXPECT_EQ(view["pools"][0]["count"], 1);
    EXPECT_FALSE(view["pools"][0]["last_event_ns"].is_null());
    EXPECT_TRUE(view["pools"][0]["scale_request"].is_null());
  }
  auto again = Spawn();
  auto s = again.Status(policy_);
  EXPECT_TRUE(s.meta.contains("nomad_autoscaler.last_event"));
  EXPECT_TRUE(scaling::StateStore(dir_.path()).PendingOperations("web").empty());
}

TEST_F(StateCacheTest, ANewProcessResumesWhatTheOldOneLeftPending) {
  std::string name;
  {
    auto c = Spawn();
    c.Status(policy_);
    ObserveWorld(c, json::array());
    auto a = ScaleTo(c, 1, "r1");
    name = std::get<scaling::LaunchAction>(a.plan.actions.at(0)).name;
    // ... and the process dies here.
  }
  auto c = Spawn();
  auto s = c.Status(policy_);
  EXPECT_EQ(s.count, 1);  // the pending launch is still capacity on its way
  EXPECT_TRUE(c.TakeUndriven("web").operations.empty());  // not before reconciling
  ObserveWorld(c, json::array());
  auto work = c.TakeUndriven("web");
  ASSERT_EQ(work.operations.size(), 1u);
  EXPECT_EQ(work.operations[0].instance, name);
  EXPECT_EQ(work.operations[0].request_id, "r1");
  EXPECT_TRUE(c.TakeUndriven("web").operations.empty());  // handed out once
  // Resuming holds the pool like a Scale would.
  EXPECT_EQ(ScaleTo(c, 3, "r2").plan.outcome, scaling::PlanOutcome::kRefused);
}

// Issue 16, defect 2: after a restart with a lower max_instances the plugin
// resumed every pending launch of the old request.
TEST_F(StateCacheTest, AResumedPlanRespectsTheCurrentMaxInstances) {
  {
    auto c = Spawn();
    c.Status(policy_);
    ObserveWorld(c, json::array());
    ASSERT_TRUE(ScaleTo(c, 6, "r1").plan.ShouldExecute());
    // ... and the process dies here; it comes back with max_instances 2.
  }
  policy_["max_instances"] = "2";
  auto c = Spawn();
  c.Status(policy_);
  ObserveWorld(c, json::array());
  auto work = c.TakeUndriven("web");
  EXPECT_EQ(work.operations.size(), 2u);
  EXPECT_EQ(scaling::StateStore(dir_.path()).PendingOperations("web").size(), 2u);
  EXPECT_EQ(c.Status(policy_).count, 2);
}

// A node list that arrives before the listing that brings its instance still
// attaches (seen as "running, its Nomad node has not registered yet" for
// minutes: the blocking query answers again only when Nomad changes).
TEST_F(StateCacheTest, ANodeSeenBeforeItsInstanceIsAttachedWhenTheInstanceIsListed) {
  auto c = Spawn();
  c.Status(policy_);
  cache::Observation nodes;
  nodes.pool = "web";
  for (const auto& p : c.Pools()) nodes.epoch = p.epoch;
  nodes.nodes = Nodes({{{"id", "n1"}, {"instance", "web-a"}, {"status", "ready"}}});
  c.Observe(nodes);
  cache::Observation listing;
  listing.pool = "web";
  for (const auto& p : c.Pools()) listing.epoch = p.epoch;
  listing.instances = Listing({{{"name", "web-a"}, {"state", "running"}}});
  c.Observe(listing);
  auto s = c.Status(policy_);
  EXPECT_TRUE(s.ready) << s.meta["mps.not_ready"];
  EXPECT_EQ(s.count, 1);
}

TEST_F(StateCacheTest, FailedLaunchBacksOffAndUnreachableNomadIsNotReady) {
  auto c = Spawn();
  c.Status(policy_);
  ObserveWorld(c, json::array());
  auto a = ScaleTo(c, 1, "r1");
  cache::OpReport r;
  r.pool = "web";
  r.kind = scaling::OperationKind::kLaunch;
  r.instance = std::get<scaling::LaunchAction>(a.plan.actions.at(0)).name;
  r.request_id = "r1";
  r.phase = cache::OpPhase::kFailed;
  r.detail = "image not found";
  c.Report(r);
  c.Finish({"web", "r1", false, false, "failed"});
  auto view = c.View("");
  EXPECT_EQ(view["pools"][0]["launch_failures"]["consecutive"], 1);
  EXPECT_EQ(ScaleTo(c, 1, "r2").plan.outcome, scaling::PlanOutcome::kBackingOff);

  cache::Observation o;
  o.pool = "web";
  o.epoch = c.Pools().at(0).epoch;
  o.instances = Listing(json::array());
  o.nomad_error = "Nomad at http://127.0.0.1:1: connection refused";
  c.Observe(o);
  auto s = c.Status(policy_);
  EXPECT_FALSE(s.ready);
  EXPECT_NE(s.meta["mps.not_ready"].find("connection refused"), std::string::npos);
}

}  // namespace

namespace {

// A node list from a blocking query begun before our purge still shows the
// purged node (down, its VM gone): it must not become an orphan to purge a
// second time (found as a flaky event count in the scale end-to-end test).
TEST_F(StateCacheTest, ANodeListThatPredatesAPurgeDoesNotPurgeTheNodeAgain) {
  auto c = Spawn();
  c.Status(policy_);
  json down{{"id", "n1"}, {"instance", "web-a"}, {"status", "down"}};
  ObserveWorld(c, json::array(), {down});  // web-a deleted, its node down: an orphan
  auto policy = policy_;
  policy["node_purge"] = "true";
  cache::PlanQuery q;
  q.policy = policy;
  q.reconcile = true;
  auto purges = [](const cache::PlanAnswer& a) {
    std::size_t n = 0;
    for (const auto& action : a.plan.actions)
      if (const auto* p = std::get_if<scaling::PurgeNodesAction>(&action)) n += p->node_ids.size();
    return n;
  };
  auto first = c.Plan(q);
  ASSERT_EQ(purges(first), 1u);
  cache::ScaleFinish done;  // the reconciliation ran: the pool takes the next plan
  done.pool = "web";
  done.request_id = first.request_id;
  done.ok = true;
  c.Finish(done);
  caf::scoped_actor self{system_};
  bool handled = false;  // asked, so the cache has handled it before the next list
  self->request(c.actor(), std::chrono::seconds(5), cache::purged_atom::value,
                cache::NodesPurged{"web", {"n1"}})
      .receive([&] { handled = true; }, [](caf::error&) {});
  ASSERT_TRUE(handled);
  ObserveWorld(c, json::array(), {down});  // the stale list arrives after the purge
  EXPECT_EQ(purges(c.Plan(q)), 0u);
}

TEST_F(StateCacheTest, AListingThatRacedADeleteIsNotApplied) {
  auto c = Spawn();
  c.Status(policy_);
  json a{{"name", "web-a"}, {"state", "running"}};
  json node{{"id", "n1"}, {"instance", "web-a"}, {"status", "ready"}};
  ObserveWorld(c, {a}, {node});
  ASSERT_EQ(c.Status(policy_).count, 1);
  auto before = c.Pools().at(0).epoch;  // the watcher starts listing here...
  cache::OpReport r;
  r.pool = "web";
  r.kind = scaling::OperationKind::kDelete;
  r.instance = "web-a";
  r.phase = cache::OpPhase::kSucceeded;
  c.Report(r);  // ...the executor deletes web-a meanwhile...
  cache::Observation stale;
  stale.pool = "web";
  stale.epoch = before;  // ...and the listing, taken before the delete, arrives
  stale.instances = Listing({a});
  stale.nodes = Nodes({node});
  c.Observe(stale);
  EXPECT_EQ(c.Status(policy_).count, 0);
}

TEST_F(StateCacheTest, StatusIsReadFromTheBoardTheActorPosts) {
  auto board = std::make_shared<cache::StatusBoard>();
  auto c = Spawn(board);
  EXPECT_FALSE(board->Read(policy_, std::chrono::seconds(3)));  // nothing posted yet
  EXPECT_FALSE(c.Status(policy_).ready);  // asked the actor, which registers and posts
  ObserveWorld(c, {{{"name", "web-a"}, {"state", "running"}}},
               {{{"id", "n1"}, {"instance", "web-a"}, {"status", "ready"}}});
  auto posted = board->Read(policy_, std::chrono::seconds(3));
  ASSERT_TRUE(posted);
  EXPECT_TRUE(posted->ready);
  EXPECT_EQ(posted->count, 1);
  EXPECT_EQ(c.Status(policy_).count, 1);
  // Another policy map is not answered from this pool's entry.
  auto other = policy_;
  other["max_instances"] = "3";
  EXPECT_FALSE(board->Read(other, std::chrono::seconds(3)));
  // A stale entry is not used.
  EXPECT_FALSE(board->Read(policy_, std::chrono::nanoseconds(0)));
}

TEST_F(StateCacheTest, DryRunPlansAndRecordsNothing) {
  auto c = Spawn();
  policy_["dry-run"] = "true";
  c.Status(policy_);
  ObserveWorld(c, json::array());
  auto a = ScaleTo(c, 3, "r1");
  EXPECT_TRUE(a.plan.dry_run);
  EXPECT_EQ(a.plan.outcome, scaling::PlanOutcome::kExecute);  // what it would do...
  EXPECT_FALSE(a.plan.ShouldExecute());                       // ...and does not
  EXPECT_EQ(c.Status(policy_).count, 0);
  EXPECT_TRUE(scaling::StateStore(dir_.path()).PendingOperations("web").empty());
  // A dry run holds nothing: a real Scale right after is not refused.
  policy_.erase("dry-run");
  EXPECT_TRUE(ScaleTo(c, 1, "r2").plan.ShouldExecute());
}

}  // namespace

namespace {

// A Plan for a pool never observed is held by the cache and answered as soon
// as the first observation arrives: the caller does not poll.
TEST_F(StateCacheTest, APlanWaitsForTheFirstObservationInsteadOfPolling) {
  first_sync_wait_ = std::chrono::minutes(5);  // longer than the test's timeout
  auto c = Spawn();
  cache::PlanQuery q;
  q.policy = policy_;
  q.request.target = 1;
  q.request.request_id = "held";
  std::optional<cache::PlanAnswer> answer;
  std::thread asker([&] {
    mps::testing::CacheClient other(system_, c.actor());
    answer = other.Plan(q);
  });
  // The Plan registered the pool (it is held now, unanswered).
  while (c.Pools().empty()) std::this_thread::yield();
  ObserveWorld(c, json::array());
  asker.join();
  ASSERT_TRUE(answer);
  EXPECT_TRUE(answer->synced);
  EXPECT_TRUE(answer->plan.ShouldExecute()) << answer->plan.message;
}

}  // namespace

namespace {

// cloud_init_user_data_path at /dev/zero OOM-killed the plugin at launch time
// (issue 16): the file is checked when the policy is seen, naming the key.
TEST_F(StateCacheTest, AnUnusableCloudInitFileIsRefusedAtStatusTime) {
  auto c = Spawn();
  auto zero = policy_;
  zero["cloud_init_user_data_path"] = "/dev/zero";
  auto s = c.Status(zero);
  EXPECT_NE(s.error.find("cloud_init_user_data_path \"/dev/zero\": is not a regular file"),
            std::string::npos)
      << s.error;
  auto big_path = dir_.path() + "/big.yaml";
  {
    std::ofstream big(big_path);
    big.seekp(2 << 20);
    big << "x";
  }
  auto big = policy_;
  big["cloud_init_user_data_path"] = big_path;
  s = c.Status(big);
  EXPECT_NE(s.error.find("at most 524288 are accepted"), std::string::npos) << s.error;
  auto missing = policy_;
  missing["cloud_init_user_data_path"] = dir_.path() + "/missing.yaml";
  EXPECT_NE(c.Status(missing).error.find("cannot be read"), std::string::npos);
  // Nothing was planned for any of them.
  EXPECT_TRUE(c.Pools().empty());
}

}  // namespace

namespace {

// Runs `sql` on state.db through a connection of its own (another process's view).
void ExecOnStore(const std::string& dir, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/state.db").c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 2000);
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

// Caps the size of files this process writes until Lift() or destruction.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    rlimit capped = saved_;
    capped.rlim_cur = bytes;
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &capped), 0);
  }
  ~FileSizeLimit() { Lift(); }
  void Lift() { ::setrlimit(RLIMIT_FSIZE, &saved_); }

 private:
  rlimit saved_{};
};

}  // namespace

// Issue 16, defect 3: with state_dir on a full filesystem the cache died for
// good and every call answered request_receiver_down, naming nothing. Now the
// Scale is refused naming state_dir, nothing is recorded or planned, Status
// is answered (not ready, with the reason) and all is well once space returns.
TEST_F(StateCacheTest, AFullDiskRefusesTheScaleNamingStateDirAndRecoversWhenSpaceReturns) {
  auto c = Spawn();
  c.Status(policy_);
  ObserveWorld(c, json::array());
  // The store's files cannot grow, as on a full filesystem: the log is
  // emptied, then this process may not extend any file (RLIMIT_FSIZE; SIGXFSZ
  // ignored, so the write fails with EFBIG instead of killing the test).
  ExecOnStore(dir_.path(), "PRAGMA wal_checkpoint(TRUNCATE);");
  FileSizeLimit full(1024);
  auto refused = ScaleTo(c, 3, "r1");
  EXPECT_TRUE(refused.store_failed);
  EXPECT_NE(refused.error.find("state_dir " + dir_.path()), std::string::npos) << refused.error;
  EXPECT_NE(refused.error.find("nothing was done"), std::string::npos) << refused.error;
  EXPECT_FALSE(refused.plan.ShouldExecute() && refused.error.empty());
  EXPECT_TRUE(scaling::StateStore(dir_.path()).PendingOperations("web").empty());
  auto s = c.Status(policy_);
  EXPECT_FALSE(s.ready);
  EXPECT_EQ(s.count, 0);  // nothing counted from a plan that was not recorded
  EXPECT_NE(s.meta["mps.not_ready"].find("state_dir"), std::string::npos)
      << s.meta["mps.not_ready"];
  // Space returns: the next observation's probe finds the store writable.
  full.Lift();
  ObserveWorld(c, json::array());
  s = c.Status(policy_);
  EXPECT_TRUE(s.ready) << s.meta["mps.not_ready"];
  auto planned = ScaleTo(c, 3, "r2");
  EXPECT_TRUE(planned.error.empty()) << planned.error;
  EXPECT_TRUE(planned.plan.ShouldExecute()) << planned.plan.message;
  EXPECT_EQ(scaling::StateStore(dir_.path()).PendingOperations("web").size(), 3u);
}

// Issue 16, defect 9: state.db removed (or replaced) while the plugin ran was
// not noticed, and what was written after went nowhere.
TEST_F(StateCacheTest, AStoreRemovedOrReplacedWhileRunningRefusesToAct) {
  for (bool replace : {false, true}) {
    SCOPED_TRACE(replace ? "replaced" : "removed");
    mps::testing::TempDir dir;
    dir_path_override_ = dir.path();
    auto c = Spawn();
    c.Status(policy_);
    ObserveWorld(c, json::array());
    for (const char* f : {"state.db", "state.db-wal", "state.db-shm"})
      std::filesystem::remove(dir / f);
    if (replace) {
      scaling::StateStore other(dir.path());
    }
    auto a = ScaleTo(c, 2, "r1");
    EXPECT_TRUE(a.store_failed);
    EXPECT_NE(a.error.find(replace ? "replaced" : "removed"), std::string::npos) << a.error;
    auto s = c.Status(policy_);
    EXPECT_FALSE(s.ready);
    EXPECT_EQ(s.count, 0);
    caf::anon_send_exit(c.actor(), caf::exit_reason::user_shutdown);
    dir_path_override_.clear();
  }
}
