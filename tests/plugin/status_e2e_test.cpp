// Status through HashiCorp's go-plugin host, end to end: multipass-target in
// split mode (bus to a real multipass-hostd) and in direct mode (in-process
// session to the simulated daemon over TLS with a passphrase), both against
// cluster-sim.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bus/keys.h"
#include "cluster_sim/certificate_authority.h"
#include "multipass/multipass_client.h"
#include "plugin_launch.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

class StatusEndToEnd : public testing::Test {
 protected:
  void SetUp() override {
    sim_ = std::make_unique<mps::testing::ChildProcess>(std::vector<std::string>{
        mps::testing::BinDir() + "/cluster-sim", "--state-dir", dir_.path() + "/sim",
        "--multipass-socket", dir_.path() + "/mp.sock", "--multipass-tls", "127.0.0.1:0",
        "--passphrase", "sesame", "--boot-delay", "50ms", "--nomad-port", "0", "--join-delay",
        "50ms", "--ssh-delay", "1ms"});
    for (;;) {
      auto line = sim_->ReadLine(20s);
      ASSERT_TRUE(line) << sim_->stderr_text();
      if (line->rfind("multipass-tls ", 0) == 0) tls_address_ = line->substr(14);
      if (line->rfind("nomad ", 0) == 0) nomad_address_ = line->substr(6);
      if (*line == "ready") break;
    }
    // Three instances: two of pool "web" (they join Nomad), one that only looks like it.
    mps::multipass::MultipassClientOptions o;
    o.address = "unix:" + dir_.path() + "/mp.sock";
    o.state_dir = dir_.path() + "/seed";
    o.passphrase = "sesame";  // the store holds the CLI's certificate: authenticate
    mps::multipass::MultipassClient seed(o);
    for (const char* name : {"web-a1", "web-b2", "webapp-1"}) {
      mps::multipass::LaunchSpec spec;
      spec.name = name;
      spec.image = "noble";
      spec.cloud_init_user_data = "node_class = \"web\"\n";
      seed.Launch(spec);
    }
  }

  std::vector<json> RunHost(const json& steps) {
    auto run =
        mps::test::RunGoPluginHost({{"plugin", mps::test::PluginBinary()}, {"steps", steps}}, 30s);
    stderr_ = run.stderr_text;
    EXPECT_EQ(run.exit_code, 0) << stderr_;
    return run.results;
  }

  // Status is answered from the cache: wait (up to `until_ready_ms`) for the
  // first reconciliation and the nodes to join.
  static json StatusStep(int until_ready_ms = 15000) {
    return {{"op", "Status"},
            {"config", {{"node_class", "web"}}},
            {"timeout_ms", 5000},
            {"until_ready_ms", until_ready_ms}};
  }

  json WithNomad(json config) const {
    config["nomad_address"] = nomad_address_;
    config["state_dir"] = dir_.path() + "/target";
    return config;
  }

  mps::testing::TempDir dir_;
  std::unique_ptr<mps::testing::ChildProcess> sim_;
  std::string tls_address_, nomad_address_, stderr_;
};

}  // namespace

TEST_F(StatusEndToEnd, SplitModeCountsThePoolThroughHostd) {
  auto server = mps::bus::GenerateKeyPair(), plugin = mps::bus::GenerateKeyPair();
  fs::path keys = fs::path(dir_.path()) / "keys";
  mps::bus::WriteKeyPair(keys / "hostd", "hostd", server);
  mps::bus::WriteKeyPair(keys / "clients", "plugin", plugin);
  std::string endpoint = "ipc://" + dir_.path() + "/hostd.sock";
  mps::testing::ChildProcess hostd(
      {mps::testing::BinDir() + "/multipass-hostd", "--multipass-address",
       "unix:" + dir_.path() + "/mp.sock", "--bind", endpoint, "--server-key",
       (keys / "hostd" / "hostd.key").string(), "--authorized-keys", (keys / "clients").string(),
       "--state-dir", dir_.path() + "/seed", "--allow-prefix", "web", "--allow-prefix", "webapp"});
  ASSERT_TRUE(hostd.WaitForLine("ready", 20s)) << hostd.stderr_text();
  json split = WithNomad({{"hostd_address", endpoint},
                          {"hostd_server_key_path", (keys / "hostd" / "hostd.pub").string()},
                          {"bus_key_path", (keys / "clients" / "plugin.key").string()}});
  auto r = RunHost(
      json::array({{{"op", "SetConfig"}, {"config", split}}, StatusStep(), {{"op", "Kill"}}}));
  ASSERT_EQ(r.size(), 4u) << stderr_;
  ASSERT_TRUE(r[1]["ok"]) << r[1];
  ASSERT_TRUE(r[2]["ok"]) << r[2] << stderr_;
  EXPECT_EQ(r[2]["values"]["count"], 2) << r[2];  // web-a1, web-b2; never webapp-1
  EXPECT_EQ(r[2]["values"]["ready"], true) << r[2];
}

TEST_F(StatusEndToEnd, DirectModeUsesTlsAndPassphraseLikeTheGoPlugin) {
  auto identity = mps::sim::CertificateAuthority::SelfSignedClientCertificate("plugin");
  fs::path cert = fs::path(dir_.path()) / "client.pem", key = fs::path(dir_.path()) / "client.key";
  std::ofstream(cert) << identity.certificate_pem;
  std::ofstream(key) << identity.private_key_pem;
  json direct = WithNomad({{"multipass_address", tls_address_},
                           {"client_cert_path", cert.string()},
                           {"client_key_path", key.string()},
                           {"passphrase", "sesame"}});
  json wrong = direct;
  wrong["passphrase"] = "not-sesame";
  auto r = RunHost(json::array({{{"op", "SetConfig"}, {"config", wrong}},
                                StatusStep(3000),
                                {{"op", "SetConfig"}, {"config", direct}},
                                StatusStep(),
                                {{"op", "Kill"}}}));
  ASSERT_EQ(r.size(), 6u) << stderr_;
  ASSERT_TRUE(r[1]["ok"]) << r[1];
  // Answered from the cache: not ready, and the reason names the passphrase.
  EXPECT_EQ(r[2]["values"]["ready"], false) << r[2];
  EXPECT_THAT(r[2]["values"]["meta"]["mps.not_ready"].get<std::string>(),
              testing::HasSubstr("passphrase"))
      << r[2];
  ASSERT_TRUE(r[3]["ok"]) << r[3];
  ASSERT_TRUE(r[4]["ok"]) << r[4] << stderr_;
  EXPECT_EQ(r[4]["values"]["count"], 2) << r[4];
  EXPECT_THAT(stderr_, testing::Not(testing::HasSubstr("sesame")));
}

TEST_F(StatusEndToEnd, UnreachableHostdIsUnavailableAndScaleIsRefused) {
  auto server = mps::bus::GenerateKeyPair(), plugin = mps::bus::GenerateKeyPair();
  fs::path keys = fs::path(dir_.path()) / "keys";
  mps::bus::WriteKeyPair(keys / "hostd", "hostd", server);
  mps::bus::WriteKeyPair(keys / "clients", "plugin", plugin);
  json split = WithNomad({{"hostd_address", "ipc://" + dir_.path() + "/nobody.sock"},
                          {"hostd_server_key_path", (keys / "hostd" / "hostd.pub").string()},
                          {"bus_key_path", (keys / "clients" / "plugin.key").string()}});
  auto r = RunHost(json::array({{{"op", "SetConfig"}, {"config", split}},
                                StatusStep(5000),
                                {{"op", "Scale"},
                                 {"config", {{"node_class", "web"}}},
                                 {"action", {{"count", 3}, {"direction", "up"}}}},
                                {{"op", "Kill"}}}));
  ASSERT_EQ(r.size(), 5u) << stderr_;
  EXPECT_EQ(r[2]["values"]["ready"], false) << r[2];
  EXPECT_THAT(r[2]["values"]["meta"]["mps.not_ready"].get<std::string>(),
              testing::HasSubstr("nobody.sock"))
      << r[2];
  EXPECT_EQ(r[3]["code"], "Unavailable") << r[3];
  EXPECT_THAT(r[3]["message"].get<std::string>(), testing::HasSubstr("nobody.sock")) << r[3];
}
