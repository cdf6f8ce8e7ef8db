// Warm pools end to end: the go-plugin host drives multipass-target (split
// mode) against a real multipass-hostd and cluster-sim, whose stopped
// instances' Nomad nodes go down and come back under the same ID when started.
#include <signal.h>

#include <algorithm>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scale_world.h"

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::string Meta(const json& status, const std::string& key) {
  const auto& meta = status["values"]["meta"];
  return meta.contains(key) ? meta[key].get<std::string>() : "";
}

std::set<std::string> Split(const std::string& list) {
  std::set<std::string> out;
  for (std::size_t at = 0; at < list.size();) {
    auto comma = list.find(',', at);
    if (comma == std::string::npos) comma = list.size();
    out.insert(list.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

// A world whose simulator restarts VMs much faster than it makes them.
mps::test::SimOptions FastRestarts(std::string boot_delay = "300ms",
                                   std::string start_delay = "100ms") {
  mps::test::SimOptions o;
  o.boot_delay = std::move(boot_delay);
  o.join_delay = "200ms";
  o.start_delay = std::move(start_delay);
  o.restart_join_delay = "100ms";
  o.heartbeat_delay = "100ms";
  return o;
}

struct PoolView {
  json status;
  std::set<std::string> warm, warming;
  std::int64_t count = -1;
};

PoolView View(mps::test::ScaleWorld& world) {
  PoolView v;
  v.status = world.Status();
  v.warm = Split(Meta(v.status, "mps.warm"));
  v.warming = Split(Meta(v.status, "mps.warming"));
  if (v.status["values"].contains("count")) v.count = v.status["values"]["count"];
  return v;
}

// Asks Status (as the autoscaler does) until `done` holds for the view.
template <class Done>
PoolView Until(mps::test::ScaleWorld& world, Done done, std::chrono::seconds limit = 40s) {
  auto until = std::chrono::steady_clock::now() + limit;
  PoolView v = View(world);
  while (!done(v) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(100ms);
    v = View(world);
  }
  return v;
}

std::map<std::string, json> NodesByInstance(mps::test::ScaleWorld& world) {
  std::map<std::string, json> out;
  for (const auto& n : world.Nodes()) {
    auto name = n["Name"].get<std::string>();
    EXPECT_FALSE(out.contains(name)) << "two nodes for " << name;
    out[name] = n;
  }
  return out;
}

// n warm instances, none warming, and Nomad has seen every warm VM stop
// (its node down once the heartbeats are missed).
PoolView UntilWarm(mps::test::ScaleWorld& world, std::size_t n) {
  return Until(world, [&world, n](const PoolView& v) {
    if (v.warm.size() != n || !v.warming.empty()) return false;
    auto nodes = NodesByInstance(world);
    return std::all_of(v.warm.begin(), v.warm.end(), [&](const std::string& name) {
      return nodes.contains(name) && nodes[name]["Status"] == "down";
    });
  });
}

// Every instance of the pool is either counted and running with a ready,
// eligible node, or warm: stopped with a down, ineligible node. No node
// without its instance, no instance twice.
void ExpectConsistent(mps::test::ScaleWorld& world, const PoolView& v, std::int64_t count,
                      std::size_t warm) {
  EXPECT_EQ(v.count, count) << v.status;
  EXPECT_EQ(v.warm.size(), warm) << v.status;
  auto instances = world.Instances();
  auto nodes = NodesByInstance(world);
  EXPECT_EQ(instances.size(), static_cast<std::size_t>(count) + warm);
  EXPECT_EQ(nodes.size(), instances.size());
  for (const auto& [name, state] : instances) {
    ASSERT_TRUE(nodes.contains(name)) << name << " has no node";
    const auto& node = nodes[name];
    if (v.warm.contains(name)) {
      EXPECT_EQ(state, "stopped") << name;
      EXPECT_EQ(node["Status"], "down") << name;
      EXPECT_EQ(node["SchedulingEligibility"], "ineligible") << name;
    } else {
      EXPECT_EQ(state, "running") << name;
      EXPECT_EQ(node["Status"], "ready") << name;
      EXPECT_EQ(node["SchedulingEligibility"], "eligible") << name;
    }
  }
  EXPECT_TRUE(world.UndrainedDeletions().empty()) << world.UndrainedDeletions();
}

TEST(WarmPoolEndToEnd, FilledAfterStartTakenFirstByAScaleOutAndRefilled) {
  mps::test::ScaleWorld world(FastRestarts());
  world.policy["warm_pool_size"] = "3";
  world.policy["max_instances"] = "8";
  world.StartHostd();
  world.StartPlugin();
  auto v = UntilWarm(world, 3);
  ASSERT_EQ(v.warm.size(), 3u) << v.status << world.host_stderr();
  ExpectConsistent(world, v, 0, 3);
  auto warm = v.warm;
  std::map<std::string, std::string> warm_node_ids;
  for (auto& [name, node] : NodesByInstance(world)) warm_node_ids[name] = node["ID"];

  auto r = world.Scale(5);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  // The three warm instances run again under their old node IDs, and only
  // two were launched cold.
  auto nodes = NodesByInstance(world);
  for (const auto& name : warm) {
    EXPECT_EQ(world.Instances()[name], "running") << name;
    EXPECT_EQ(nodes[name]["ID"], warm_node_ids[name]) << name;
    EXPECT_EQ(nodes[name]["Status"], "ready") << name;
    EXPECT_EQ(nodes[name]["SchedulingEligibility"], "eligible") << name;
  }
  v = UntilWarm(world, 3);
  ExpectConsistent(world, v, 5, 3);
  for (const auto& name : v.warm) EXPECT_FALSE(warm.contains(name)) << name << " came back warm";
}

TEST(WarmPoolEndToEnd, ScaleInWithReuseReturnsDrainedInstancesToTheWarmPool) {
  mps::test::ScaleWorld world(FastRestarts());
  world.policy["warm_pool_size"] = "3";
  world.policy["max_instances"] = "5";  // no refill once 5 run
  world.policy["warm_pool_reuse_on_scale_in"] = "true";
  world.StartHostd();
  world.StartPlugin();
  ASSERT_EQ(UntilWarm(world, 3).warm.size(), 3u) << world.host_stderr();
  ASSERT_TRUE(world.Scale(5)["ok"]) << world.host_stderr();
  // The cold launches' nodes join a moment after the Scale returns.
  auto v = Until(
      world, [](const PoolView& p) { return p.count == 5 && p.status["values"]["ready"] == true; });
  EXPECT_TRUE(v.warm.empty()) << v.status;
  std::set<std::string> node_ids;
  for (const auto& n : world.Nodes()) node_ids.insert(n["ID"].get<std::string>());
  ASSERT_EQ(node_ids.size(), 5u);

  auto r = world.Scale(2);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  v = UntilWarm(world, 3);
  ExpectConsistent(world, v, 2, 3);
  // Returned, not deleted: the same five nodes, none purged.
  std::set<std::string> after;
  for (const auto& n : world.Nodes()) after.insert(n["ID"].get<std::string>());
  EXPECT_EQ(after, node_ids);
}

TEST(WarmPoolEndToEnd, AWarmStartThatFailsIsReplacedByAColdLaunch) {
  mps::test::ScaleWorld world(FastRestarts());
  world.policy["warm_pool_size"] = "1";
  world.policy["max_instances"] = "2";  // the refill after the Scale has room for one
  world.StartHostd();
  world.StartPlugin();
  auto v = UntilWarm(world, 1);
  ASSERT_EQ(v.warm.size(), 1u) << world.host_stderr();
  auto failed = *v.warm.begin();
  world.Faults({{"fail_every_nth_start", 1}});
  auto r = world.Scale(1);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  EXPECT_FALSE(world.Instances().contains(failed));
  EXPECT_FALSE(NodesByInstance(world).contains(failed)) << "its node was not purged";
  world.Faults({{"fail_every_nth_start", 0}});
  v = UntilWarm(world, 1);
  ExpectConsistent(world, v, 1, 1);
}

// kill -9 of the plugin or of hostd while the warm pool is being prepared:
// the next process finishes what was recorded, nothing is lost or doubled.
void KillDuringWarming(bool plugin) {
  mps::test::ScaleWorld world(FastRestarts("1500ms"));
  world.policy["warm_pool_size"] = "2";
  world.policy["max_instances"] = "4";
  world.StartHostd();
  world.StartPlugin();
  auto v = Until(world, [](const PoolView& p) { return p.warming.size() == 2; });
  ASSERT_EQ(v.warming.size(), 2u) << v.status;
  if (plugin) {
    world.KillPluginProcess();
    world.StopHost();
    world.StartPlugin();
  } else {
    world.KillHostd();
    world.StartHostd();
  }
  v = UntilWarm(world, 2);
  ExpectConsistent(world, v, 0, 2);
}

TEST(WarmPoolEndToEnd, PluginKilledWhileWarming) {
  KillDuringWarming(true);
}

TEST(WarmPoolEndToEnd, HostdKilledWhileWarming) {
  KillDuringWarming(false);
}

// kill -9 during a Scale that starts warm instances (slow starts, so the
// kill lands while they start): the pool ends at its target, the started
// instances counted and eligible, none counted and warm.
void KillDuringWarmScaleOut(bool plugin) {
  mps::test::ScaleWorld world(FastRestarts("300ms", "1500ms"));
  world.policy["warm_pool_size"] = "2";
  world.policy["max_instances"] = "4";
  world.StartHostd();
  world.StartPlugin();
  auto v = UntilWarm(world, 2);
  ASSERT_EQ(v.warm.size(), 2u) << world.host_stderr();
  auto warm = v.warm;
  int scale = world.Send(
      {{"op", "Scale"}, {"config", world.policy}, {"action", {{"count", 2}, {"direction", "up"}}}},
      true);
  bool starting = false;
  for (int i = 0; i < 300 && !starting; ++i) {
    for (const auto& [name, state] : world.Instances()) starting |= state == "starting";
    if (!starting) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(starting);
  if (plugin) {
    world.KillPluginProcess();
    world.Await(scale, 10s);
    world.StopHost();
    world.StartPlugin();
  } else {
    world.KillHostd();
    world.StartHostd();
    world.Await(scale, 60s);  // done, or what it could not confirm
  }
  v = Until(world,
            [](const PoolView& p) { return p.count == 2 && p.status["values"]["ready"] == true; });
  ASSERT_EQ(v.count, 2) << v.status << world.host_stderr();
  v = UntilWarm(world, 2);
  ExpectConsistent(world, v, 2, 2);
  for (const auto& name : warm) EXPECT_FALSE(v.warm.contains(name)) << name << " is warm again";
}

TEST(WarmPoolEndToEnd, PluginKilledDuringAWarmScaleOut) {
  KillDuringWarmScaleOut(true);
}

TEST(WarmPoolEndToEnd, HostdKilledDuringAWarmScaleOut) {
  KillDuringWarmScaleOut(false);
}

}  // namespace
