// Scale end to end: the go-plugin host drives multipass-target (split mode)
// against a real multipass-hostd and cluster-sim's Multipass and Nomad.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "bus/keys.h"
#include "scale_world.h"

using json = nlohmann::json;
using namespace std::chrono_literals;
using testing::HasSubstr;

namespace {

std::string Meta(const json& status, const std::string& key) {
  const auto& meta = status["values"]["meta"];
  return meta.contains(key) ? meta[key].get<std::string>() : "";
}

std::set<std::string> NodeNames(const std::vector<json>& nodes) {
  std::set<std::string> names;
  for (const auto& n : nodes) names.insert(n["Name"].get<std::string>());
  return names;
}

// A loopback port P with P + 1 also free (the status endpoint's events go
// there): both are bound on 127.0.0.1 to check, then released.
int FreePortPair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int a = socket(AF_INET, SOCK_STREAM, 0), b = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = -1;
    if (bind(a, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        getsockname(a, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      int p = ntohs(addr.sin_port);
      addr.sin_port = htons(static_cast<std::uint16_t>(p + 1));
      if (p < 65535 && bind(b, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) port = p;
    }
    close(a);
    close(b);
    if (port > 0) return port;
  }
  return -1;
}

TEST(ScaleEndToEnd, StatusEndpointOverTcpAdmitsOnlyListedKeys) {
  mps::test::ScaleWorld world;
  std::string keys = world.dir() + "/keys";
  mps::bus::WriteKeyPair(keys + "/status", "status", mps::bus::GenerateKeyPair());
  mps::bus::WriteKeyPair(keys + "/operators", "operator", mps::bus::GenerateKeyPair());
  mps::bus::WriteKeyPair(keys + "/elsewhere", "stranger", mps::bus::GenerateKeyPair());
  int port = FreePortPair();
  ASSERT_GT(port, 0);
  std::string address = "tcp://127.0.0.1:" + std::to_string(port);
  world.StartHostd();
  world.StartPlugin({{"status_address", address},
                     {"status_server_key_path", keys + "/status/status.key"},
                     {"status_authorized_keys_path", keys + "/operators"}});
  ASSERT_EQ(world.Status(10000)["values"]["ready"], true);
  auto ok = mps::test::ScaleWorld::RunMpscale({"status", "--address", address, "--server-key",
                                               keys + "/status/status.pub", "--key",
                                               keys + "/operators/operator.key", "--json"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(json::parse(ok.out)["pools"][0]["pool"], "web");
  auto events = mps::test::ScaleWorld::RunMpscale({"events", "--address", address, "--server-key",
                                                   keys + "/status/status.pub", "--key",
                                                   keys + "/operators/operator.key"});
  EXPECT_EQ(events.exit_code, 0) << events.err;
  auto refused = mps::test::ScaleWorld::RunMpscale(
      {"status", "--address", address, "--server-key", keys + "/status/status.pub", "--key",
       keys + "/elsewhere/stranger.key", "--timeout", "2"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("refused")) << refused.err;
}

TEST(ScaleEndToEnd, OutInParallelThenInKeepsTheBusyNodes) {
  mps::test::ScaleWorld world({"1s", "200ms", "300ms", ""});
  world.policy["node_selector_strategy"] = "empty";
  world.StartHostd();
  world.StartPlugin();
  auto s = world.Status(10000);
  ASSERT_TRUE(s["ok"]) << s;
  EXPECT_EQ(s["values"]["ready"], true) << s;
  EXPECT_EQ(s["values"]["count"], 0);

  int scale = world.Send({{"op", "Scale"},
                          {"config", world.policy},
                          {"action", {{"count", 5}, {"reason", "cpu"}, {"direction", "up"}}}},
                         /*async=*/true);
  // While the launches run: counted, not ready.
  bool seen_not_ready = false;
  for (int i = 0; i < 100 && !seen_not_ready; ++i) {
    auto during = world.Status();
    seen_not_ready = during["values"]["count"] == 5 && during["values"]["ready"] == false;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(seen_not_ready);
  auto r = world.Await(scale, 60s);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  // That the launches run in parallel is measured by scale_bench (0 -> 16
  // against 0 -> 1).
  s = world.Status(15000);
  EXPECT_EQ(s["values"]["ready"], true) << s;
  EXPECT_EQ(s["values"]["count"], 5);
  EXPECT_FALSE(Meta(s, "nomad_autoscaler.last_event").empty()) << s;
  ASSERT_EQ(world.Instances().size(), 5u);
  ASSERT_EQ(world.Nodes().size(), 5u);

  // Two busy nodes, three empty: "empty" removes the three empty ones.
  auto nodes = world.Nodes();
  std::set<std::string> busy;
  for (int i = 0; i < 2; ++i) {
    world.AddAllocation(nodes[i]["ID"]);
    busy.insert(nodes[i]["Name"].get<std::string>());
  }
  r = world.Scale(2);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  s = world.Status(15000);
  EXPECT_EQ(s["values"]["ready"], true) << s;
  EXPECT_EQ(s["values"]["count"], 2);
  std::set<std::string> left;
  for (const auto& [name, state] : world.Instances()) left.insert(name);
  EXPECT_EQ(left, busy);
  EXPECT_EQ(NodeNames(world.Nodes()), busy);  // node_purge: the drained nodes are gone
  // A Scale to the current count changes nothing.
  r = world.Scale(2);
  EXPECT_EQ(r["code"], "Aborted") << r;

  // The status endpoint, read with the real mpscale: one stream with every
  // step of both scales, numbered, each naming the pool.
  auto events = world.Mpscale({"events", "--json"});
  std::map<std::string, int> seen;
  std::uint64_t last_seq = 0;
  for (const auto& line : events) {
    auto e = json::parse(line);
    EXPECT_EQ(e["pool"], "web") << line;
    EXPECT_EQ(e["seq"].get<std::uint64_t>(), last_seq + 1) << line;
    last_seq = e["seq"];
    // A reconciliation is a scale of its own; these counts are the two Scale calls'.
    if (e["fields"].value("request_id", "").rfind("reconcile-", 0) == 0) continue;
    ++seen[e["type"]];
  }
  EXPECT_EQ(seen["scale.requested"], 3);
  EXPECT_EQ(seen["scale.completed"], 2);
  EXPECT_EQ(seen["instance.launching"], 5);
  EXPECT_EQ(seen["instance.running"], 5);
  EXPECT_EQ(seen["node.registered"], 5);
  EXPECT_EQ(seen["node.draining"], 3);
  EXPECT_EQ(seen["node.drained"], 3);
  EXPECT_EQ(seen["instance.deleted"], 3);
  std::string stream;  // for the messages below
  for (const auto& line : events) stream += line + "\n";
  EXPECT_EQ(seen["node.purged"], 3) << stream;
  std::string text;
  for (const auto& line : world.Mpscale({"status", "--json"})) text += line + "\n";
  auto view = json::parse(text);
  EXPECT_EQ(view["pools"][0]["pool"], "web");
  EXPECT_EQ(view["pools"][0]["count"], 2);
  EXPECT_EQ(view["pools"][0]["ready"], true);
}

// Nomad leaves the allocations of namespaces the token cannot read out of a
// node's list: with such a token "empty" would remove a busy node. The scale
// in is refused with the namespaces named, and nothing is drained or deleted.
TEST(ScaleEndToEnd, EmptySelectorRefusesATokenBlindToANamespace) {
  mps::test::SimOptions sim;
  sim.nomad_tokens = {"root", "narrow=default"};
  mps::test::ScaleWorld world(sim);
  world.policy["node_selector_strategy"] = "empty";
  world.StartHostd();
  world.StartPlugin({{"nomad_token", "narrow"}});
  auto r = world.Scale(2);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  ASSERT_TRUE(world.Status(15000)["values"]["ready"]) << world.host_stderr();
  auto nodes = world.Nodes();
  ASSERT_EQ(nodes.size(), 2u);
  world.AddAllocation(nodes[0]["ID"], "secret");  // invisible to the plugin's token

  r = world.Scale(1);
  EXPECT_FALSE(r["ok"]) << r;
  EXPECT_THAT(r.dump(), HasSubstr("lacks read-job in namespaces other than default")) << r;
  EXPECT_EQ(world.Instances().size(), 2u);
  for (const auto& n : world.Nodes()) EXPECT_FALSE(n["Drain"].get<bool>()) << n;
}

TEST(ScaleEndToEnd, LeastBusyDrainsTheLeastLoadedNode) {
  mps::test::ScaleWorld world;
  world.policy["node_selector_strategy"] = "least_busy";
  world.StartHostd();
  world.StartPlugin();
  ASSERT_TRUE(world.Scale(3)["ok"]) << world.host_stderr();
  ASSERT_EQ(world.Status(15000)["values"]["ready"], true);
  auto nodes = world.Nodes();
  ASSERT_EQ(nodes.size(), 3u);
  world.AddAllocation(nodes[0]["ID"]);
  world.AddAllocation(nodes[0]["ID"]);
  world.AddAllocation(nodes[1]["ID"]);
  auto r = world.Scale(2);
  ASSERT_TRUE(r["ok"]) << r;
  auto left = NodeNames(world.Nodes());
  EXPECT_EQ(left.size(), 2u);
  EXPECT_FALSE(left.contains(nodes[2]["Name"].get<std::string>()));  // the idle one went
}

TEST(ScaleEndToEnd, MaxInstancesIsNeverExceeded) {
  mps::test::ScaleWorld world;
  world.StartHostd();
  world.StartPlugin();
  ASSERT_EQ(world.Status(10000)["values"]["ready"], true);
  auto r = world.Scale(7);
  EXPECT_EQ(r["code"], "FailedPrecondition") << r;
  EXPECT_THAT(r["message"].get<std::string>(), HasSubstr("max_instances")) << r;
  EXPECT_TRUE(world.Instances().empty());
}

TEST(ScaleEndToEnd, InstanceThatNeverJoinsIsReplaced) {
  mps::test::ScaleWorld world;
  world.policy["node_registration_timeout"] = "2s";
  world.LaunchDirect("web-stuck1", "#cloud-config\n");  // no node_class: never joins
  world.StartHostd();
  world.StartPlugin();
  auto s = world.Status();
  EXPECT_EQ(s["values"]["ready"], false);
  s = world.Status(20000);
  ASSERT_EQ(s["values"]["ready"], true) << s << world.host_stderr();
  EXPECT_EQ(s["values"]["count"], 1);
  auto instances = world.Instances();
  EXPECT_FALSE(instances.contains("web-stuck1"));
  EXPECT_EQ(instances.size(), 1u);
  EXPECT_EQ(world.Nodes().size(), 1u);
}

TEST(ScaleEndToEnd, HostdKilledDuringScaleOutEndsAtTargetWithoutOrphansOrDuplicates) {
  mps::test::ScaleWorld world({"2s", "200ms", "300ms", ""});
  world.StartHostd();
  world.StartPlugin();
  ASSERT_EQ(world.Status(10000)["values"]["ready"], true);
  int scale = world.Send(
      {{"op", "Scale"}, {"config", world.policy}, {"action", {{"count", 4}, {"direction", "up"}}}},
      true);
  // Kill hostd once the daemon has the launches.
  for (int i = 0; i < 200 && world.Instances().size() < 2; ++i) std::this_thread::sleep_for(10ms);
  world.KillHostd();
  std::this_thread::sleep_for(500ms);
  world.StartHostd();
  auto r = world.Await(scale, 90s);  // succeeds or reports what it could not confirm
  auto s = world.Status(60000);
  ASSERT_EQ(s["values"]["ready"], true) << s << r << world.host_stderr();
  EXPECT_EQ(s["values"]["count"], 4);
  auto instances = world.Instances();
  EXPECT_EQ(instances.size(), 4u);
  for (const auto& [name, state] : instances) EXPECT_EQ(state, "running") << name;
  EXPECT_EQ(world.Nodes().size(), 4u);
}

TEST(ScaleEndToEnd, TargetKilledDuringScaleInIsResumedFromItsState) {
  mps::test::ScaleWorld world({"300ms", "200ms", "3s", ""});
  world.StartHostd();
  world.StartPlugin();
  ASSERT_TRUE(world.Scale(3)["ok"]) << world.host_stderr();
  ASSERT_EQ(world.Status(15000)["values"]["ready"], true);
  for (const auto& n : world.Nodes()) world.AddAllocation(n["ID"]);  // drains take 3 s
  int scale = world.Send({{"op", "Scale"},
                          {"config", world.policy},
                          {"action", {{"count", 1}, {"direction", "down"}}}},
                         true);
  bool draining = false;
  for (int i = 0; i < 200 && !draining; ++i) {
    draining = Meta(world.Status(), "mps.not_ready").find("drain of") != std::string::npos;
    if (!draining) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(draining);
  world.KillPluginProcess();
  auto r = world.Await(scale, 10s);
  EXPECT_FALSE(r["ok"]) << r;
  world.StopHost();

  world.StartPlugin();  // a new plugin process on the same state_dir
  auto s = world.Status(40000);
  ASSERT_EQ(s["values"]["ready"], true) << s << world.host_stderr();
  EXPECT_EQ(s["values"]["count"], 1);
  EXPECT_EQ(world.Instances().size(), 1u);
  EXPECT_EQ(world.Nodes().size(), 1u);
}

TEST(ScaleEndToEnd, NomadUnreachableDuringScaleInDeletesNothing) {
  mps::test::ScaleWorld world;
  world.StartHostd();
  world.StartPlugin();
  ASSERT_TRUE(world.Scale(2)["ok"]) << world.host_stderr();
  ASSERT_EQ(world.Status(15000)["values"]["ready"], true);
  // The same plugin, now pointed at a Nomad that refuses connections.
  world.StopHost();
  world.StartPlugin({{"nomad_address", "http://127.0.0.1:1"}});
  auto s = world.Status(3000);
  EXPECT_EQ(s["values"]["ready"], false);
  auto r = world.Scale(1);
  EXPECT_EQ(r["code"], "Unavailable") << r;
  EXPECT_THAT(r["message"].get<std::string>(), HasSubstr("Nomad unreachable")) << r;
  EXPECT_EQ(world.Instances().size(), 2u);
}

}  // namespace

namespace {

// The drop-in mode: the Go plugin's keys (TLS, client certificate,
// passphrase), the Multipass session inside multipass-target.
TEST(ScaleEndToEnd, DirectModeScalesOutAndIn) {
  mps::test::SimOptions sim;
  sim.passphrase = "sesame";
  mps::test::ScaleWorld world(sim);
  world.Instances();  // the observer's certificate is the first one multipassd sees
  world.StartPlugin(world.DirectPluginConfig());
  ASSERT_EQ(world.Status(10000)["values"]["ready"], true) << world.host_stderr();
  auto r = world.Scale(3);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  auto s = world.Status(15000);
  EXPECT_EQ(s["values"]["ready"], true) << s;
  EXPECT_EQ(s["values"]["count"], 3);
  EXPECT_EQ(world.Instances().size(), 3u);
  r = world.Scale(1);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  EXPECT_EQ(world.Instances().size(), 1u);
  EXPECT_EQ(world.Nodes().size(), 1u);
  EXPECT_THAT(world.host_stderr(), testing::Not(HasSubstr("sesame")));
}

}  // namespace
