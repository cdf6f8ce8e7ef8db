// Parsing real Nomad allocation lists and running the selector strategies on
// them; the expected picks are those of tests/fixtures/README.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "nomad/node_selector.h"
#include "nomad/nomad_error.h"
#include "nomad/nomad_models.h"

using namespace mps::nomad;

namespace {

constexpr const char* kBusy = "151be1dc-92e7-a488-f7dc-49faaf5a4c96";    // system+batch running
constexpr const char* kSystem = "b2d5bbb6-a61d-ee1f-a896-cbc6efe4f7fe";  // system running
constexpr const char* kIdle = "b535e699-1112-c379-c020-ebd80fdd9f09";    // only complete batch

nlohmann::json LoadFixture(const std::string& node_id) {
  const std::string path =
      std::string(MPS_FIXTURES_DIR) + "/nomad/node-allocations/" + node_id + ".json";
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "fixture " << path << " cannot be read";
    return nlohmann::json::array();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

// The captured cluster: 1 CPU at 2.5 GHz, 2 GB per client; create indexes made up.
NodeStub FixtureNode(const std::string& id, std::uint64_t create_index) {
  NodeStub n;
  n.id = id;
  n.status = "ready";
  n.scheduling_eligibility = "eligible";
  n.create_index = create_index;
  n.node_resources = NodeCapacity{2500, 2048};
  n.reserved_resources = NodeCapacity{0, 0};
  return n;
}

// In node-ID order, as the raw GET /v1/nodes returns them.
std::vector<SelectionCandidate> FixtureCandidates() {
  return {{FixtureNode(kBusy, 10), ParseAllocationList(LoadFixture(kBusy))},
          {FixtureNode(kSystem, 30), ParseAllocationList(LoadFixture(kSystem))},
          {FixtureNode(kIdle, 20), ParseAllocationList(LoadFixture(kIdle))}};
}

}  // namespace

TEST(NomadFixtures, ParsesAllocationListsFromARealCluster) {
  auto busy = ParseAllocationList(LoadFixture(kBusy));
  ASSERT_EQ(busy.size(), 3u);
  EXPECT_EQ(busy[0].id, "210dcc60-1c5c-ab4c-f08a-ad7d0536a06d");
  EXPECT_EQ(busy[0].node_id, kBusy);
  EXPECT_EQ(busy[0].client_status, "running");
  EXPECT_EQ(busy[0].desired_status, "run");
  EXPECT_EQ(busy[0].job_type, "batch");
  EXPECT_EQ(busy[0].cpu, 100);
  EXPECT_EQ(busy[0].memory_mb, 256);
  EXPECT_EQ(busy[0].create_index, 273u);
  EXPECT_EQ(busy[1].job_type, "system");
  EXPECT_EQ(busy[2].client_status, "complete");
  EXPECT_TRUE(busy[2].Terminal());
  EXPECT_FALSE(busy[0].Terminal());
  auto idle = ParseAllocationList(LoadFixture(kIdle));
  ASSERT_EQ(idle.size(), 1u);
  EXPECT_EQ(idle[0].memory_mb, 1500);
}

TEST(NomadModels, ToleratesNullsAndNamesWrongKeys) {
  auto a = ParseAllocation(nlohmann::json{
      {"ID", "a1"}, {"Job", nullptr}, {"Resources", nullptr}, {"ClientStatus", nullptr}});
  EXPECT_EQ(a.job_type, "");
  EXPECT_EQ(a.cpu, 0);
  try {
    ParseAllocationList(
        nlohmann::json::array({{{"ID", "a1"}}, {{"ID", "a2"}, {"Job", {{"Type", 3}}}}}));
    FAIL() << "wrong type accepted";
  } catch (const NomadError& e) {
    EXPECT_EQ(e.kind, NomadError::Kind::bad_response);
    EXPECT_NE(e.message.find("allocations[1].Job.Type"), std::string::npos) << e.message;
  }
  EXPECT_THROW(ParseNodeStub(nlohmann::json{{"Name", "x"}}), NomadError);  // no ID

  // The full node: DrainStrategy null vs object, and no Drain key.
  nlohmann::json node = {
      {"ID", "n1"},
      {"Attributes", {{"unique.hostname", "web-1"}, {"odd", nullptr}}},
      {"DrainStrategy", nullptr},
      {"LastDrain", nullptr},
      {"NodeResources", {{"Cpu", {{"CpuShares", 2500}}}, {"Memory", {{"MemoryMB", 2048}}}}},
      {"CreateIndex", 7}};
  auto n = ParseNode(node);
  EXPECT_FALSE(n.drain_strategy);
  EXPECT_EQ(n.attributes.at("unique.hostname"), "web-1");
  EXPECT_EQ(n.node_resources->cpu_shares, 2500);
  EXPECT_EQ(n.create_index, 7u);
  node["DrainStrategy"] = {{"Deadline", 900000000000},
                           {"IgnoreSystemJobs", true},
                           {"StartedAt", "2024-01-01T00:00:00Z"}};
  n = ParseNode(node);
  ASSERT_TRUE(n.drain_strategy);
  EXPECT_EQ(n.drain_strategy->deadline_ns, 900000000000);
  EXPECT_TRUE(n.drain_strategy->ignore_system_jobs);
  node["DrainStrategy"] = "yes";
  try {
    ParseNode(node);
    FAIL();
  } catch (const NomadError& e) {
    EXPECT_NE(e.message.find("node.DrainStrategy"), std::string::npos) << e.message;
  }
}

TEST(NodeSelector, EmptyPicksOnlyTheNodeWithNothingLive) {
  auto s = SelectNodes(NodeSelectorStrategy::empty, FixtureCandidates(), 3);
  EXPECT_EQ(s.node_ids, std::vector<std::string>{kIdle});
  EXPECT_NE(s.note.find("found 1 of 3"), std::string::npos) << s.note;
}

TEST(NodeSelector, EmptyIgnoreSystemAlsoPicksTheSystemOnlyNode) {
  auto s = SelectNodes(NodeSelectorStrategy::empty_ignore_system, FixtureCandidates(), 3);
  // Walked in CreateIndex-descending order, as the Go client lists them.
  EXPECT_EQ(s.node_ids, (std::vector<std::string>{kSystem, kIdle}));
  auto one = SelectNodes(NodeSelectorStrategy::empty_ignore_system, FixtureCandidates(), 1);
  EXPECT_EQ(one.node_ids, std::vector<std::string>{kSystem});
  EXPECT_TRUE(one.note.empty());
}

TEST(NodeSelector, LeastBusyRanksTheIdleNodeFirst) {
  auto c = FixtureCandidates();
  EXPECT_EQ(LeastBusyScore(c[0]), 17);  // mem 25%, cpu 8%
  EXPECT_EQ(LeastBusyScore(c[1]), 9);   // mem 13%, cpu 4%
  EXPECT_EQ(LeastBusyScore(c[2]), 0);
  auto s = SelectNodes(NodeSelectorStrategy::least_busy, c, 3);
  EXPECT_EQ(s.node_ids, (std::vector<std::string>{kIdle, kSystem, kBusy}));
  EXPECT_EQ(SelectNodes(NodeSelectorStrategy::least_busy, c, 1).node_ids,
            std::vector<std::string>{kIdle});
}

TEST(NodeSelector, LeastBusySelectsNothingWhenAnyNodeCannotBeScored) {
  auto c = FixtureCandidates();
  c[1].allocations.reset();  // an allocation read failed
  auto s = SelectNodes(NodeSelectorStrategy::least_busy, c, 1);
  EXPECT_TRUE(s.node_ids.empty());
  EXPECT_NE(s.note.find(kSystem), std::string::npos);
  c = FixtureCandidates();
  c[0].node.node_resources.reset();
  EXPECT_TRUE(SelectNodes(NodeSelectorStrategy::least_busy, c, 1).node_ids.empty());
}

TEST(NodeSelector, EmptyCountsUnreadableAllocationsAsBusy) {
  auto c = FixtureCandidates();
  c[2].allocations.reset();
  EXPECT_TRUE(SelectNodes(NodeSelectorStrategy::empty, c, 3).node_ids.empty());
}

TEST(NodeSelector, CreateIndexStrategiesSortThemselves) {
  auto c = FixtureCandidates();  // ID order: 10, 30, 20
  EXPECT_EQ(SelectNodes(NodeSelectorStrategy::newest_create_index, c, 2).node_ids,
            (std::vector<std::string>{kSystem, kIdle}));
  EXPECT_EQ(SelectNodes(NodeSelectorStrategy::oldest_create_index, c, 2).node_ids,
            (std::vector<std::string>{kBusy, kIdle}));
  EXPECT_EQ(SelectNodes(NodeSelectorStrategy::oldest_create_index, c, 5).node_ids.size(), 3u);
}

TEST(NodeSelector, OnlyGivenCandidatesAreConsidered) {
  auto c = FixtureCandidates();
  c.erase(c.begin() + 2);  // the idle node's instance is not in the pool
  EXPECT_TRUE(SelectNodes(NodeSelectorStrategy::empty, c, 1).node_ids.empty());
  EXPECT_EQ(SelectNodes(NodeSelectorStrategy::least_busy, c, 1).node_ids,
            std::vector<std::string>{kSystem});
}

TEST(NodeSelector, StrategyNamesParseAndUnknownListsTheValidOnes) {
  EXPECT_EQ(ParseNodeSelectorStrategy(""), NodeSelectorStrategy::least_busy);
  for (auto s :
       {NodeSelectorStrategy::least_busy, NodeSelectorStrategy::empty,
        NodeSelectorStrategy::empty_ignore_system, NodeSelectorStrategy::newest_create_index,
        NodeSelectorStrategy::oldest_create_index}) {
    EXPECT_EQ(ParseNodeSelectorStrategy(StrategyName(s)), s);
  }
  try {
    ParseNodeSelectorStrategy("most_busy");
    FAIL();
  } catch (const NomadConfigError& e) {
    EXPECT_EQ(e.key, "node_selector_strategy");
    std::string what = e.what();
    EXPECT_NE(what.find("most_busy"), std::string::npos);
    EXPECT_NE(what.find("empty_ignore_system"), std::string::npos);
    EXPECT_NE(what.find("oldest_create_index"), std::string::npos);
  }
}
