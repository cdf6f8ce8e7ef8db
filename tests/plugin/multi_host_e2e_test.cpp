// One pool over three Multipass hosts end to end (issue 13): cluster-sim
// playing three hosts with one Nomad, one multipass-hostd per host, and
// multipass-target with a hosts_file behind the real go-plugin host.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bus/keys.h"
#include "multipass/multipass_client.h"
#include "plugin_launch.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kHosts = 3;

class MultiHostWorld {
 public:
  // `host_cpus`: cluster-sim's --host-cpus (one value for every host, or one each).
  explicit MultiHostWorld(const std::string& host_cpus = "16") {
    sim_ = std::make_unique<mps::testing::ChildProcess>(
        std::vector<std::string>{mps::testing::BinDir() + "/cluster-sim",
                                 "--hosts",
                                 std::to_string(kHosts),
                                 "--multipass-socket-dir",
                                 dir(),
                                 "--state-dir",
                                 dir() + "/sim",
                                 "--nomad-port",
                                 "0",
                                 "--boot-delay",
                                 "1s",
                                 "--join-delay",
                                 "200ms",
                                 "--migration-delay",
                                 "300ms",
                                 "--passphrase",
                                 "sesame",
                                 "--ssh-delay",
                                 "1ms",
                                 "--host-cpus",
                                 host_cpus});
    for (;;) {
      auto line = sim_->ReadLine(20s);
      if (!line) throw std::runtime_error("cluster-sim did not start: " + sim_->stderr_text());
      if (line->rfind("nomad ", 0) == 0) nomad_address_ = line->substr(6);
      if (*line == "ready") break;
    }
    std::ofstream(dir() + "/passphrase") << "sesame\n";
    std::ofstream(dir() + "/web.yaml")
        << "#cloud-config\n# nomad client.hcl:\nnode_class = \"web\"\n";
    mps::bus::WriteKeyPair(dir() + "/keys/clients", "plugin", mps::bus::GenerateKeyPair());
    json hosts = json::array();
    for (int i = 0; i < kHosts; ++i) {
      mps::bus::WriteKeyPair(Dir(i) + "/keys", "hostd", mps::bus::GenerateKeyPair());
      hosts.push_back({{"name", Name(i)},
                       {"hostd_address", "ipc://" + Dir(i) + "/hostd.sock"},
                       {"hostd_server_key_path", Dir(i) + "/keys/hostd.pub"}});
      hostd_.emplace_back();
      StartHostd(i);
    }
    std::ofstream(dir() + "/hosts.json") << json{{"hosts", hosts}}.dump(2);
    policy = {{"node_class", "web"},
              {"instance_image_name", "noble"},
              {"instance_size", "c1-m1"},
              {"cloud_init_user_data_path", dir() + "/web.yaml"},
              {"startup_timeout", "20s"},
              {"node_registration_timeout", "20s"},
              {"image_download_timeout", "10s"},
              {"node_drain_deadline", "10s"},
              {"node_purge", "true"},
              {"max_instances", "12"}};
  }

  ~MultiHostWorld() {
    if (!host_) return;
    host_->CloseStdin();
    if (!host_->Wait(10s)) host_->Signal(SIGKILL);
  }

  const std::string& dir() const { return dir_.path(); }
  static std::string Name(int i) { return "mp-" + std::to_string(i); }
  std::string Dir(int i) const { return dir() + "/host-" + std::to_string(i); }

  void StartHostd(int i) {
    hostd_[i] = std::make_unique<mps::testing::ChildProcess>(std::vector<std::string>{
        mps::testing::BinDir() + "/multipass-hostd", "--multipass-address",
        "unix:" + dir() + "/" + Name(i) + ".sock", "--bind", "ipc://" + Dir(i) + "/hostd.sock",
        "--server-key", Dir(i) + "/keys/hostd.key", "--authorized-keys", dir() + "/keys/clients",
        "--state-dir", Dir(i) + "/hostd", "--allow-prefix", "web", "--multipass-passphrase-file",
        dir() + "/passphrase"});
    if (!hostd_[i]->WaitForLine("ready", 20s))
      throw std::runtime_error("multipass-hostd " + Name(i) +
                               " did not start: " + hostd_[i]->stderr_text());
  }

  void KillHostd(int i) {
    hostd_[i]->Signal(SIGKILL);
    hostd_[i]->Wait(5s);
  }

  void StartPlugin() {
    mps::testing::ChildOptions options;
    options.pipe_stdin = true;
    host_ = std::make_unique<mps::testing::ChildProcess>(
        std::vector<std::string>{mps::testing::BinDir() + "/goplugin-host"}, options);
    host_->WriteStdin(
        json{{"plugin", mps::testing::BinDir() + "/multipass-target"}, {"interactive", true}}
            .dump() +
        "\n");
    auto start = host_->ReadLine(30s);
    if (!start || !json::parse(*start).value("ok", false))
      throw std::runtime_error("plugin did not start: " + host_->stderr_text());
    auto r = Run({{"op", "SetConfig"},
                  {"config",
                   {{"hosts_file", dir() + "/hosts.json"},
                    {"bus_key_path", dir() + "/keys/clients/plugin.key"},
                    {"nomad_address", nomad_address_},
                    {"state_dir", dir() + "/target"},
                    {"status_address", "ipc://" + dir() + "/status.sock"}}}});
    if (!r.value("ok", false)) throw std::runtime_error("SetConfig failed: " + r.dump());
  }

  int Send(json step, bool async = false) { return steps_.Send(*host_, std::move(step), async); }

  json Await(int id, std::chrono::milliseconds timeout) {
    return steps_.Await(*host_, id, timeout);
  }

  json Run(json step, std::chrono::milliseconds timeout = 30s) {
    return Await(Send(std::move(step)), timeout);
  }

  json Status(int until_ready_ms = 0) {
    return Run({{"op", "Status"},
                {"config", policy},
                {"timeout_ms", 5000},
                {"until_ready_ms", until_ready_ms}},
               std::chrono::milliseconds(until_ready_ms) + 10s);
  }

  int ScaleAsync(std::int64_t count) {
    return Send({{"op", "Scale"},
                 {"config", policy},
                 {"action", {{"count", count}, {"reason", "test"}, {"direction", "up"}}}},
                true);
  }

  // The pool's instances on host `i`, as its simulated multipassd lists them.
  std::map<std::string, std::string> Instances(int i) {
    mps::multipass::MultipassClientOptions o;
    o.address = "unix:" + dir() + "/" + Name(i) + ".sock";
    o.state_dir = Dir(i) + "/hostd";  // the accepted client certificate is hostd's
    o.passphrase = "sesame";
    mps::multipass::MultipassClient client(o);
    std::map<std::string, std::string> out;
    for (const auto& instance : client.List()) {
      if (instance.name.rfind("web-", 0) == 0)
        out[instance.name] = std::string(mps::multipass::StateName(instance.state));
    }
    return out;
  }

  std::vector<std::size_t> PerHost() {
    std::vector<std::size_t> out;
    for (int i = 0; i < kHosts; ++i) out.push_back(Instances(i).size());
    return out;
  }

  std::vector<json> Nodes() {
    httplib::Client http(nomad_address_);
    auto r = http.Get("/v1/nodes");
    if (!r || r->status != 200) throw std::runtime_error("GET /v1/nodes failed");
    std::vector<json> out;
    for (const auto& n : json::parse(r->body)) out.push_back(n);
    return out;
  }

  std::string host_stderr() const { return host_ ? host_->stderr_text() : ""; }

  json policy;

 private:
  mps::testing::TempDir dir_;
  std::unique_ptr<mps::testing::ChildProcess> sim_, host_;
  std::vector<std::unique_ptr<mps::testing::ChildProcess>> hostd_;
  std::string nomad_address_;
  mps::test::GoPluginHostSteps steps_;
};

std::string Meta(const json& status, const std::string& key) {
  const auto& meta = status["values"]["meta"];
  return meta.contains(key) ? meta[key].get<std::string>() : "";
}

// Status until `done` holds (at most 30 s); the last answer.
template <class F>
json StatusUntil(MultiHostWorld& world, F done) {
  json s;
  for (int i = 0; i < 300; ++i) {
    s = world.Status();
    if (done(s)) break;
    std::this_thread::sleep_for(100ms);
  }
  return s;
}

// No name twice across hosts, every instance running, one ready node each.
void ExpectOneWorld(MultiHostWorld& world, std::size_t count) {
  std::set<std::string> names;
  for (int i = 0; i < kHosts; ++i) {
    for (const auto& [name, state] : world.Instances(i)) {
      EXPECT_TRUE(names.insert(name).second) << name << " is on two hosts";
      EXPECT_EQ(state, "running") << name;
    }
  }
  EXPECT_EQ(names.size(), count);
  std::set<std::string> node_names;
  for (const auto& node : world.Nodes()) {
    if (node["Status"] != "ready") continue;
    node_names.insert(node["Name"].get<std::string>());
  }
  EXPECT_EQ(node_names, names);
}

// Starts a Scale to 9 and kills mp-1's hostd once its daemon has a launch;
// the Scale's step id.
int ScaleToNineKillingHostdOfMp1(MultiHostWorld& world) {
  int scale = world.ScaleAsync(9);
  for (int i = 0; i < 300 && world.Instances(1).empty(); ++i) std::this_thread::sleep_for(10ms);
  world.KillHostd(1);
  return scale;
}

TEST(MultiHostEndToEnd, ZeroToNineIsThreeOnEachHostAndNineToThreeKeepsOneOnEach) {
  MultiHostWorld world;
  world.StartPlugin();
  auto s = world.Status(10000);
  ASSERT_EQ(s["values"]["ready"], true) << s << world.host_stderr();

  auto r = world.Await(world.ScaleAsync(9), 90s);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  s = world.Status(30000);
  EXPECT_EQ(s["values"]["ready"], true) << s;
  EXPECT_EQ(s["values"]["count"], 9);
  EXPECT_EQ(world.PerHost(), (std::vector<std::size_t>{3, 3, 3}));
  ExpectOneWorld(world, 9);

  r = world.Await(world.ScaleAsync(3), 90s);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  s = world.Status(30000);
  EXPECT_EQ(s["values"]["ready"], true) << s;
  EXPECT_EQ(s["values"]["count"], 3);
  EXPECT_EQ(world.PerHost(), (std::vector<std::size_t>{1, 1, 1}));
  ExpectOneWorld(world, 3);
}

TEST(MultiHostEndToEnd, OneHostdKilledDuringZeroToNineCostsNoDuplicateAndNoOrphan) {
  MultiHostWorld world;
  world.StartPlugin();
  ASSERT_EQ(world.Status(10000)["values"]["ready"], true) << world.host_stderr();
  int scale = ScaleToNineKillingHostdOfMp1(world);  // and brings it back
  std::this_thread::sleep_for(500ms);
  world.StartHostd(1);
  auto r = world.Await(scale, 110s);  // succeeds, or reports what it could not confirm
  auto s = world.Status(60000);
  ASSERT_EQ(s["values"]["ready"], true) << s << r << world.host_stderr();
  EXPECT_EQ(s["values"]["count"], 9);
  ExpectOneWorld(world, 9);
}

TEST(MultiHostEndToEnd, AHostdThatStaysDownIsNotCountedAndTheScaleOutGoesToTheOthers) {
  MultiHostWorld world;
  world.StartPlugin();
  ASSERT_EQ(world.Status(10000)["values"]["ready"], true) << world.host_stderr();
  auto r = world.Await(world.ScaleAsync(6), 90s);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  ASSERT_EQ(world.Status(30000)["values"]["count"], 6);

  world.KillHostd(2);
  auto s =
      StatusUntil(world, [](const json& s) { return !Meta(s, "mps.hosts_unreachable").empty(); });
  EXPECT_EQ(Meta(s, "mps.hosts_unreachable").rfind("mp-2: ", 0), 0u) << s;
  EXPECT_NE(Meta(s, "mps.hosts_unreachable").find("(2 instance(s) not counted)"), std::string::npos)
      << s;
  EXPECT_EQ(s["values"]["count"], 4) << s;
  EXPECT_EQ(s["values"]["ready"], true) << s;

  // The autoscaler asks for its 6 again: both go to the hosts that answer.
  r = world.Await(world.ScaleAsync(6), 90s);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  EXPECT_EQ(world.PerHost(), (std::vector<std::size_t>{3, 3, 2}));

  // mp-2 comes back: its two instances count again, nothing was lost or doubled.
  world.StartHostd(2);
  s = StatusUntil(world, [](const json& s) { return s["values"]["count"] == 8; });
  EXPECT_EQ(s["values"]["count"], 8) << s;
  EXPECT_TRUE(Meta(s, "mps.hosts_unreachable").empty()) << s;
  ExpectOneWorld(world, 8);
}

// A hostd that dies under its launches and stays dead: the Scale does not
// wait out the launches' deadlines (10 s + 2 x 20 s + grace here), it
// reports them as unknown within seconds, they are not counted, the next
// Scale places their share on the other hosts, and when the host is back its
// launches are resolved: found and counted, or given up; none orphaned or
// doubled.
TEST(MultiHostEndToEnd, AHostdKilledForGoodDuringZeroToNineIsReportedAndItsShareGoesElsewhere) {
  MultiHostWorld world;
  world.StartPlugin();
  ASSERT_EQ(world.Status(10000)["values"]["ready"], true) << world.host_stderr();
  int scale = ScaleToNineKillingHostdOfMp1(world);
  // Well inside the launches' own deadline of more than 50 s.
  auto r = world.Await(scale, 35s);
  EXPECT_FALSE(r["ok"]) << r;
  EXPECT_NE(r.dump().find("outcome unknown"), std::string::npos) << r;

  // Ready too: the first Scale's run may still be finishing (its answer went
  // out when the launches were found unknown), and a Scale during it is
  // refused as "in progress".
  auto s = StatusUntil(world, [](const json& s) {
    return Meta(s, "mps.hosts_unreachable").rfind("mp-1: ", 0) == 0 && s["values"]["count"] == 6 &&
           s["values"]["ready"] == true;
  });
  EXPECT_EQ(s["values"]["count"], 6) << s;  // mp-0's and mp-2's three each
  EXPECT_EQ(s["values"]["ready"], true) << s;
  EXPECT_EQ(Meta(s, "mps.hosts_unreachable").rfind("mp-1: ", 0), 0u) << s;

  r = world.Await(world.ScaleAsync(9), 90s);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  s = world.Status(30000);
  EXPECT_EQ(s["values"]["count"], 9) << s;
  auto per_host = world.PerHost();
  EXPECT_EQ(per_host[0] + per_host[2], 9u);

  // mp-1 back: its recorded launches are resolved against its listing. What
  // its multipassd got is found and counted with its node; what it never got
  // is given up (its share was placed elsewhere), not made late. No name
  // twice, nothing untracked; the pool is above the autoscaler's 9 by what
  // mp-1 kept, until its next scale in.
  world.StartHostd(1);
  std::size_t on_mp1 = 0;
  s = StatusUntil(world, [&](const json& s) {
    on_mp1 = world.Instances(1).size();
    return Meta(s, "mps.hosts_unreachable").empty() && s["values"]["ready"] == true &&
           s["values"]["count"] == 9 + on_mp1;
  });
  EXPECT_EQ(s["values"]["ready"], true) << s;
  EXPECT_EQ(s["values"]["count"], 9 + on_mp1) << s;
  EXPECT_GE(on_mp1, 1u);
  EXPECT_LE(on_mp1, 3u);
  ExpectOneWorld(world, 9 + on_mp1);
}

TEST(MultiHostEndToEnd, CapacityExhaustedLaunchesWhatFitsAndThenRefusesCheaply) {
  // One CPU per host: room for one 1-CPU instance on each.
  MultiHostWorld world("1");
  world.StartPlugin();
  ASSERT_EQ(world.Status(10000)["values"]["ready"], true) << world.host_stderr();
  auto r = world.Await(world.ScaleAsync(5), 90s);
  ASSERT_TRUE(r["ok"]) << r << world.host_stderr();
  EXPECT_EQ(world.PerHost(), (std::vector<std::size_t>{1, 1, 1}));
  auto s = world.Status(30000);
  EXPECT_EQ(s["values"]["ready"], true) << s;
  EXPECT_EQ(s["values"]["count"], 3);
  // Asked again, nothing fits anywhere: refused, nothing launched.
  r = world.Await(world.ScaleAsync(5), 30s);
  EXPECT_FALSE(r["ok"]) << r;
  EXPECT_NE(r.dump().find("no host can take a new instance"), std::string::npos) << r;
  EXPECT_NE(r.dump().find("CPUs: 0 left, 1 needed"), std::string::npos) << r;
  EXPECT_EQ(world.PerHost(), (std::vector<std::size_t>{1, 1, 1}));
}

}  // namespace
