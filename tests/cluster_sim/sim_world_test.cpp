#include "cluster_sim/sim_world.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace {

using namespace std::chrono_literals;
using mps::sim::InstanceState;
using mps::sim::LaunchSpec;
using mps::sim::LaunchStep;
using mps::sim::SimWorld;
using mps::sim::WorldOptions;

WorldOptions FastOptions() {
  WorldOptions o;
  o.boot_delay = 50ms;
  o.host_cpus = 4;
  o.host_memory_bytes = 4ull << 30;
  return o;
}

LaunchSpec Spec(std::string name, int cpus = 1, std::string memory = "1G") {
  LaunchSpec s;
  s.name = std::move(name);
  s.cpus = cpus;
  s.memory = std::move(memory);
  s.cloud_init_user_data = "#cloud-config\n";
  return s;
}

struct Recorder {
  std::vector<LaunchStep> steps;
  SimWorld::StepSink sink() {
    return [this](const LaunchStep& s) {
      steps.push_back(s);
      return true;
    };
  }
};

const SimWorld::CancelledFn kNever = [] { return false; };

TEST(SimWorld, HooksSeeRunningWithUserDataAndDeletion) {
  SimWorld world(FastOptions());
  std::mutex m;
  std::vector<std::string> running, deleted;
  std::string user_data;
  world.OnInstanceRunning([&](const std::string& n, const std::string& ud, bool) {
    std::lock_guard l(m);
    running.push_back(n);
    user_data = ud;
  });
  world.OnInstanceDeleted([&](const std::string& n) {
    std::lock_guard l(m);
    deleted.push_back(n);
  });
  Recorder rec;
  ASSERT_FALSE(world.Launch(Spec("vm1"), rec.sink(), kNever).has_value());
  {
    std::lock_guard l(m);
    ASSERT_EQ(running, std::vector<std::string>{"vm1"});
    EXPECT_EQ(user_data, "#cloud-config\n");
  }
  std::vector<std::string> purged;
  ASSERT_FALSE(world.Delete({"vm1"}, false, &purged).has_value());
  ASSERT_FALSE(world.Delete({"vm1"}, true, &purged).has_value());  // purge of a deleted one
  std::lock_guard l(m);
  EXPECT_EQ(deleted, std::vector<std::string>{"vm1"});  // reported once, when it left
  EXPECT_EQ(purged, std::vector<std::string>{"vm1"});
}

TEST(SimWorld, CapacityCountsOnlyInstancesThatUseTheHost) {
  SimWorld world(FastOptions());
  Recorder rec;
  ASSERT_FALSE(world.Launch(Spec("a", 2, "2G"), rec.sink(), kNever).has_value());
  auto err = world.Launch(Spec("b", 2, "3G"), rec.sink(), kNever);
  ASSERT_TRUE(err.has_value());
  // multipassd reports a start failure in launch as FAILED_PRECONDITION.
  EXPECT_EQ(err->code, grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(err->message.find("not enough host resources"), std::string::npos) << err->message;
  auto snap = world.Snapshot();
  ASSERT_EQ(snap.instances.size(), 1u);  // the failed one is removed
  ASSERT_FALSE(world.Stop({"a"}).has_value());
  EXPECT_FALSE(world.Launch(Spec("b", 2, "3G"), rec.sink(), kNever).has_value());
  auto start = world.Start({"a"}, 5, kNever);
  ASSERT_TRUE(start.has_value());
  EXPECT_EQ(start->code, grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(start->start_errors.empty());  // StartError::OTHER is never sent
}

TEST(SimWorld, GeneratedNamesAreValidAndUnique) {
  SimWorld world(FastOptions());
  Recorder rec;
  ASSERT_FALSE(world.Launch(Spec(""), rec.sink(), kNever).has_value());
  ASSERT_FALSE(world.Launch(Spec(""), rec.sink(), kNever).has_value());
  auto list = world.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_NE(list[0].name, list[1].name);
  EXPECT_EQ(list[0].state, InstanceState::kRunning);
}

TEST(SimWorld, StopAndStartFollowTheDaemonsStateRules) {
  WorldOptions o = FastOptions();
  o.start_delay = 10ms;
  SimWorld world(o);
  std::mutex m;
  std::vector<std::pair<std::string, bool>> running;  // (name, first boot)
  std::vector<std::string> stopped;
  world.OnInstanceRunning([&](const std::string& n, const std::string&, bool first_boot) {
    std::lock_guard l(m);
    running.emplace_back(n, first_boot);
  });
  world.OnInstanceStopped([&](const std::string& n) {
    std::lock_guard l(m);
    stopped.push_back(n);
  });
  Recorder rec;
  ASSERT_FALSE(world.Launch(Spec("a"), rec.sink(), kNever).has_value());
  ASSERT_FALSE(world.Launch(Spec("gone"), rec.sink(), kNever).has_value());
  std::vector<std::string> purged;
  ASSERT_FALSE(world.Delete({"gone"}, false, &purged).has_value());

  ASSERT_FALSE(world.Stop({"a"}).has_value());
  ASSERT_FALSE(world.Stop({"a"}).has_value());  // already stopped: left alone, no second report
  auto deleted = world.Stop({"gone"});
  ASSERT_TRUE(deleted.has_value());
  EXPECT_EQ(deleted->code, grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(deleted->message.find("instance \"gone\" is deleted"), std::string::npos);
  auto missing = world.Stop({"gone", "ghost"});
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->code, grpc::StatusCode::NOT_FOUND);  // the last kind found wins
  EXPECT_NE(missing->message.find("instance \"ghost\" does not exist"), std::string::npos);

  auto not_there = world.Start({"a", "gone", "ghost"}, 5, kNever);
  ASSERT_TRUE(not_there.has_value());
  EXPECT_EQ(not_there->code, grpc::StatusCode::ABORTED);
  EXPECT_EQ(not_there->message, "instance(s) missing");
  EXPECT_EQ(not_there->start_errors.at("gone"), 2);                // StartError::INSTANCE_DELETED
  EXPECT_EQ(not_there->start_errors.at("ghost"), 1);               // StartError::DOES_NOT_EXIST
  EXPECT_EQ(world.List().front().state, InstanceState::kStopped);  // nothing was started

  ASSERT_FALSE(world.Start({"a"}, 5, kNever).has_value());
  ASSERT_FALSE(world.Start({"a"}, 5, kNever).has_value());  // running: nothing to do
  std::lock_guard l(m);
  EXPECT_EQ(running,
            (std::vector<std::pair<std::string, bool>>{{"a", true}, {"gone", true}, {"a", false}}));
  EXPECT_EQ(stopped, std::vector<std::string>{"a"});
  EXPECT_EQ(world.List().front().boots, 2u);
}

TEST(SimWorld, StartPaysTheStartDelayNotTheBootDelayAndAStartingVmCannotStop) {
  WorldOptions o = FastOptions();
  o.start_delay = std::chrono::hours(1);  // a start that never finishes within its timeout
  SimWorld world(o);
  Recorder rec;
  // The launch boots in boot_delay: the first boot does not pay start_delay.
  ASSERT_FALSE(world.Launch(Spec("a"), rec.sink(), kNever).has_value());
  ASSERT_FALSE(world.Stop({"a"}).has_value());
  auto late = world.Start({"a"}, 1, kNever);
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->code, grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(late->message.find("a: timed out waiting for response"), std::string::npos);
  EXPECT_EQ(world.List().front().state, InstanceState::kStarting);  // the VM stays, starting
  auto refused = world.Stop({"a"});
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->code, grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(refused->message, "Cannot shut down instance a while starting.");
}

TEST(SimWorld, OnlyTheFirstBootPaysCloudInit) {
  WorldOptions o = FastOptions();
  o.cloud_init_delay = std::chrono::hours(1);
  o.start_delay = 10ms;
  SimWorld world(o);
  Recorder rec;
  // cloud-init longer than the launch's timeout: the launch fails after SSH-up
  // with the VM left in place (RUNNING), as multipassd's does.
  LaunchSpec spec = Spec("a");
  spec.timeout_seconds = 1;
  auto launch = world.Launch(spec, rec.sink(), kNever);
  ASSERT_TRUE(launch.has_value());
  EXPECT_NE(launch->message.find("timed out waiting for initialization"), std::string::npos);
  ASSERT_FALSE(world.Stop({"a"}).has_value());
  // A restart waits only for SSH-up, not for cloud-init again.
  EXPECT_FALSE(world.Start({"a"}, 1, kNever).has_value());
  EXPECT_EQ(world.List().front().state, InstanceState::kRunning);
}

}  // namespace
