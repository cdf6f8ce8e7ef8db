// cluster-sim as one world: Multipass instances whose cloud-init configures
// a Nomad client join the simulated Nomad; deleted ones go down.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <thread>

#include "multipass/multipass_client.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

json Nodes(httplib::Client& nomad) {
  auto res = nomad.Get("/v1/nodes");
  if (!res || res->status != 200) return json::array();
  return json::parse(res->body);
}

json WaitForNodes(httplib::Client& nomad, std::size_t n, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  json nodes;
  while (std::chrono::steady_clock::now() < deadline) {
    nodes = Nodes(nomad);
    if (nodes.size() >= n) break;
    std::this_thread::sleep_for(20ms);
  }
  return nodes;
}

std::string NodeStatus(httplib::Client& nomad, const std::string& id) {
  auto res = nomad.Get("/v1/node/" + id);
  if (!res || res->status != 200) return "";
  return json::parse(res->body)["Status"];
}

// Waits until the node's status is `want`; returns the last status seen.
std::string WaitForStatus(httplib::Client& nomad, const std::string& id, const std::string& want) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  std::string status;
  while (std::chrono::steady_clock::now() < deadline) {
    status = NodeStatus(nomad, id);
    if (status == want) break;
    std::this_thread::sleep_for(10ms);
  }
  return status;
}

const char* const kJoinsAsWeb =
    "#cloud-config\nwrite_files:\n  - path: /etc/nomad.d/client.hcl\n    content: |\n"
    "      client {\n        enabled = true\n        node_class = \"web\"\n      }\n";

}  // namespace

TEST(ClusterSimOneWorld, InstancesJoinNomadByTheirCloudInitAndGoDownWhenDeleted) {
  mps::testing::TempDir dir;
  mps::testing::ChildProcess sim(
      {mps::testing::BinDir() + "/cluster-sim", "--state-dir", dir.path() + "/sim",
       "--multipass-socket", dir.path() + "/mp.sock", "--boot-delay", "50ms", "--nomad-port", "0",
       "--join-delay", "200ms", "--passphrase", "sesame", "--ssh-delay", "1ms"});
  std::string nomad_address;
  for (;;) {
    auto line = sim.ReadLine(20s);
    ASSERT_TRUE(line) << sim.stderr_text();
    if (line->rfind("nomad ", 0) == 0) nomad_address = line->substr(6);
    if (*line == "ready") break;
  }
  ASSERT_EQ(nomad_address.rfind("http://127.0.0.1:", 0), 0u) << nomad_address;
  httplib::Client nomad(nomad_address);

  mps::multipass::MultipassClientOptions o;
  o.address = "unix:" + dir.path() + "/mp.sock";
  o.state_dir = dir.path() + "/client";
  o.passphrase = "sesame";  // a used host: the daemon knows only the CLI
  mps::multipass::MultipassClient client(o);
  mps::multipass::LaunchSpec joins;
  joins.name = "web-j1";
  joins.image = "noble";
  joins.cloud_init_user_data =
      "#cloud-config\nwrite_files:\n  - path: /etc/nomad.d/client.hcl\n    content: |\n"
      "      client {\n        enabled = true\n        node_class = \"web\"\n      }\n";
  client.Launch(joins);
  mps::multipass::LaunchSpec never = joins;
  never.name = "web-j2";
  never.cloud_init_user_data = "#cloud-config\npackages: [curl]\n";
  client.Launch(never);

  auto nodes = WaitForNodes(nomad, 1, 5s);
  ASSERT_EQ(nodes.size(), 1u) << nodes.dump();
  EXPECT_EQ(nodes[0]["NodeClass"], "web");
  std::string id = nodes[0]["ID"];
  auto node = nomad.Get("/v1/node/" + id);
  ASSERT_TRUE(node);
  EXPECT_EQ(json::parse(node->body)["Attributes"]["unique.hostname"], "web-j1");
  // The sim has looked at web-j2's cloud-init and decided it never joins:
  // from then on no node can appear for it.
  ASSERT_TRUE(sim.WaitForStderr("web-j2 has no Nomad node_class", 5s)) << sim.stderr_text();
  EXPECT_EQ(Nodes(nomad).size(), 1u);

  client.Delete({"web-j1"});
  auto deadline = std::chrono::steady_clock::now() + 5s;
  std::string status;
  while (std::chrono::steady_clock::now() < deadline && status != "down") {
    status = json::parse(nomad.Get("/v1/node/" + id)->body)["Status"];
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(status, "down");
  sim.Signal(SIGTERM);
  EXPECT_EQ(sim.Wait(5s), 0) << sim.stderr_text();
}

TEST(ClusterSimOneWorld, AStoppedInstancesNodeGoesDownAndComesBackUnderItsIdWhenStarted) {
  mps::testing::TempDir dir;
  mps::testing::ChildProcess sim({mps::testing::BinDir() + "/cluster-sim",
                                  "--state-dir",
                                  dir.path() + "/sim",
                                  "--multipass-socket",
                                  dir.path() + "/mp.sock",
                                  "--boot-delay",
                                  "50ms",
                                  "--start-delay",
                                  "20ms",
                                  "--nomad-port",
                                  "0",
                                  "--join-delay",
                                  "50ms",
                                  "--restart-join-delay",
                                  "30ms",
                                  "--heartbeat-delay",
                                  "40ms",
                                  "--passphrase",
                                  "sesame",
                                  "--ssh-delay",
                                  "1ms"});
  std::string nomad_address;
  for (;;) {
    auto line = sim.ReadLine(20s);
    ASSERT_TRUE(line) << sim.stderr_text();
    if (line->rfind("nomad ", 0) == 0) nomad_address = line->substr(6);
    if (*line == "ready") break;
  }
  httplib::Client nomad(nomad_address);
  mps::multipass::MultipassClientOptions o;
  o.address = "unix:" + dir.path() + "/mp.sock";
  o.state_dir = dir.path() + "/client";
  o.passphrase = "sesame";
  mps::multipass::MultipassClient client(o);
  mps::multipass::LaunchSpec spec;
  spec.name = "web-s1";
  spec.image = "noble";
  spec.cloud_init_user_data = kJoinsAsWeb;
  client.Launch(spec);
  auto nodes = WaitForNodes(nomad, 1, 5s);
  ASSERT_EQ(nodes.size(), 1u) << nodes.dump();
  const std::string id = nodes[0]["ID"];
  ASSERT_EQ(WaitForStatus(nomad, id, "ready"), "ready");
  // What a warm pool does before stopping: the node takes no work.
  auto ineligible =
      nomad.Post("/v1/node/" + id + "/eligibility",
                 R"({"NodeID":")" + id + R"(","Eligibility":"ineligible"})", "application/json");
  ASSERT_TRUE(ineligible && ineligible->status == 200) << (ineligible ? ineligible->body : "");

  client.Stop({"web-s1"});
  EXPECT_EQ(WaitForStatus(nomad, id, "down"), "down");
  client.Start({"web-s1"});
  EXPECT_EQ(WaitForStatus(nomad, id, "ready"), "ready");
  nodes = Nodes(nomad);
  ASSERT_EQ(nodes.size(), 1u) << nodes.dump();  // the same node, not a second one
  EXPECT_EQ(nodes[0]["ID"], id);
  EXPECT_EQ(nodes[0]["SchedulingEligibility"], "ineligible");  // Nomad keeps it across restarts

  // Stopped, then deleted and its node purged: started again it would not
  // exist; a client restarted after a purge re-registers under its old ID.
  client.Stop({"web-s1"});
  ASSERT_EQ(WaitForStatus(nomad, id, "down"), "down");
  auto purge = nomad.Post("/v1/node/" + id + "/purge", "", "application/json");
  ASSERT_TRUE(purge && purge->status == 200);
  ASSERT_TRUE(Nodes(nomad).empty());
  client.Start({"web-s1"});
  EXPECT_EQ(WaitForStatus(nomad, id, "ready"), "ready");
  sim.Signal(SIGTERM);
  EXPECT_EQ(sim.Wait(5s), 0) << sim.stderr_text();
}
