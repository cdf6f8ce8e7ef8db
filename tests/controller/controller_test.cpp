// The pool controller and the pool watcher against fake peers on inproc://
// and a real state cache: every Scale ends with an outcome, whatever the
// peers do, and the pool takes the next Scale afterwards.
#include "controller/pool_controller.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "bus/client.h"
#include "cache/state_cache.h"
#include "controller_harness.h"
#include "fake_peers.h"
#include "scaling/pool_status.h"
#include "scaling/state_store.h"
#include "support/temp_dir.h"
#include "watcher/pool_watcher.h"

namespace mps {
namespace {

using controller::ScaleStatus;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace mp = contracts::multipass;
namespace nm = contracts::nomad;

std::atomic<int> world_number{0};

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto n = std::to_string(world_number++);
    multipass_ = std::make_unique<testing::FakeMultipass>(context_, "inproc://fake-mp-" + n);
    nomad_ = std::make_unique<testing::FakeNomad>(context_, "inproc://fake-nomad-" + n);
    links_.multipass = multipass_->Client(context_);
    links_.multipass_where = "fake multipass";
    links_.nomad = nomad_->Client(context_);
    links_.nomad_where = "fake Nomad";
  }

  void TearDown() override { StopAll(); }

  void StopAll() {
    if (controller_) controller::StopPoolController(system_, controller_, 1s);
    controller_ = nullptr;
    if (watcher_) caf::anon_send_exit(watcher_, caf::exit_reason::user_shutdown);
    watcher_ = nullptr;
    links_.multipass->Shutdown();
    links_.nomad->Shutdown();
    if (cache_) caf::anon_send_exit(cache_, caf::exit_reason::user_shutdown);
    cache_ = nullptr;
  }

  void Start(caf::actor cache = {}) {
    cache::CacheOptions co;
    co.state_dir = dir_.path();
    co.first_sync_wait = 2s;
    co.board = board_;
    cache_ = cache ? cache : cache::SpawnStateCache(system_, co);
    controller_ =
        controller::SpawnPoolController(system_, testing::FastControllerOptions(links_, cache_));
  }

  void StartWatcher() {
    watcher_ = watcher::SpawnPoolWatcher(system_, testing::FastWatcherOptions(), links_, cache_,
                                         controller_);
  }

  // What the watcher would report: the fakes' world as it is now (after the
  // autoscaler's first Status made the pool known).
  void Observe() {
    Status();
    cache::Observation o;
    o.pool = "web";
    caf::scoped_actor self{system_};
    self->request(cache_, 5s, cache::pools_atom::value)
        .receive(
            [&](cache::PoolTargets& t) {
              for (const auto& p : t.pools)
                if (p.pool == "web") o.epoch = p.epoch;
            },
            [](caf::error&) {});
    o.instances = multipass_->Listing();
    o.nodes = testing::FakeMultipass::ReadyNodesOf(*o.instances);
    self->send(cache_, cache::observe_atom::value, o);
  }

  cache::StatusAnswer Status() { return testing::AskStatus(system_, cache_, policy_); }

  controller::ScaleOutcome Scale(std::int64_t target, std::string id) {
    return testing::RunScaleTo(system_, controller_, policy_, target, std::move(id));
  }

  std::future<controller::ScaleOutcome> ScaleAsync(std::int64_t target, std::string id) {
    return std::async(std::launch::async, [this, target, id] { return Scale(target, id); });
  }

  // Waits until `done` holds, checking after each observation.
  template <class F>
  bool Eventually(F done, std::chrono::milliseconds limit = 10s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

  testing::TempDir dir_;
  caf::actor_system_config config_;
  caf::actor_system system_{config_};
  bus::BusContext context_;
  std::unique_ptr<testing::FakeMultipass> multipass_;
  std::unique_ptr<testing::FakeNomad> nomad_;
  controller::BusLinks links_;
  std::shared_ptr<cache::StatusBoard> board_ = std::make_shared<cache::StatusBoard>();
  caf::actor cache_;
  caf::actor controller_;
  caf::actor watcher_;
  cache::ConfigMap policy_{
      {"node_class", "web"},     {"instance_image_name", "noble"}, {"max_parallel_launches", "2"},
      {"startup_timeout", "1s"}, {"image_download_timeout", "0s"}, {"node_drain_deadline", "1s"},
      {"node_purge", "true"}};
};

// A cache that takes every message, counts it and never answers.
caf::actor MuteCache(caf::actor_system& system, std::shared_ptr<std::atomic<int>> received) {
  return system.spawn([received](caf::event_based_actor* self) -> caf::behavior {
    self->set_default_handler(
        [received](caf::scheduled_actor*, caf::message_view&) -> caf::result<caf::message> {
          ++*received;
          return caf::delegated<caf::message>();
        });
    return {[](caf::unit_t) {}};
  });
}

TEST_F(ControllerTest, ScaleOutLaunchesInParallelWithinTheLimit) {
  Start();
  Observe();
  multipass_->Set("multipass.launch", testing::Answering::kHold);
  auto scale = ScaleAsync(4, "r1");
  ASSERT_TRUE(multipass_->WaitHeld("multipass.launch", 2));
  multipass_->Release("multipass.launch", /*keep_holding=*/true);  // the next two are held too
  ASSERT_TRUE(multipass_->WaitHeld("multipass.launch", 2));
  multipass_->Release("multipass.launch");
  auto outcome = scale.get();
  EXPECT_EQ(outcome.status, ScaleStatus::kDone) << outcome.message;
  EXPECT_EQ(multipass_->count("multipass.launch"), 4);
  EXPECT_EQ(multipass_->max_in_flight("multipass.launch"), 2);
  EXPECT_EQ(multipass_->instances().size(), 4u);
  EXPECT_EQ(Status().count, 4);
}

TEST_F(ControllerTest, AFailedLaunchIsCleanedUpNamedAndThePoolTakesTheNextScale) {
  Start();
  Observe();
  multipass_->FailWith("multipass.launch", contracts::AppCode::kImageNotFound, "no such image");
  auto outcome = Scale(1, "r1");
  EXPECT_EQ(outcome.status, ScaleStatus::kFailed);
  EXPECT_NE(outcome.message.find("no such image"), std::string::npos) << outcome.message;
  EXPECT_NE(outcome.message.find("web-"), std::string::npos) << outcome.message;
  EXPECT_EQ(multipass_->count("multipass.info"), 1);  // looked for a leftover
  // Not stuck "in progress": the next Scale is planned (it backs off after a failure).
  multipass_->ClearFailure("multipass.launch");
  auto next = Scale(1, "r2");
  EXPECT_NE(next.status, ScaleStatus::kRefused) << next.message;
  EXPECT_NE(next.message.find("back"), std::string::npos) << next.message;
}

TEST_F(ControllerTest, ALeftoverOfAFailedLaunchIsDeleted) {
  Start();
  Observe();
  // The daemon made the instance and then failed it.
  multipass_->FailWith("multipass.launch", contracts::AppCode::kLaunchTimeout, "timed out");
  multipass_->Set("multipass.launch", testing::Answering::kHold);
  auto scale = ScaleAsync(1, "r1");
  ASSERT_TRUE(multipass_->WaitHeld("multipass.launch", 1));
  multipass_->Put("web-left", "starting");  // not the launched name: only that is cleaned up
  multipass_->Release("multipass.launch");
  auto outcome = scale.get();
  EXPECT_EQ(outcome.status, ScaleStatus::kFailed);
  EXPECT_EQ(multipass_->count("multipass.delete"), 0);  // nothing of that name was left
  EXPECT_TRUE(multipass_->instances().contains("web-left"));
}

TEST_F(ControllerTest, ALaunchThatNeverAnswersCostsItsDeadlineAndIsResolvedLater) {
  Start();
  Observe();
  multipass_->Set("multipass.launch", testing::Answering::kNever);
  auto outcome = Scale(1, "r1");  // deadline: 2 x startup_timeout 1 s + 300 ms
  EXPECT_EQ(outcome.status, ScaleStatus::kUnavailable) << outcome.message;
  EXPECT_NE(outcome.message.find("outcome unknown"), std::string::npos) << outcome.message;
  // The launch stays recorded for the next listing to resolve.
  EXPECT_EQ(scaling::StateStore(dir_.path()).PendingOperations("web").size(), 1u);
  // The pool is free again, and the unresolved launch still counts: 1 -> 2
  // launches one more, not two.
  auto next = Scale(2, "r2");
  EXPECT_EQ(next.status, ScaleStatus::kUnavailable) << next.message;
  EXPECT_EQ(multipass_->count("multipass.launch"), 2);
}

// Issue 16, defect 5: multipassd restarting mid-launch is not a launch
// failure (the daemon may have gone on with it): Unavailable, no backoff,
// and the launches stay recorded for the next listing to resolve.
TEST_F(ControllerTest, LaunchesCutOffByAnUnreachableDaemonAreUnknownNotFailed) {
  Start();
  Observe();
  multipass_->FailWith("multipass.launch", contracts::AppCode::kUnreachable,
                       "multipassd: socket closed");
  auto outcome = Scale(3, "r1");
  EXPECT_EQ(outcome.status, ScaleStatus::kUnavailable) << outcome.message;
  EXPECT_NE(outcome.message.find("outcome unknown"), std::string::npos) << outcome.message;
  EXPECT_EQ(scaling::StateStore(dir_.path()).PendingOperations("web").size(), 3u);
  EXPECT_EQ(multipass_->count("multipass.info"), 0);  // no clean-up of what may be running
}

// Issue 16, defect 4: after hostd restarted, the retried launch met the
// instance its first attempt made ("already exists") and Scale blocked for
// minutes to answer "outcome unknown". Now that instance is followed until it runs.
TEST_F(ControllerTest, ALaunchRetriedAfterAHostdRestartFollowsTheInstanceItsFirstAttemptMade) {
  Start();
  Observe();
  multipass_->leftover_state = "starting";
  multipass_->FailWith("multipass.launch", contracts::AppCode::kNameTaken,
                       "instance already exists");
  auto scale = ScaleAsync(1, "r1");
  ASSERT_TRUE(Eventually([&] { return multipass_->instances().size() == 1; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(scale.wait_for(0s), std::future_status::timeout);  // still starting: waits
  multipass_->Put(multipass_->instances().begin()->first, "running");
  auto outcome = scale.get();
  EXPECT_EQ(outcome.status, ScaleStatus::kDone) << outcome.message;
  EXPECT_GE(multipass_->count("multipass.info"), 1);
  EXPECT_TRUE(scaling::StateStore(dir_.path()).PendingOperations("web").empty());
}

// Issue 16, defect 2: a 30,000 request sent about 3,800 failing launches to
// multipassd. Once the first launches all fail, the rest are not attempted.
TEST_F(ControllerTest, AScaleWhoseLaunchesKeepFailingStopsEarly) {
  Start();
  Observe();
  multipass_->FailWith("multipass.launch", contracts::AppCode::kImageNotFound, "no such image");
  auto outcome = Scale(10, "r1");  // max_instances
  EXPECT_EQ(outcome.status, ScaleStatus::kFailed) << outcome.message;
  EXPECT_NE(outcome.message.find("abandoned"), std::string::npos) << outcome.message;
  EXPECT_GE(multipass_->count("multipass.launch"), 3);
  EXPECT_LE(multipass_->count("multipass.launch"), 5);
  // Nothing of the request is left to resume, and it counts as one failure.
  EXPECT_TRUE(scaling::StateStore(dir_.path()).PendingOperations("web").empty());
  EXPECT_TRUE(Eventually([&] { return Status().count == 0; }));
}

TEST_F(ControllerTest, ScaleInDrainsDeletesAndPurges) {
  for (auto n : {"web-a", "web-b", "web-c"}) {
    multipass_->Put(n, "running");
    nomad_->PutNode(n);
  }
  Start();
  Observe();
  ASSERT_EQ(Status().count, 3);
  auto outcome = Scale(1, "r1");
  EXPECT_EQ(outcome.status, ScaleStatus::kDone) << outcome.message;
  EXPECT_EQ(multipass_->instances().size(), 1u);
  EXPECT_EQ(nomad_->drained().size(), 2u);
  EXPECT_EQ(nomad_->purged(), nomad_->drained());
}

TEST_F(ControllerTest, ANodeThatDoesNotDrainKeepsItsInstance) {
  for (auto n : {"web-a", "web-b"}) {
    multipass_->Put(n, "running");
    nomad_->PutNode(n);
  }
  nomad_->undrainable = {"node-web-a", "node-web-b"};
  Start();
  Observe();
  auto outcome = Scale(1, "r1");
  EXPECT_EQ(outcome.status, ScaleStatus::kFailed);
  EXPECT_NE(outcome.message.find("did not drain"), std::string::npos) << outcome.message;
  EXPECT_EQ(multipass_->instances().size(), 2u);
  EXPECT_EQ(nomad_->count("nomad.mark_eligible"), 1);
}

TEST_F(ControllerTest, ADrainThatTimesOutDeletesNothingAndFreesThePool) {
  for (auto n : {"web-a", "web-b"}) {
    multipass_->Put(n, "running");
    nomad_->PutNode(n);
  }
  nomad_->Set("nomad.drain", testing::Answering::kNever);
  Start();
  Observe();
  auto outcome = Scale(1, "r1");  // drain deadline 1 s + 300 ms grace
  EXPECT_EQ(outcome.status, ScaleStatus::kUnavailable) << outcome.message;
  EXPECT_NE(outcome.message.find("no instance was deleted"), std::string::npos) << outcome.message;
  EXPECT_EQ(multipass_->instances().size(), 2u);
  // Recorded for resumption: the drain is still an operation of the pool.
  EXPECT_EQ(scaling::StateStore(dir_.path()).PendingOperations("web").size(), 1u);
}

TEST_F(ControllerTest, AScaleDuringAnotherIsRefusedNamingIt) {
  Start();
  Observe();
  multipass_->Set("multipass.launch", testing::Answering::kHold);
  auto first = ScaleAsync(2, "first");
  ASSERT_TRUE(multipass_->WaitHeld("multipass.launch", 2));
  auto second = Scale(3, "second");
  EXPECT_EQ(second.status, ScaleStatus::kRefused);
  EXPECT_NE(second.message.find("first"), std::string::npos) << second.message;
  multipass_->Release("multipass.launch");
  EXPECT_EQ(first.get().status, ScaleStatus::kDone);
}

TEST_F(ControllerTest, ASlowCacheFailsTheScaleWithoutChangingAnything) {
  auto mute = MuteCache(system_, std::make_shared<std::atomic<int>>(0));
  Start(mute);
  auto outcome = Scale(2, "r1");
  EXPECT_EQ(outcome.status, ScaleStatus::kUnavailable) << outcome.message;
  EXPECT_NE(outcome.message.find("nothing was changed"), std::string::npos) << outcome.message;
  EXPECT_EQ(multipass_->count("multipass.launch"), 0);
  caf::anon_send_exit(mute, caf::exit_reason::user_shutdown);
}

TEST_F(ControllerTest, StopInTheMiddleOfALaunchAnswersAtOnce) {
  Start();
  Observe();
  multipass_->Set("multipass.launch", testing::Answering::kHold);
  auto scale = ScaleAsync(1, "r1");
  ASSERT_TRUE(multipass_->WaitHeld("multipass.launch", 1));
  controller::StopPoolController(system_, controller_, 1s);
  ASSERT_EQ(scale.wait_for(1s), std::future_status::ready);
  auto outcome = scale.get();
  EXPECT_EQ(outcome.status, ScaleStatus::kStopping);
  // The launch stays recorded: the next process resumes it.
  EXPECT_EQ(scaling::StateStore(dir_.path()).PendingOperations("web").size(), 1u);
  controller_ = nullptr;
}

TEST_F(ControllerTest, StopWhileThePlanIsAwaitedAnswersAtOnce) {
  auto received = std::make_shared<std::atomic<int>>(0);
  auto mute = MuteCache(system_, received);
  Start(mute);
  auto scale = ScaleAsync(2, "r1");
  // The Scale waits for its plan: a stop now must not wait for the cache's deadline.
  ASSERT_TRUE(Eventually([&] { return received->load() > 0; }));
  controller::StopPoolController(system_, controller_, 1s);
  ASSERT_EQ(scale.wait_for(1s), std::future_status::ready);
  EXPECT_EQ(scale.get().status, ScaleStatus::kStopping);
  EXPECT_EQ(multipass_->count("multipass.launch"), 0);
  controller_ = nullptr;
  caf::anon_send_exit(mute, caf::exit_reason::user_shutdown);
}

TEST_F(ControllerTest, StopInTheMiddleOfADrainAnswersAtOnce) {
  for (auto n : {"web-a", "web-b"}) {
    multipass_->Put(n, "running");
    nomad_->PutNode(n);
  }
  nomad_->Set("nomad.drain", testing::Answering::kHold);
  Start();
  Observe();
  auto scale = ScaleAsync(1, "r1");
  ASSERT_TRUE(nomad_->WaitHeld("nomad.drain", 1));
  controller::StopPoolController(system_, controller_, 1s);
  ASSERT_EQ(scale.wait_for(1s), std::future_status::ready);
  EXPECT_EQ(scale.get().status, ScaleStatus::kStopping);
  controller_ = nullptr;
}

TEST_F(ControllerTest, AControllerThatDiesAnswersItsWaitingScale) {
  Start();
  Observe();
  multipass_->Set("multipass.launch", testing::Answering::kHold);
  auto scale = ScaleAsync(1, "r1");
  ASSERT_TRUE(multipass_->WaitHeld("multipass.launch", 1));
  caf::anon_send_exit(controller_, caf::exit_reason::kill);
  ASSERT_EQ(scale.wait_for(2s), std::future_status::ready);
  EXPECT_EQ(scale.get().status, ScaleStatus::kStopping);
  controller_ = nullptr;
}

TEST_F(ControllerTest, WatcherObservesAndTheControllerResumesAnInterruptedLaunch) {
  // A first controller plans a launch and stops mid-launch (as kill -9 would).
  Start();
  Observe();
  multipass_->Set("multipass.launch", testing::Answering::kHold);
  auto scale = ScaleAsync(1, "r1");
  ASSERT_TRUE(multipass_->WaitHeld("multipass.launch", 1));
  StopAll();
  scale.get();
  // The daemon finishes the launch while no plugin runs.
  multipass_->Release("multipass.launch");
  ASSERT_TRUE(Eventually([&] { return multipass_->instances().size() == 1; }));

  // A new process: cache restored from the store, watcher observes, controller resumes.
  links_.multipass = multipass_->Client(context_);
  links_.nomad = nomad_->Client(context_);
  Start();
  Status();  // the autoscaler asks: the pool is known again
  StartWatcher();
  ASSERT_TRUE(Eventually([&] {
    return scaling::StateStore(dir_.path()).PendingOperations("web").empty() &&
           multipass_->instances().size() == 1;
  })) << "pending: "
      << scaling::StateStore(dir_.path()).PendingOperations("web").size();
  EXPECT_EQ(Status().count, 1);
}

// The fakes as one world for warm pools: a launched or started VM's node is
// ready (unless the test says otherwise), a stopped or deleted VM's node is
// down.
class WarmPoolTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    policy_["warm_pool_size"] = "2";
    policy_["max_instances"] = "4";
    policy_["node_registration_timeout"] = "5s";
    multipass_->OnChange([this](const std::string& type, const std::string& name) {
      if (type == mp::LaunchRequest::kType && !nodes_register) return;
      if (type == mp::StartRequest::kType && !nodes_come_back) return;
      bool up = type == mp::LaunchRequest::kType || type == mp::StartRequest::kType;
      nomad_->PutNode(name, up ? "ready" : "down");
    });
  }

  // The pool becomes known (the autoscaler's first Status) and is watched.
  void StartWatched() {
    Start();
    Status();
    StartWatcher();
  }

  std::vector<std::string> Listed(const char* key) {
    auto meta = Status().meta;
    std::vector<std::string> names;
    auto it = meta.find(key);
    if (it == meta.end()) return names;
    std::string list = it->second;
    for (std::size_t at = 0; at <= list.size();) {
      auto comma = list.find(',', at);
      if (comma == std::string::npos) comma = list.size();
      names.push_back(list.substr(at, comma - at));
      at = comma + 1;
    }
    return names;
  }
  std::vector<std::string> Warm() { return Listed(scaling::kMetaWarm); }
  std::vector<std::string> Warming() { return Listed(scaling::kMetaWarming); }
  bool WarmPoolIs(std::size_t n) { return Warm().size() == n && Warming().empty(); }

  std::string NameOf(const bus::Envelope& launch) {
    return contracts::Decode<mp::LaunchRequest>(launch.payload, launch.type).name;
  }

  std::atomic<bool> nodes_register{true};
  std::atomic<bool> nodes_come_back{true};
};

TEST_F(WarmPoolTest, IsPreparedInTheBackgroundAndNeverCounted) {
  StartWatched();
  ASSERT_TRUE(Eventually([&] { return WarmPoolIs(2); })) << Status().meta[scaling::kMetaNotReady];
  for (const auto& name : Warm()) {
    EXPECT_EQ(multipass_->instances()[name], "stopped") << name;
    EXPECT_EQ(nomad_->eligible(name), std::optional<bool>(false)) << name;
  }
  auto status = Status();
  EXPECT_EQ(status.count, 0);
  EXPECT_TRUE(status.ready) << status.meta[scaling::kMetaNotReady];
  EXPECT_EQ(multipass_->count("multipass.launch"), 2);
  auto store = scaling::StateStore(dir_.path()).WarmInstances("web");
  EXPECT_EQ(store.size(), 2u);
  for (const auto& [name, phase] : store) EXPECT_EQ(phase, scaling::WarmPhase::kWarm) << name;
}

TEST_F(WarmPoolTest, ScaleOutStartsWarmInstancesFirstAndLaunchesColdOnlyForTheRest) {
  StartWatched();
  ASSERT_TRUE(Eventually([&] { return WarmPoolIs(2); }));
  auto warm = Warm();
  auto outcome = Scale(3, "r1");
  ASSERT_EQ(outcome.status, ScaleStatus::kDone) << outcome.message;
  EXPECT_NE(outcome.message.find("2 from the warm pool"), std::string::npos) << outcome.message;
  EXPECT_EQ(multipass_->count("multipass.start"), 2);
  for (const auto& name : warm) {
    EXPECT_EQ(multipass_->instances()[name], "running") << name;
    EXPECT_EQ(nomad_->eligible(name), std::optional<bool>(true)) << name;
  }
  EXPECT_EQ(Status().count, 3);
  // The refill: one more, as max_instances (4) leaves room for one.
  ASSERT_TRUE(Eventually([&] { return WarmPoolIs(1); }));
  EXPECT_EQ(multipass_->count("multipass.launch"), 2 + 1 + 1);
  EXPECT_EQ(Status().count, 3);
  // The nodes were awaited by blocking queries, the first one included: a
  // query without an index gets none back, and the watch then polled.
  EXPECT_EQ(nomad_->unindexed_queries(), 0);
}

TEST_F(WarmPoolTest, AWarmStartThatFailsIsDeletedItsNodePurgedAndReplacedInTheSameScale) {
  policy_["max_instances"] = "2";  // no refill after the Scale: the launches are its own
  StartWatched();
  ASSERT_TRUE(Eventually([&] { return WarmPoolIs(2); }));
  auto warm = Warm();
  multipass_->FailWith("multipass.start", contracts::AppCode::kOutOfResources,
                       "not enough host resources");
  auto outcome = Scale(2, "r1");
  ASSERT_EQ(outcome.status, ScaleStatus::kDone) << outcome.message;
  auto instances = multipass_->instances();
  for (const auto& name : warm) {
    EXPECT_FALSE(instances.contains(name)) << name;
    EXPECT_TRUE(nomad_->purged().contains("node-" + name)) << name;
  }
  EXPECT_EQ(Status().count, 2);
  EXPECT_EQ(multipass_->count("multipass.launch"), 2 + 2);
}

TEST_F(WarmPoolTest, AWarmInstanceWhoseNodeDoesNotComeBackIsReplacedInTheSameScale) {
  policy_["node_registration_timeout"] = "300ms";
  StartWatched();
  ASSERT_TRUE(Eventually([&] { return WarmPoolIs(2); }));
  auto warm = Warm();
  nodes_come_back = false;
  auto outcome = Scale(1, "r1");
  ASSERT_EQ(outcome.status, ScaleStatus::kDone) << outcome.message;
  auto instances = multipass_->instances();
  int replaced = 0;
  for (const auto& name : warm) {
    if (instances.contains(name)) continue;  // the one the Scale did not take
    ++replaced;
    EXPECT_TRUE(nomad_->purged().contains("node-" + name)) << name;
  }
  EXPECT_EQ(replaced, 1);
  EXPECT_EQ(Status().count, 1);
}

TEST_F(WarmPoolTest, ARefillTakesALaunchSlotOnlyWhenNoScaleLaunchWaits) {
  policy_["max_parallel_launches"] = "1";
  policy_["warm_pool_size"] = "3";
  multipass_->Set("multipass.launch", testing::Answering::kHold);
  StartWatched();
  // The refill runs its first launch; its other two wait for the slot.
  ASSERT_TRUE(multipass_->WaitHeld("multipass.launch", 1));
  ASSERT_TRUE(Eventually([&] { return Warming().size() == 3; }));
  auto refill = Warming();
  // The refill does not hold the pool's Scale slot: this Scale is planned now.
  auto scale = ScaleAsync(1, "r1");
  ASSERT_TRUE(Eventually([&] {
    return Status().meta[scaling::kMetaNotReady].find("scale request r1 in progress") !=
           std::string::npos;
  }));
  multipass_->Release("multipass.launch", /*keep_holding=*/true);
  // The slot goes to the Scale's launch, not to the refill's next.
  ASSERT_TRUE(multipass_->WaitHeld("multipass.launch", 1));
  auto next = NameOf(multipass_->held("multipass.launch").front());
  EXPECT_EQ(std::count(refill.begin(), refill.end(), next), 0) << next << " is the refill's";
  multipass_->Release("multipass.launch", /*keep_holding=*/true);
  ASSERT_EQ(scale.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(scale.get().status, ScaleStatus::kDone);
  EXPECT_EQ(multipass_->max_in_flight("multipass.launch"), 1);
  multipass_->Release("multipass.launch");
  ASSERT_TRUE(Eventually([&] { return WarmPoolIs(3); }));
  EXPECT_EQ(Status().count, 1);
}

TEST_F(WarmPoolTest, ScaleInWithReuseStopsDrainedInstancesIntoTheWarmPool) {
  policy_["max_instances"] = "3";
  policy_["warm_pool_reuse_on_scale_in"] = "true";
  StartWatched();
  ASSERT_TRUE(Eventually([&] { return WarmPoolIs(2); }));
  ASSERT_EQ(Scale(3, "r1").status, ScaleStatus::kDone);
  EXPECT_TRUE(Warm().empty());  // max_instances leaves no room for a refill
  // Every node registered first: an instance without one would be deleted
  // directly (nothing to drain), not returned to the warm pool.
  ASSERT_TRUE(Eventually([&] {
    auto s = Status();
    return s.ready && s.count == 3;
  }));
  auto outcome = Scale(1, "r2");
  ASSERT_EQ(outcome.status, ScaleStatus::kDone) << outcome.message;
  EXPECT_EQ(nomad_->drained().size(), 2u);
  EXPECT_TRUE(nomad_->purged().empty());
  auto warm = Warm();
  ASSERT_EQ(warm.size(), 2u);
  for (const auto& name : warm) EXPECT_EQ(multipass_->instances()[name], "stopped") << name;
  EXPECT_EQ(multipass_->count("multipass.delete"), 0);
  EXPECT_EQ(Status().count, 1);
}

TEST_F(WarmPoolTest, AWarmingInstanceInterruptedBeforeItsStopIsFinishedByTheNextProcess) {
  policy_["warm_pool_size"] = "1";
  multipass_->Set("multipass.stop", testing::Answering::kHold);
  StartWatched();
  ASSERT_TRUE(multipass_->WaitHeld("multipass.stop", 1));
  StopAll();  // as kill -9: the stop is recorded, never answered
  multipass_->Set("multipass.stop", testing::Answering::kNormally);
  links_.multipass = multipass_->Client(context_);
  links_.nomad = nomad_->Client(context_);
  StartWatched();
  ASSERT_TRUE(Eventually([&] { return WarmPoolIs(1); }));
  EXPECT_EQ(multipass_->count("multipass.launch"), 1);  // finished, not forgotten and redone
  EXPECT_EQ(multipass_->instances()[Warm().front()], "stopped");
  EXPECT_EQ(Status().count, 0);
}

TEST_F(WarmPoolTest, AWarmStartInterruptedByACrashEndsEligibleAndCounted) {
  policy_["warm_pool_size"] = "1";
  StartWatched();
  ASSERT_TRUE(Eventually([&] { return WarmPoolIs(1); }));
  auto name = Warm().front();
  multipass_->Set("multipass.start", testing::Answering::kHold);
  auto scale = ScaleAsync(1, "r1");
  ASSERT_TRUE(multipass_->WaitHeld("multipass.start", 1));
  StopAll();
  scale.get();
  // The daemon goes on with the start (as hostd does after the plugin died).
  multipass_->Set("multipass.start", testing::Answering::kNormally);
  multipass_->Release("multipass.start");
  links_.multipass = multipass_->Client(context_);
  links_.nomad = nomad_->Client(context_);
  StartWatched();
  // Resumed: started, its node back and eligible; counted, not warm.
  ASSERT_TRUE(Eventually([&] { return nomad_->eligible(name) == std::optional<bool>(true); }));
  ASSERT_TRUE(Eventually([&] {
    return Status().count == 1 && scaling::StateStore(dir_.path()).PendingOperations("web").empty();
  }));
  EXPECT_EQ(multipass_->instances()[name], "running");
  auto warm = Warm();
  EXPECT_EQ(std::count(warm.begin(), warm.end(), name), 0);
}

TEST_F(WarmPoolTest, AWarmPoolWhoseNodesNeverRegisterBacksOff) {
  policy_["warm_pool_size"] = "1";
  policy_["node_registration_timeout"] = "200ms";
  nodes_register = false;
  StartWatched();
  ASSERT_TRUE(Eventually([&] {
    return Status().meta[scaling::kMetaNotReady].find("launch backoff") != std::string::npos;
  }));
  auto reason = Status().meta[scaling::kMetaNotReady];
  EXPECT_NE(reason.find("did not register"), std::string::npos) << reason;
  // The failed instance is gone, and no other is being prepared meanwhile.
  ASSERT_TRUE(Eventually([&] { return multipass_->instances().empty(); }));
  EXPECT_TRUE(Warming().empty());
  EXPECT_EQ(multipass_->count("multipass.launch"), 1);
}

}  // namespace
}  // namespace mps
