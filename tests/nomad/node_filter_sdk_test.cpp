// The node filter against the autoscaler SDK's own cases
// (sdk/helper/scaleutils/nodepool/*_test.go and node_identifier_test.go of
// hashicorp/nomad-autoscaler), restated as facts about NodePoolFilter, plus the
// points where the SDK's rules are easy to get wrong: key presence, the order
// of the initializing and draining checks, and when the own node is dropped.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "nomad/node_pool_filter.h"
#include "nomad/nomad_error.h"

using namespace mps::nomad;

namespace {

NodeStub MakeStub(std::string id, std::string cls, std::string status = "ready", bool drain = false,
                  std::string eligibility = "eligible") {
  NodeStub n;
  n.id = std::move(id);
  n.node_class = std::move(cls);
  n.datacenter = "dc1";
  n.node_pool = "default";
  n.status = std::move(status);
  n.drain = drain;
  n.scheduling_eligibility = std::move(eligibility);
  return n;
}

NodeStub Where(std::string cls, std::string dc, std::string pool = "default") {
  NodeStub n = MakeStub("n", std::move(cls));
  n.datacenter = std::move(dc);
  n.node_pool = std::move(pool);
  return n;
}

bool Member(const std::map<std::string, std::string>& cfg, const NodeStub& n) {
  return NodePoolFilter::FromPolicyConfig(cfg).InPool(n);
}

std::vector<std::string> Ids(const std::vector<NodeStub>& nodes) {
  std::vector<std::string> ids;
  for (const auto& n : nodes) ids.push_back(n.id);
  return ids;
}

using Ids_ = std::vector<std::string>;

}  // namespace

// nodepool/class_test.go
TEST(SdkNodeClass, MembershipCases) {
  EXPECT_FALSE(Member({{"node_class", "foo"}}, MakeStub("n", "")));     // non-matched empty class
  EXPECT_FALSE(Member({{"node_class", "foo"}}, MakeStub("n", "bar")));  // non-matched non-empty
  EXPECT_TRUE(Member({{"node_class", "autoscaler-default-pool"}}, MakeStub("n", "")));  // default
  EXPECT_TRUE(Member({{"node_class", "foo"}}, MakeStub("n", "foo")));                   // matched
}

// class.go: `NodeClass != "" && NodeClass == id || NodeClass == "" && id == default`.
TEST(SdkNodeClass, PresentButEmptyClassMatchesNoNode) {
  EXPECT_FALSE(Member({{"node_class", ""}}, MakeStub("n", "")));
  EXPECT_FALSE(Member({{"node_class", ""}}, MakeStub("n", "web")));
  // The default pool's name as a real class is a member too.
  EXPECT_TRUE(Member({{"node_class", "autoscaler-default-pool"}},
                     MakeStub("n", "autoscaler-default-pool")));
  // An empty class still ANDs: it is an identifier, not "unset".
  EXPECT_FALSE(Member({{"node_class", ""}, {"datacenter", "dc1"}}, MakeStub("n", "web")));
}

// nodepool/datacenter_test.go
TEST(SdkNodeDatacenter, MembershipCases) {
  EXPECT_TRUE(Member({{"datacenter", "dc1"}}, Where("x", "dc1")));
  EXPECT_FALSE(Member({{"datacenter", "dc1"}}, Where("x", "eu-west-2a")));
  EXPECT_FALSE(Member({{"datacenter", "eu-west-2a"}}, Where("x", "eu-west-2b")));
  // Present but empty: only nodes whose datacenter is empty.
  EXPECT_FALSE(Member({{"datacenter", ""}}, Where("x", "dc1")));
  EXPECT_TRUE(Member({{"datacenter", ""}}, Where("x", "")));
}

// nodepool/pool_test.go
TEST(SdkNodePool, MembershipCases) {
  EXPECT_FALSE(Member({{"node_pool", "foo"}}, Where("x", "dc1", "bar")));
  EXPECT_TRUE(Member({{"node_pool", "foo"}}, Where("x", "dc1", "foo")));
  EXPECT_FALSE(Member({{"node_pool", ""}}, Where("x", "dc1", "default")));
}

// nodepool/combined_test.go
TEST(SdkCombined, IdentifiersAreAnded) {
  std::map<std::string, std::string> cls = {{"node_class", "test-class"}};
  EXPECT_TRUE(Member(cls, Where("test-class", "dc1")));
  EXPECT_FALSE(Member(cls, Where("other-class", "dc1")));

  std::map<std::string, std::string> dc = {{"datacenter", "dc1"}};
  EXPECT_TRUE(Member(dc, Where("test-class", "dc1")));
  EXPECT_FALSE(Member(dc, Where("test-class", "dc2")));

  std::map<std::string, std::string> both = {{"node_class", "test-class"}, {"datacenter", "dc1"}};
  EXPECT_TRUE(Member(both, Where("test-class", "dc1")));
  EXPECT_FALSE(Member(both, Where("test-class", "dc2")));
  EXPECT_FALSE(Member(both, Where("other-class", "dc1")));
  EXPECT_FALSE(Member(both, Where("other-class", "dc2")));

  std::map<std::string, std::string> three = {
      {"node_class", "test-class"}, {"datacenter", "dc1"}, {"node_pool", "gpu"}};
  EXPECT_TRUE(Member(three, Where("test-class", "dc1", "gpu")));
  EXPECT_FALSE(Member(three, Where("test-class", "dc1", "default")));
  EXPECT_FALSE(Member(three, Where("test-class", "dc2", "gpu")));
}

// nodepool/nodepool_test.go
TEST(SdkIdentifierList, NeedsAtLeastOnePresentKey) {
  for (const auto& cfg :
       std::vector<std::map<std::string, std::string>>{{}, {{"datacentre", "dc1"}}}) {
    try {
      NodePoolFilter::FromPolicyConfig(cfg);
      ADD_FAILURE() << "expected an error";
    } catch (const NomadConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("node pool identification method required"),
                std::string::npos);
    }
  }
  auto count = [](const std::map<std::string, std::string>& cfg) {
    auto f = NodePoolFilter::FromPolicyConfig(cfg);
    return int(f.node_class.has_value()) + int(f.datacenter.has_value()) +
           int(f.node_pool.has_value());
  };
  EXPECT_EQ(count({{"datacenter", "dc1"}}), 1);
  EXPECT_EQ(count({{"node_class", "high-memory"}}), 1);
  EXPECT_EQ(count({{"node_pool", "gpu"}}), 1);
  EXPECT_EQ(count({{"node_class", "high-memory"}, {"datacenter", "dc1"}}), 2);
  EXPECT_EQ(count({{"node_pool", "gpu"}, {"datacenter", "dc1"}}), 2);
  EXPECT_EQ(count({{"node_class", "high-memory"}, {"node_pool", "gpu"}, {"datacenter", "dc1"}}), 3);
  // Presence, not value, makes an identifier.
  EXPECT_EQ(count({{"node_class", ""}}), 1);
}

// node_identifier_test.go, Test_FilterNodes
TEST(SdkFilterNodes, NamedClassFromManyClasses) {
  auto f = NodePoolFilter::FromPolicyConfig({{"node_class", "super-test-class"}});
  auto r = f.Filter({MakeStub("super-test-class-1", "super-test-class"),
                     MakeStub("super-test-class-3", "super-test-class"),
                     MakeStub("worst-test-class-1", "worst-test-class"),
                     MakeStub("worst-test-class-2", "worst-test-class"),
                     MakeStub("no-test-class-2", "")});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(Ids(r.kept), (Ids_{"super-test-class-1", "super-test-class-3"}));
}

TEST(SdkFilterNodes, DefaultClassFromManyClasses) {
  auto f = NodePoolFilter::FromPolicyConfig({{"node_class", "autoscaler-default-pool"}});
  auto r = f.Filter(
      {MakeStub("super-test-class-1", "super-test-class"),
       MakeStub("super-test-class-2", "super-test-class", "down", false, "ineligible"),
       MakeStub("super-test-class-3", "super-test-class"),
       MakeStub("worst-test-class-1", "worst-test-class"),
       MakeStub("worst-test-class-2", "worst-test-class"), MakeStub("no-test-class-1", "")});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(Ids(r.kept), Ids_{"no-test-class-1"});
}

TEST(SdkFilterNodes, OnlyReadyAndEligibleNodes) {
  auto f = NodePoolFilter::FromPolicyConfig({{"node_class", "lionel"}});
  auto r = f.Filter({MakeStub("node-ready-eligible", "lionel"),
                     MakeStub("node-ready-ineligible", "lionel", "ready", false, "ineligible"),
                     MakeStub("node-down-eligible", "lionel", "down"),
                     MakeStub("node-down-ineligible", "lionel", "down", false, "ineligible")});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(Ids(r.kept), Ids_{"node-ready-eligible"});
}

TEST(SdkFilterNodes, InitializingNodeIsAnErrorAndEmptiesTheResult) {
  auto f = NodePoolFilter::FromPolicyConfig({{"node_class", "lionel"}});
  auto r = f.Filter({MakeStub("node1", "lionel"), MakeStub("node2", "lionel", "initializing")});
  EXPECT_EQ(r.errors, Ids_{"node node2 is initializing"});
  EXPECT_TRUE(r.kept.empty());
}

TEST(SdkFilterNodes, DrainingNodeIsAnErrorAndEmptiesTheResult) {
  auto f = NodePoolFilter::FromPolicyConfig({{"node_class", "lionel"}});
  auto r = f.Filter(
      {MakeStub("node1", "lionel"), MakeStub("node2", "lionel", "ready", true, "ineligible")});
  EXPECT_EQ(r.errors, Ids_{"node node2 is draining"});
  EXPECT_TRUE(r.kept.empty());
}

TEST(SdkFilterNodes, AtMostTenErrors) {
  auto f = NodePoolFilter::FromPolicyConfig({{"node_class", "lionel"}});
  std::vector<NodeStub> nodes;
  Ids_ expected;
  for (int i = 1; i <= 11; ++i) {
    nodes.push_back(MakeStub("node" + std::to_string(i), "lionel", "ready", true, "ineligible"));
    if (i <= 10) expected.push_back("node node" + std::to_string(i) + " is draining");
  }
  auto r = f.Filter(nodes);
  EXPECT_EQ(r.errors, expected);
  EXPECT_TRUE(r.kept.empty());
}

// node_identifier_test.go, Test_FilterNodesWithOptions
TEST(SdkFilterNodesWithOptions, IneligibleNodes) {
  std::vector<NodeStub> nodes = {
      MakeStub("node-ready-eligible", "lionel"),
      MakeStub("node-ready-ineligible", "lionel", "ready", false, "ineligible")};
  auto with = NodePoolFilter::FromPolicyConfig(
      {{"node_class", "lionel"}, {"node_filter_ignore_ineligible", "true"}});
  EXPECT_EQ(Ids(with.Filter(nodes).kept), (Ids_{"node-ready-eligible", "node-ready-ineligible"}));

  auto without = NodePoolFilter::FromPolicyConfig(
      {{"node_class", "lionel"}, {"node_filter_ignore_ineligible", "false"}});
  EXPECT_EQ(Ids(without.Filter(nodes).kept), Ids_{"node-ready-eligible"});

  auto only_ineligible = without.Filter(std::vector<NodeStub>{nodes[1]});
  EXPECT_TRUE(only_ineligible.ok());
  EXPECT_TRUE(only_ineligible.kept.empty());
}

// FilterNodesWithOptions tests `initializing` before `draining`.
TEST(SdkFilterNodesWithOptions, InitializingIsCheckedBeforeDraining) {
  auto both = MakeStub("n", "web", "initializing", true, "ineligible");
  auto strict = NodePoolFilter::FromPolicyConfig({{"node_class", "web"}});
  EXPECT_EQ(strict.Filter(std::vector<NodeStub>{both}).errors, Ids_{"node n is initializing"});

  // Tolerating drains does not tolerate the initializing node.
  auto ignore_drain = NodePoolFilter::FromPolicyConfig(
      {{"node_class", "web"}, {"node_filter_ignore_drain", "true"}});
  EXPECT_EQ(ignore_drain.Filter(std::vector<NodeStub>{both}).errors,
            Ids_{"node n is initializing"});

  // Tolerating initializing nodes still reports the drain.
  auto ignore_init = NodePoolFilter::FromPolicyConfig(
      {{"node_class", "web"}, {"node_filter_ignore_init", "true"}});
  EXPECT_EQ(ignore_init.Filter(std::vector<NodeStub>{both}).errors, Ids_{"node n is draining"});

  auto ignore_both = NodePoolFilter::FromPolicyConfig({{"node_class", "web"},
                                                       {"node_filter_ignore_init", "true"},
                                                       {"node_filter_ignore_drain", "true"}});
  auto r = ignore_both.Filter({both, MakeStub("ok", "web")});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(Ids(r.kept), Ids_{"ok"});  // tolerated, but never a candidate
}

// node_identifier_test.go, Test_filterOutNodeID, and cluster.go's order:
// FilterNodesWithOptions first, then filterOutNodeID.
TEST(SdkOwnNode, DroppedFromTheKeptNodes) {
  auto f = NodePoolFilter::FromPolicyConfig({{"node_class", "c"}});
  std::vector<NodeStub> nodes = {MakeStub("foo1", "c"), MakeStub("foo2", "c"),
                                 MakeStub("foo3", "c"), MakeStub("foo4", "c"),
                                 MakeStub("foo5", "c")};
  EXPECT_EQ(Ids(f.Filter(nodes, "").kept), (Ids_{"foo1", "foo2", "foo3", "foo4", "foo5"}));
  EXPECT_EQ(Ids(f.Filter(nodes, "foo2").kept), (Ids_{"foo1", "foo3", "foo4", "foo5"}));
  EXPECT_EQ(Ids(f.Filter(nodes, "bar1").kept), (Ids_{"foo1", "foo2", "foo3", "foo4", "foo5"}));
}

TEST(SdkOwnNode, ItsStateStillCountsAsAnError) {
  auto f = NodePoolFilter::FromPolicyConfig({{"node_class", "c"}});
  auto r = f.Filter({MakeStub("ready", "c"), MakeStub("self", "c", "ready", true, "ineligible")},
                    "self");
  EXPECT_EQ(r.errors, Ids_{"node self is draining"});
  EXPECT_TRUE(r.kept.empty());

  auto init = f.Filter({MakeStub("ready", "c"), MakeStub("self", "c", "initializing")}, "self");
  EXPECT_EQ(init.errors, Ids_{"node self is initializing"});
}
