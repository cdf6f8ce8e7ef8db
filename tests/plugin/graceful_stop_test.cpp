// multipass-target stopped the way the autoscaler stops it: go-plugin's
// client.Kill() (GRPCController.Shutdown, then 2 s before SIGKILL). The
// process must exit by itself within 1 s in every state: with Nomad watched
// (a blocking query open), with a drain waiting, with launches in flight.
#include <iostream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scale_world.h"

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// A fast pool: short boots, joins and migrations.
mps::test::SimOptions Fast() {
  mps::test::SimOptions o;
  o.boot_delay = "50ms";
  o.join_delay = "50ms";
  o.migration_delay = "50ms";
  return o;
}

// The Kill step's verdict: exited by itself (status 0, no signal) within 1 s.
void ExpectCleanExitWithinOneSecond(const json& kill, const std::string& log) {
  ASSERT_TRUE(kill.value("ok", false)) << kill << log;
  const auto& v = kill["values"];
  std::cout << "Kill: " << v.dump() << "\n";
  EXPECT_EQ(v["exited"], true) << kill;
  EXPECT_EQ(v["reaped"], true) << kill;
  EXPECT_FALSE(v.contains("signal")) << "the plugin was killed by a signal: " << kill << log;
  EXPECT_EQ(v.value("exit_code", -1), 0) << kill << log;
  EXPECT_LT(v["elapsed_ms"].get<int>(), 1000) << kill << log;
  EXPECT_THAT(log, testing::Not(testing::HasSubstr("plugin failed to exit gracefully")));
}

std::string NotReady(const json& status) {
  const auto& meta = status["values"]["meta"];
  return meta.contains("mps.not_ready") ? meta["mps.not_ready"].get<std::string>() : "";
}

TEST(GracefulStop, KillAfterScaleOutAndInWithNomadWatchedExitsWithinOneSecondTwentyTimes) {
  mps::test::ScaleWorld world(Fast());
  world.StartHostd();
  for (int run = 0; run < 20; ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    world.StartPlugin();
    auto ready = world.Status(10000);
    ASSERT_EQ(ready["values"]["ready"], true) << NotReady(ready);
    auto out = world.Scale(2);
    ASSERT_TRUE(out["ok"]) << out << world.host_stderr();
    auto in = world.Scale(1);
    ASSERT_TRUE(in["ok"]) << in << world.host_stderr();
    // Ready again: the pool watcher has seen the node table after the scale
    // in and holds its next blocking query open.
    auto s = world.Status(10000);
    ASSERT_EQ(s["values"]["ready"], true) << s;
    ASSERT_EQ(s["values"]["count"], 1);
    auto kill = world.Kill();
    ExpectCleanExitWithinOneSecond(kill, world.host_stderr());
    world.StopHost();
    if (HasFailure()) break;
  }
}

TEST(GracefulStop, KillWithADrainWaitingExitsWithinOneSecond) {
  auto sim = Fast();
  sim.migration_delay = "10m";  // a node with work on it cannot drain
  mps::test::ScaleWorld world(sim);
  world.policy["node_drain_deadline"] = "1h";
  world.StartHostd();
  world.StartPlugin();
  ASSERT_TRUE(world.Scale(2)["ok"]) << world.host_stderr();
  ASSERT_EQ(world.Status(10000)["values"]["ready"], true);
  for (const auto& n : world.Nodes()) world.AddAllocation(n["ID"]);
  int scale = world.Send({{"op", "Scale"},
                          {"config", world.policy},
                          {"action", {{"count", 1}, {"direction", "down"}}}},
                         /*async=*/true);
  bool draining = false;
  for (int i = 0; i < 300 && !draining; ++i) {
    draining = NotReady(world.Status()).find("drain of") != std::string::npos;
    if (!draining) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(draining) << world.host_stderr();
  std::this_thread::sleep_for(200ms);  // the drain's blocking queries are open
  auto kill = world.Kill();
  ExpectCleanExitWithinOneSecond(kill, world.host_stderr());
  auto r = world.Await(scale, 5s);
  EXPECT_FALSE(r.value("ok", true)) << "the interrupted Scale must not report success: " << r;
  // Nothing was deleted: the drain never finished.
  EXPECT_EQ(world.Instances().size(), 2u);
}

TEST(GracefulStop, KillWithLaunchesInFlightInDirectModeExitsWithinOneSecond) {
  auto sim = Fast();
  sim.passphrase = "sesame";
  sim.hang_launches = true;  // a launch ends only when its call is cancelled
  mps::test::ScaleWorld world(sim);
  world.Instances();  // the observer's certificate is the first one multipassd sees
  world.StartPlugin(world.DirectPluginConfig());
  ASSERT_EQ(world.Status(10000)["values"]["ready"], true) << world.host_stderr();
  int scale = world.Send(
      {{"op", "Scale"}, {"config", world.policy}, {"action", {{"count", 3}, {"direction", "up"}}}},
      /*async=*/true);
  // The first launch of an image runs alone; one launch in flight is enough.
  bool launching = false;
  for (int i = 0; i < 300 && !launching; ++i) {
    launching = !world.Instances().empty();
    if (!launching) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(launching) << world.host_stderr();
  auto kill = world.Kill();
  ExpectCleanExitWithinOneSecond(kill, world.host_stderr());
  auto r = world.Await(scale, 5s);
  EXPECT_FALSE(r.value("ok", true)) << "the interrupted Scale must not report success: " << r;
}

}  // namespace
