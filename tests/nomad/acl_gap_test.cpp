// Nomad's silent ACL filtering of node allocations, modelled by the simulated
// Nomad, and the refusals that keep it from making busy nodes look empty.
#include <gtest/gtest.h>

#include <thread>

#include "cluster_sim/nomad/nomad_sim.h"
#include "nomad/acl_check.h"
#include "nomad/drain_coordinator.h"
#include "nomad/node_selector.h"
#include "nomad/nomad_api.h"
#include "nomad/nomad_error.h"

using namespace mps::nomad;
using mps::sim::NomadSim;
using mps::sim::NomadSimOptions;
using mps::sim::ParseSimAclToken;
using namespace std::chrono_literals;

namespace {

NomadConnectionConfig ConfigFor(const NomadSim& sim, const std::string& token = "") {
  std::map<std::string, std::string> keys = {{"nomad_address", sim.address()},
                                             {"nomad_block-query-wait-time", "2s"}};
  if (!token.empty()) keys["nomad_token"] = token;
  return FromConfigMap(keys, EnvFromMap({}));
}

NomadSimOptions WithTokens(std::initializer_list<const char*> specs) {
  NomadSimOptions o;
  for (const char* s : specs) o.tokens.push_back(ParseSimAclToken(s));
  return o;
}

std::string WaitReady(NomadSim& sim, const std::string& instance) {
  auto id = sim.RegisterNode(instance, "web");
  for (int i = 0; i < 200 && sim.NodeJson(id)->at("Status") != "ready"; ++i)
    std::this_thread::sleep_for(5ms);
  return id;
}

}  // namespace

TEST(SimAclToken, ParsesManagementAndClientSpecs) {
  auto m = ParseSimAclToken("root");
  EXPECT_TRUE(m.management);
  EXPECT_EQ(m.secret, "root");
  auto c = ParseSimAclToken("ops=default,prod-*;node=read");
  EXPECT_FALSE(c.management);
  EXPECT_EQ(c.read_job_namespaces, (std::vector<std::string>{"default", "prod-*"}));
  EXPECT_EQ(c.node_policy, "read");
  auto none = ParseSimAclToken("blind=");
  EXPECT_TRUE(none.read_job_namespaces.empty());
  EXPECT_EQ(none.node_policy, "write");
  EXPECT_THROW(ParseSimAclToken("=x"), std::invalid_argument);
  EXPECT_THROW(ParseSimAclToken("t=a;node=admin"), std::invalid_argument);
  EXPECT_THROW(ParseSimAclToken("t=a,,b"), std::invalid_argument);
}

TEST(NomadSimAcl, NodeAllocationsLeaveOutUnreadableNamespacesWithoutAnError) {
  NomadSim sim(WithTokens({"root", "narrow=default", "wide=*"}));
  sim.Start();
  auto node = sim.RegisterNode("web-1", "web");
  sim.AddAllocation(node, "service", "running", 100, 256, "default");
  sim.AddAllocation(node, "service", "running", 100, 256, "secret");

  EXPECT_EQ(NomadApi(ConfigFor(sim, "root"), 5s).GetNodeAllocations(node).value.size(), 2u);
  EXPECT_EQ(NomadApi(ConfigFor(sim, "wide"), 5s).GetNodeAllocations(node).value.size(), 2u);
  auto narrow = NomadApi(ConfigFor(sim, "narrow"), 5s).GetNodeAllocations(node).value;
  ASSERT_EQ(narrow.size(), 1u);
  EXPECT_EQ(narrow[0].namespace_name, "default");

  // Without ACLs everything is visible, as before.
  NomadSim open;
  open.Start();
  auto n2 = open.RegisterNode("web-2", "web");
  open.AddAllocation(n2, "service", "running", 100, 256, "secret");
  EXPECT_EQ(NomadApi(ConfigFor(open), 5s).GetNodeAllocations(n2).value.size(), 1u);
}

TEST(NomadSimAcl, NodePolicyGatesReadsAndWrites) {
  NomadSim sim(WithTokens({"reader=*;node=read", "denied=*;node=deny"}));
  sim.Start();
  auto node = sim.RegisterNode("web-1", "web");
  NomadApi reader(ConfigFor(sim, "reader"), 5s);
  EXPECT_EQ(reader.ListNodes(false).size(), 1u);
  try {
    reader.DrainNode(node, {}, {});
    ADD_FAILURE() << "a node:read token drained";
  } catch (const NomadError& e) {
    EXPECT_EQ(e.kind, NomadError::Kind::forbidden);
    EXPECT_NE(e.message.find("node:write"), std::string::npos) << e.message;
  }
  NomadApi denied(ConfigFor(sim, "denied"), 5s);
  EXPECT_THROW(denied.ListNodes(false), NomadError);
}

TEST(TokenCapabilities, ReadFromTheTokenAndItsPolicies) {
  NomadSim open;
  open.Start();
  auto off = ReadTokenCapabilities(NomadApi(ConfigFor(open), 5s));
  EXPECT_TRUE(off.acl_disabled);
  EXPECT_TRUE(off.ReadsJobsEverywhere());
  EXPECT_TRUE(off.NodeWrite());

  NomadSim sim(WithTokens({"root", "narrow=default,web;node=read", "wide=*", "blind="}));
  sim.Start();
  auto root = ReadTokenCapabilities(NomadApi(ConfigFor(sim, "root"), 5s));
  EXPECT_TRUE(root.management);
  EXPECT_TRUE(root.JobReadGap().empty());

  auto wide = ReadTokenCapabilities(NomadApi(ConfigFor(sim, "wide"), 5s));
  EXPECT_FALSE(wide.management);
  EXPECT_TRUE(wide.ReadsJobsEverywhere());
  EXPECT_TRUE(wide.NodeWrite());

  auto narrow = ReadTokenCapabilities(NomadApi(ConfigFor(sim, "narrow"), 5s));
  EXPECT_FALSE(narrow.ReadsJobsEverywhere());
  EXPECT_TRUE(narrow.NodeRead());
  EXPECT_FALSE(narrow.NodeWrite());
  auto gap = narrow.JobReadGap();
  EXPECT_NE(gap.find("lacks read-job in namespaces other than default, web"), std::string::npos)
      << gap;
  EXPECT_NE(gap.find("namespace \"*\""), std::string::npos) << gap;

  auto blind = ReadTokenCapabilities(NomadApi(ConfigFor(sim, "blind"), 5s));
  EXPECT_NE(blind.JobReadGap().find("lacks read-job in any namespace"), std::string::npos);

  // The anonymous token has no policy in the sim: it reads nothing.
  auto anonymous = ReadTokenCapabilities(NomadApi(ConfigFor(sim), 5s));
  EXPECT_FALSE(anonymous.ReadsJobsEverywhere());
  EXPECT_FALSE(anonymous.NodeRead());

  EXPECT_THROW(ReadTokenCapabilities(NomadApi(ConfigFor(sim, "nobody"), 5s)), NomadError);
}

TEST(TokenCapabilities, ReadJobProbePerNamespace) {
  NomadSim sim(WithTokens({"narrow=default"}));
  sim.Start();
  auto node = sim.RegisterNode("web-1", "web");
  sim.AddAllocation(node, "service", "running", 100, 256, "secret");
  NomadApi api(ConfigFor(sim, "narrow"), 5s);
  EXPECT_TRUE(api.CanReadJobs("default"));
  EXPECT_FALSE(api.CanReadJobs("secret"));
  EXPECT_EQ(api.ListNamespaces(), std::vector<std::string>{"default"});
  EXPECT_EQ(api.Leader(), "127.0.0.1:4647");
}

TEST(SelectNodes, EmptyStrategiesRefuseWhenAllocationListsMayBeIncomplete) {
  SelectionCandidate c;
  c.node.id = "n1";
  c.node.create_index = 1;
  c.allocations = std::vector<Allocation>{};
  const std::string gap = "the Nomad token 't' lacks read-job in namespace secret";
  for (auto s : {NodeSelectorStrategy::empty, NodeSelectorStrategy::empty_ignore_system}) {
    try {
      SelectNodes(s, {c}, 1, gap);
      ADD_FAILURE() << "strategy " << StrategyName(s) << " trusted an incomplete list";
    } catch (const NomadError& e) {
      EXPECT_EQ(e.kind, NomadError::Kind::forbidden);
      EXPECT_NE(e.message.find(std::string(StrategyName(s))), std::string::npos) << e.message;
      EXPECT_NE(e.message.find("namespace secret"), std::string::npos) << e.message;
    }
    EXPECT_EQ(SelectNodes(s, {c}, 1).node_ids, std::vector<std::string>{"n1"});
  }
  // Strategies that do not rely on emptiness are unaffected.
  EXPECT_EQ(SelectNodes(NodeSelectorStrategy::newest_create_index, {c}, 1, gap).node_ids,
            std::vector<std::string>{"n1"});
}

TEST(DrainCoordinator, RefusesATokenThatCannotReadEveryNamespaceAndDrainsNothing) {
  NomadSim sim(WithTokens({"narrow=default", "wide=*"}));
  sim.SetMigrationDelay(20ms);
  sim.Start();
  auto node = WaitReady(sim, "web-1");
  sim.AddAllocation(node, "service", "running", 100, 256, "secret");

  NomadApi narrow(ConfigFor(sim, "narrow"), 5s);
  DrainCoordinator refused(narrow, DrainOptions{});
  try {
    refused.DrainAll({node});
    ADD_FAILURE() << "drained with a token blind to namespace secret";
  } catch (const NomadError& e) {
    EXPECT_EQ(e.kind, NomadError::Kind::forbidden);
    EXPECT_NE(e.message.find("refusing to drain 1 node(s)"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("namespaces other than default"), std::string::npos) << e.message;
  }
  EXPECT_TRUE(sim.NodeJson(node)->at("DrainStrategy").is_null());  // nothing was drained

  NomadApi wide(ConfigFor(sim, "wide"), 5s);
  auto results = DrainCoordinator(wide, DrainOptions{}).DrainAll({node});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].outcome, DrainOutcome::drained) << results[0].reason;
}
