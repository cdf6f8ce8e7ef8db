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
  world.OnInstanceRunning([&](const std::string& n, const std::string& ud) {
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

}  // namespace
