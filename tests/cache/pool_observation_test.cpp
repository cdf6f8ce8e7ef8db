#include "scaling/pool_observation.h"

#include <gtest/gtest.h>

#include "scaling/pool_policy.h"
#include "scaling/pool_status.h"

using namespace mps;
using cache::PendingLaunch;
using json = nlohmann::json;

namespace {

json List(std::initializer_list<std::pair<const char*, const char*>> instances,
          std::initializer_list<const char*> in_flight = {}) {
  json out{{"instances", json::array()}, {"in_flight", json::array()}};
  for (auto [name, state] : instances)
    out["instances"].push_back({{"name", name}, {"state", state}});
  for (auto name : in_flight) out["in_flight"].push_back({{"name", name}});
  return out;
}

json Node(const char* id, const char* instance, const char* status = "ready",
          std::uint64_t create_index = 1) {
  return {{"id", id},       {"instance", instance}, {"status", status},
          {"drain", false}, {"eligible", true},     {"create_index", create_index}};
}

TEST(ApplyInstanceList, KeepsOnlyThePoolAndRemembersFirstRunning) {
  scaling::PoolState state;
  state.prefix = "web";
  auto t0 = scaling::Clock::now();
  auto running = cache::ApplyInstanceList(
      state, List({{"web-a", "running"}, {"web-b", "starting"}, {"webapp-1", "running"}}), t0);
  ASSERT_EQ(state.instances.size(), 2u);
  EXPECT_EQ(running, std::vector<std::string>{"web-a"});
  EXPECT_EQ(state.Find("web-a")->first_seen_running_at, t0);
  EXPECT_EQ(state.Find("web-b")->state, scaling::InstanceState::kStarting);
  // Later: web-b runs; web-a keeps its first-seen time; a vanished instance goes.
  auto t1 = t0 + std::chrono::seconds(5);
  running = cache::ApplyInstanceList(state, List({{"web-a", "running"}, {"web-b", "running"}}), t1);
  EXPECT_EQ(running, std::vector<std::string>{"web-b"});
  EXPECT_EQ(state.Find("web-a")->first_seen_running_at, t0);
  running = cache::ApplyInstanceList(state, List({{"web-b", "stopped"}}), t1);
  EXPECT_EQ(state.Find("web-a"), nullptr);
  EXPECT_EQ(state.Find("web-b")->state, scaling::InstanceState::kStopped);
}

// Issue 16, defect 7: SetConfig moved state_dir mid-scale; the new store
// knew nothing of the launches hostd was still running and a Scale to 6 made
// 7. Launches hostd lists as in flight are counted, ours or not.
TEST(ApplyInstanceList, CountsLaunchesHostdStillRunsThatWeHaveNoRecordOf) {
  scaling::PoolState state;
  state.prefix = "web";
  auto t0 = scaling::Clock::now();
  json list = List({{"web-a", "running"}});
  list["in_flight"] = json::array({{{"name", "web-b"}, {"image", "noble"}, {"submitted_ms", 1}},
                                   {{"name", "other-c"}, {"image", "noble"}, {"submitted_ms", 1}}});
  cache::ApplyInstanceList(state, list, t0);
  ASSERT_NE(state.Find("web-b"), nullptr);
  EXPECT_EQ(state.Find("web-b")->state, scaling::InstanceState::kPreparing);
  EXPECT_EQ(state.Find("other-c"), nullptr);
  scaling::PoolPolicy policy;
  policy.instance_name_prefix = "web";
  EXPECT_EQ(scaling::ComputeStatus(state, policy, t0).count, 2);
  // Once it is listed, it is the instance the listing says.
  cache::ApplyInstanceList(state, List({{"web-a", "running"}, {"web-b", "running"}}), t0);
  EXPECT_EQ(state.Find("web-b")->state, scaling::InstanceState::kRunning);
  EXPECT_EQ(scaling::ComputeStatus(state, policy, t0).count, 2);
}

TEST(ApplyPoolNodes, AttachesNodesReportsRegistrationsAndOrphans) {
  scaling::PoolState state;
  state.prefix = "web";
  cache::ApplyInstanceList(state, List({{"web-a", "running"}, {"web-b", "running"}}),
                           scaling::Clock::now());
  json nodes{
      {"nodes", {Node("n1", "web-a"), Node("n9", "web-gone", "down"), Node("x1", "other-1")}}};
  auto changes = cache::ApplyPoolNodes(state, nodes);
  ASSERT_EQ(changes.registered.size(), 1u);
  EXPECT_EQ(changes.registered[0], std::make_pair(std::string("web-a"), std::string("n1")));
  EXPECT_EQ(state.Find("web-a")->node->id, "n1");
  EXPECT_FALSE(state.Find("web-b")->node);
  // web-gone's node is down: an orphan. web-just-deleted's is still ready
  // (Nomad has not noticed yet): not yet. other-1 is not ours.
  ASSERT_EQ(state.orphan_nodes.size(), 1u);
  EXPECT_EQ(state.orphan_nodes[0].id, "n9");
  // Seen again: no second registration event.
  EXPECT_TRUE(cache::ApplyPoolNodes(state, nodes).registered.empty());
}

TEST(ApplyPoolNodes, ReRegisteredVmKeepsTheNewestNode) {
  scaling::PoolState state;
  state.prefix = "web";
  cache::ApplyInstanceList(state, List({{"web-a", "running"}}), scaling::Clock::now());
  json nodes{{"nodes", {Node("old", "web-a", "down", 5), Node("new", "web-a", "ready", 9)}}};
  cache::ApplyPoolNodes(state, nodes);
  EXPECT_EQ(state.Find("web-a")->node->id, "new");
  ASSERT_EQ(state.orphan_nodes.size(), 1u);
  EXPECT_EQ(state.orphan_nodes[0].id, "old");
}

TEST(ResolvePendingLaunch, DecidesFromTheListing) {
  auto list = List({{"web-run", "running"}, {"web-boot", "starting"}, {"web-off", "stopped"}},
                   {"web-queued"});
  EXPECT_EQ(cache::ResolvePendingLaunch("web-run", list), PendingLaunch::kDone);
  EXPECT_EQ(cache::ResolvePendingLaunch("web-boot", list), PendingLaunch::kWait);
  EXPECT_EQ(cache::ResolvePendingLaunch("web-queued", list), PendingLaunch::kWait);
  EXPECT_EQ(cache::ResolvePendingLaunch("web-off", list), PendingLaunch::kCleanUp);
  EXPECT_EQ(cache::ResolvePendingLaunch("web-nowhere", list), PendingLaunch::kRelaunch);
}

TEST(PoolViewJson, CarriesTheStatusEndpointFields) {
  scaling::PoolState state;
  state.prefix = "web";
  cache::ApplyInstanceList(state, List({{"web-a", "running"}}), scaling::Clock::now());
  state.operations.push_back(
      {scaling::OperationKind::kLaunch, "web-b", scaling::Clock::now(), "r1"});
  state.active_scale_request_id = "r1";
  scaling::PoolPolicy policy = scaling::ParsePoolPolicy({{"node_class", "web"}});
  auto status = scaling::ComputeStatus(state, policy, scaling::Clock::now());
  auto view = cache::PoolViewJson(state, status);
  EXPECT_EQ(view["pool"], "web");
  EXPECT_EQ(view["count"], 2);
  EXPECT_EQ(view["ready"], false);
  EXPECT_EQ(view["scale_request"], "r1");
  EXPECT_EQ(view["operations"][0]["kind"], "launch");
  EXPECT_EQ(view["instances"][0]["name"], "web-a");
  EXPECT_TRUE(view["instances"][0]["node_id"].is_null());
  EXPECT_FALSE(view["reasons"].empty());
}

}  // namespace
