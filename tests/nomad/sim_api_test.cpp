// NomadApi against the simulated Nomad: shapes, errors, blocking queries, ACLs.
#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>

#include "cluster_sim/nomad/cloud_init.h"
#include "cluster_sim/nomad/nomad_sim.h"
#include "nomad/node_pool_filter.h"
#include "nomad/nomad_api.h"
#include "nomad/nomad_error.h"
#include "support/refusing_port.h"

using namespace mps::nomad;
using mps::sim::NomadSim;
using mps::sim::NomadSimOptions;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

NomadConnectionConfig ConfigFor(const NomadSim& sim, std::string token = "") {
  std::map<std::string, std::string> keys = {{"nomad_address", sim.address()},
                                             {"nomad_block-query-wait-time", "2s"}};
  if (!token.empty()) keys["nomad_token"] = token;
  return FromConfigMap(keys, EnvFromMap({}));
}

NomadError::Kind KindOf(const std::function<void()>& call, std::string* message = nullptr) {
  try {
    call();
  } catch (const NomadError& e) {
    if (message) *message = e.message;
    return e.kind;
  }
  ADD_FAILURE() << "no NomadError thrown";
  return NomadError::Kind::bad_response;
}

}  // namespace

TEST(NomadSimApi, ListsStubsAndReadsFullNodes) {
  NomadSim sim;
  sim.Start();
  auto web = sim.RegisterNode("web-1", "web");
  sim.RegisterNode("db-1", "db", "dc2", "storage", 4000, 8192);
  NomadApi api(ConfigFor(sim), 5s);

  auto nodes = api.ListNodes(false);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_LT(nodes[0].id, nodes[1].id);  // node-ID order
  EXPECT_FALSE(nodes[0].node_resources);
  auto with = api.ListNodes(true);
  ASSERT_TRUE(with[0].node_resources);

  auto node = api.GetNode(web);
  EXPECT_EQ(node.value.id, web);
  EXPECT_EQ(node.value.node_class, "web");
  EXPECT_EQ(node.value.attributes.at("unique.hostname"), "web-1");
  EXPECT_FALSE(node.value.drain_strategy);
  EXPECT_GT(node.index, 0u);
  EXPECT_EQ(node.value.node_resources->cpu_shares, 2500);
  // The full node has no Drain key, the stub has one.
  auto raw = sim.NodeJson(web);
  ASSERT_TRUE(raw);
  EXPECT_FALSE(raw->contains("Drain"));
  EXPECT_TRUE(raw->at("DrainStrategy").is_null());
}

TEST(NomadSimApi, NodesGoFromInitializingToReady) {
  NomadSimOptions o;
  // Long enough that the reads below see "initializing" on a loaded machine
  // (at 100 ms they did not always).
  o.ready_delay = 1s;
  NomadSim sim(o);
  sim.Start();
  auto id = sim.RegisterNode("web-1", "web");
  NomadApi api(ConfigFor(sim), 5s);
  auto n = api.GetNode(id);
  EXPECT_EQ(n.value.status, "initializing");
  auto f = NodePoolFilter::FromPolicyConfig({{"node_class", "web"}});
  EXPECT_FALSE(f.Filter(api.ListNodes(false)).ok());
  // A blocking query on the node returns when it becomes ready.
  auto next = api.GetNode(id, BlockingQuery{n.index, 10s});
  EXPECT_EQ(next.value.status, "ready");
  EXPECT_TRUE(f.Filter(api.ListNodes(false)).ok());
}

TEST(NomadSimApi, FilterExpressionsAreEvaluatedOnTheFullNode) {
  NomadSim sim;
  sim.Start();
  sim.RegisterNode("web-1", "web");
  sim.RegisterNode("web-2", "web", "dc2");
  sim.RegisterNode("db-1", "db");
  NomadApi api(ConfigFor(sim), 5s);
  EXPECT_EQ(api.ListNodes(false, "NodeClass == \"web\"").size(), 2u);
  EXPECT_EQ(api.ListNodes(false, "NodeClass == \"web\" and Datacenter != \"dc2\"").size(), 1u);
  EXPECT_EQ(api.ListNodes(false, "Attributes[\"unique.hostname\"] matches \"^db-\"").size(), 1u);
  EXPECT_EQ(api.ListNodes(false, "not (NodeClass == `web`) or Name == \"web-2\"").size(), 2u);
  std::string msg;
  EXPECT_EQ(KindOf([&] { api.ListNodes(false, "NodeResources.Cpu.CpuShares == \"1\""); }, &msg),
            NomadError::Kind::bad_request);
  EXPECT_NE(msg.find("NodeResources.Cpu.CpuShares"), std::string::npos) << msg;
  EXPECT_EQ(KindOf([&] { api.ListNodes(false, "Meta is empty"); }, &msg),
            NomadError::Kind::bad_request);
  EXPECT_NE(msg.find("is"), std::string::npos) << msg;
}

TEST(NomadSimApi, UnknownNodesAreGoneForReadsAndWrites) {
  NomadSim sim;
  sim.Start();
  NomadApi api(ConfigFor(sim), 5s);
  const std::string ghost = "00000000-0000-0000-0000-000000000000";
  std::string msg;
  EXPECT_EQ(KindOf([&] { api.GetNode(ghost); }, &msg), NomadError::Kind::node_gone);
  EXPECT_NE(msg.find("404"), std::string::npos) << msg;
  EXPECT_EQ(KindOf([&] { api.DrainNode(ghost, {}, {}); }, &msg), NomadError::Kind::node_gone);
  EXPECT_NE(msg.find("500"), std::string::npos) << msg;
  EXPECT_EQ(KindOf([&] { api.SetEligibility(ghost, true); }), NomadError::Kind::node_gone);
  EXPECT_EQ(KindOf([&] { api.PurgeNode(ghost); }), NomadError::Kind::node_gone);
  EXPECT_EQ(KindOf([&] { api.GetAllocation(ghost); }), NomadError::Kind::not_found);
  EXPECT_TRUE(api.GetNodeAllocations(ghost).value.empty());
}

TEST(NomadSimApi, AclRefusalNamesTheMissingCapability) {
  NomadSimOptions o;
  o.acl_token = "right-token";
  NomadSim sim(o);
  sim.Start();
  auto id = sim.RegisterNode("web-1", "web");
  std::string msg;
  NomadApi anonymous(ConfigFor(sim), 5s);
  EXPECT_EQ(KindOf([&] { anonymous.ListNodes(false); }, &msg), NomadError::Kind::forbidden);
  EXPECT_NE(msg.find("Permission denied"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node:read"), std::string::npos) << msg;
  NomadApi wrong(ConfigFor(sim, "wrong-token"), 5s);
  EXPECT_EQ(KindOf([&] { wrong.DrainNode(id, {}, {}); }, &msg), NomadError::Kind::forbidden);
  EXPECT_NE(msg.find("ACL token not found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node:write"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("wrong-token"), std::string::npos) << "secret leaked: " << msg;
  NomadApi right(ConfigFor(sim, "right-token"), 5s);
  EXPECT_EQ(right.ListNodes(false).size(), 1u);
}

TEST(NomadSimApi, NomadDownIsUnreachableWithTheAddress) {
  mps::testing::RefusingPort closed;
  std::string address = "http://127.0.0.1:" + std::to_string(closed.port());
  NomadApi api(FromConfigMap({{"nomad_address", address}}, EnvFromMap({})), 2s);
  std::string msg;
  EXPECT_EQ(KindOf([&] { api.ListNodes(false); }, &msg), NomadError::Kind::unreachable);
  EXPECT_NE(msg.find(address), std::string::npos) << msg;
}

TEST(NomadSimApi, BlockingQueryReturnsOnChangeAndOnWaitTimeout) {
  NomadSim sim;
  sim.Start();
  auto id = sim.RegisterNode("web-1", "web");
  NomadApi api(ConfigFor(sim), 5s);
  auto first = api.GetNodeAllocations(id);
  EXPECT_TRUE(first.value.empty());

  // Timeout: nothing changes, the answer comes after about `wait` with the same index.
  auto t0 = Clock::now();
  auto same = api.GetNodeAllocations(id, BlockingQuery{first.index, 300ms});
  auto waited = Clock::now() - t0;
  EXPECT_EQ(same.index, first.index);
  EXPECT_GE(waited, 250ms);

  // Change: an allocation arrives while the query is held.
  std::thread adder([&] {
    std::this_thread::sleep_for(100ms);
    sim.AddAllocation(id, "service");
  });
  // (How soon after the change it is answered is measured by drain_bench.)
  auto changed = api.GetNodeAllocations(id, BlockingQuery{first.index, 5s});
  adder.join();
  EXPECT_GT(changed.index, first.index);
  ASSERT_EQ(changed.value.size(), 1u);
  EXPECT_EQ(changed.value[0].job_type, "service");
  EXPECT_EQ(changed.value[0].client_status, "running");
}

TEST(NomadSimApi, OwnNodeIsFoundThroughTheAllocation) {
  NomadSim sim;
  sim.Start();
  auto id = sim.RegisterNode("web-1", "web");
  auto alloc = sim.AddAllocation(id, "service");
  NomadApi api(ConfigFor(sim), 5s);
  EXPECT_EQ(FindOwnNodeId(api, EnvFromMap({{"NOMAD_ALLOC_ID", alloc}})), id);
  EXPECT_FALSE(FindOwnNodeId(api, EnvFromMap({})));
  EXPECT_EQ(api.AgentSelf().at("config").at("Region"), "global");
}

TEST(NomadSimApi, AdminSurfaceAddsNodesAndAllocations) {
  NomadSim sim;
  sim.Start();
  httplib::Client admin("127.0.0.1", sim.port());
  auto r =
      admin.Post("/sim/nodes", R"({"instance":"web-9","node_class":"web"})", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto id = nlohmann::json::parse(r->body).at("ID").get<std::string>();
  r = admin.Post("/sim/allocations", nlohmann::json{{"node_id", id}, {"job_type", "system"}}.dump(),
                 "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(sim.AllocationsJson(id).size(), 1u);
  r = admin.Post("/sim/nodes", R"({"instance":"web-9"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 409);  // still has a live node
  r = admin.Post("/sim/nodes/web-9/down", "", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NO_THROW(sim.RegisterNode("web-9", "web"));  // a down node's instance can re-register
  EXPECT_EQ(sim.NodeCount(), 2u);
}

TEST(CloudInit, FindsTheNodeClassOfTheNomadClientConfig) {
  const std::string user_data = R"(#cloud-config
write_files:
  - path: /etc/nomad.d/client.hcl
    content: |
      client {
        enabled    = true
        # node_class = "old"
        node_class = "web"
      }
)";
  EXPECT_EQ(mps::sim::NodeClassFromCloudInit(user_data), "web");
  EXPECT_EQ(mps::sim::NodeClassFromCloudInit("node_class='batch'\n"), "batch");
  EXPECT_EQ(mps::sim::NodeClassFromCloudInit("  \"node_class\": \"gpu\",\r\n"), "gpu");
  EXPECT_FALSE(mps::sim::NodeClassFromCloudInit("#cloud-config\npackages: [nomad]\n"));
  EXPECT_FALSE(mps::sim::NodeClassFromCloudInit("my_node_class = \"x\"\n"));
}
