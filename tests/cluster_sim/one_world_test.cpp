// cluster-sim as one world: Multipass instances whose cloud-init configures
// a Nomad client join the simulated Nomad; deleted ones go down.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <filesystem>
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

// Several Multipass hosts in one world with one Nomad (issue 13): each its
// own socket, VMs and daemon_info; a host's daemon stops and comes back
// while its VMs keep running.
TEST(ClusterSimOneWorld, SeveralHostsShareOneNomadAndAHostCanStopAndComeBack) {
  mps::testing::TempDir dir;
  mps::testing::ChildOptions with_stdin;
  with_stdin.pipe_stdin = true;
  mps::testing::ChildProcess sim({mps::testing::BinDir() + "/cluster-sim",
                                  "--hosts",
                                  "3",
                                  "--multipass-socket-dir",
                                  dir.path(),
                                  "--state-dir",
                                  dir.path() + "/sim",
                                  "--host-cpus",
                                  "4,8,16",
                                  "--host-memory",
                                  "8G",
                                  "--boot-delay",
                                  "20ms",
                                  "--nomad-port",
                                  "0",
                                  "--join-delay",
                                  "20ms",
                                  "--passphrase",
                                  "sesame",
                                  "--ssh-delay",
                                  "1ms"},
                                 with_stdin);
  std::string nomad_address;
  std::vector<std::string> host_lines;
  for (;;) {
    auto line = sim.ReadLine(20s);
    ASSERT_TRUE(line) << sim.stderr_text();
    if (line->rfind("nomad ", 0) == 0) nomad_address = line->substr(6);
    if (line->rfind("host ", 0) == 0) host_lines.push_back(*line);
    if (*line == "ready") break;
  }
  ASSERT_EQ(host_lines.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    auto want = "host mp-" + std::to_string(i) + " unix:" + dir.path() + "/mp-" +
                std::to_string(i) + ".sock root-cert " + dir.path() + "/sim/mp-" +
                std::to_string(i) + "/";
    EXPECT_EQ(host_lines[i].rfind(want, 0), 0u) << host_lines[i];
  }
  httplib::Client nomad(nomad_address);

  std::vector<std::unique_ptr<mps::multipass::MultipassClient>> hosts;
  for (int i = 0; i < 3; ++i) {
    mps::multipass::MultipassClientOptions o;
    o.address = "unix:" + dir.path() + "/mp-" + std::to_string(i) + ".sock";
    o.state_dir = dir.path() + "/client";
    o.passphrase = "sesame";
    o.connect_timeout = 1s;
    hosts.push_back(std::make_unique<mps::multipass::MultipassClient>(o));
  }
  const std::int64_t cpus[] = {4, 8, 16};
  for (int i = 0; i < 3; ++i) {
    auto totals = hosts[i]->DaemonInfo();
    ASSERT_TRUE(totals);
    EXPECT_EQ(totals->cpus, cpus[i]);
    EXPECT_EQ(totals->memory_bytes, 8LL << 30);
  }
  for (int i = 0; i < 3; ++i) {
    mps::multipass::LaunchSpec spec;
    spec.name = "web-h" + std::to_string(i);
    spec.image = "noble";
    spec.cloud_init_user_data = kJoinsAsWeb;
    hosts[i]->Launch(spec);
  }
  // Each host lists its own VM only; every VM joins the one Nomad.
  for (int i = 0; i < 3; ++i) {
    auto listed = hosts[i]->List({}, /*addresses=*/false);
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].name, "web-h" + std::to_string(i));
  }
  EXPECT_EQ(WaitForNodes(nomad, 3, 5s).size(), 3u);

  ASSERT_TRUE(sim.WriteStdin("stop mp-1\n"));
  EXPECT_EQ(sim.ReadLine(10s), "stopped mp-1");
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/mp-1.sock"));
  try {
    hosts[1]->List({}, false);
    ADD_FAILURE() << "a stopped host answered";
  } catch (const mps::multipass::MultipassError& e) {
    EXPECT_EQ(e.kind, mps::multipass::MultipassError::Kind::unreachable) << e.message;
  }
  EXPECT_EQ(hosts[0]->List({}, false).size(), 1u);  // the others carry on

  ASSERT_TRUE(sim.WriteStdin("start mp-1\n"));
  EXPECT_EQ(sim.ReadLine(10s), "started mp-1");
  auto back = hosts[1]->List({}, false);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].name, "web-h1");
  EXPECT_EQ(back[0].state, mps::multipass::InstanceState::running);
  // Its VM kept running all along: its node never went down.
  for (const auto& n : Nodes(nomad)) EXPECT_EQ(n["Status"], "ready") << n.dump();

  sim.Signal(SIGTERM);
  EXPECT_EQ(sim.Wait(5s), 0) << sim.stderr_text();
}

TEST(ClusterSimOneWorld, PerHostValuesMustMatchTheHostCount) {
  mps::testing::TempDir dir;
  mps::testing::ChildProcess sim({mps::testing::BinDir() + "/cluster-sim", "--hosts", "3",
                                  "--multipass-socket-dir", dir.path(), "--host-cpus", "4,8"});
  EXPECT_EQ(sim.Wait(10s), 2);
  EXPECT_NE(sim.stderr_text().find("--host-cpus: expected one value or 3 (one per host), got 2"),
            std::string::npos)
      << sim.stderr_text();
  mps::testing::ChildProcess no_dir({mps::testing::BinDir() + "/cluster-sim", "--hosts", "2",
                                     "--multipass-socket", dir.path() + "/mp.sock"});
  EXPECT_EQ(no_dir.Wait(10s), 2);
  EXPECT_NE(no_dir.stderr_text().find("give --multipass-socket-dir DIR"), std::string::npos)
      << no_dir.stderr_text();
}
