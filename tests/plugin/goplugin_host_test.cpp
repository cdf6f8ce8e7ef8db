// multipass-target driven by HashiCorp's real go-plugin client (Debian's
// 1.0.1, via goplugin-host), the way the Nomad Autoscaler drives it.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "plugin_launch.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using mps::test::PluginBinary;

namespace {

class GoHostTest : public testing::Test {
 protected:
  fs::path Write(const std::string& name, const std::string& content) {
    fs::path p = dir_ / name;
    std::ofstream(p) << content;
    return p;
  }

  // Runs the host with `steps`; returns the result lines (first: Start).
  std::vector<json> Run(const json& steps) {
    auto run = mps::test::RunGoPluginHost({{"plugin", PluginBinary()}, {"steps", steps}}, 20s);
    host_stderr_ = run.stderr_text;
    EXPECT_EQ(run.exit_code, 0) << host_stderr_;
    return run.results;
  }

  json GoodDirectConfig() {
    return {{"multipass_address", "127.0.0.1:50051"},
            {"client_cert_path", Write("client.pem", "cert").string()},
            {"client_key_path", Write("client.key", "key").string()},
            {"passphrase", "hunter2-secret"},
            {"state_dir", (dir_ / "state").string()}};
  }

  json SplitToNowhere() {
    return {{"hostd_address", "ipc://" + (dir_ / "no-hostd.sock").string()},
            {"hostd_server_key_path", Write("h.pub", std::string(40, 'a')).string()},
            {"bus_key_path", Write("b.key", std::string(39, 'B') + "1").string()},
            {"state_dir", (dir_ / "state").string()}};
  }

  mps::testing::TempDir dir_;
  std::string host_stderr_;
};

}  // namespace

TEST_F(GoHostTest, HandshakeAndPluginInfo) {
  auto r = Run(json::array({{{"op", "PluginInfo"}}, {{"op", "Ping"}}, {{"op", "Kill"}}}));
  ASSERT_EQ(r.size(), 4u) << host_stderr_;
  EXPECT_TRUE(r[0]["ok"]) << r[0];
  EXPECT_EQ(r[0]["values"]["protocol"], "grpc");
  EXPECT_EQ(r[0]["values"]["network"], "unix");
  EXPECT_TRUE(r[1]["ok"]) << r[1];
  EXPECT_EQ(r[1]["values"]["name"], "multipass-target");
  EXPECT_EQ(r[1]["values"]["type"], "PLUGIN_TYPE_TARGET");
  EXPECT_TRUE(r[2]["ok"]) << r[2];  // health "plugin" via go-plugin's Ping
  // The plugin's hclog lines were parsed and re-logged by the host, not raw.
  EXPECT_THAT(host_stderr_, testing::HasSubstr("external_plugin.multipass-target: plugin serving"));
}

TEST_F(GoHostTest, SetConfigGoodThenUnreachableHostdAndBadReloadKeepsConfig) {
  const std::string pub(40, 'a'), sec = std::string(39, 'B') + "1";
  // A loopback address with nothing listening: requests fail as unreachable.
  json split = {{"hostd_address", "ipc://" + (dir_ / "no-hostd.sock").string()},
                {"hostd_server_key_path", Write("hostd.pub", pub + "\n").string()},
                {"bus_key_path", Write("bus.key", sec + "  \n").string()},
                {"nomad_address", "http://127.0.0.1:4646"},
                {"nomad_skip-verify", "true"},
                {"nomad_block-query-wait-time", "5m0s"},
                {"state_dir", (dir_ / "state").string()}};
  auto r = Run(
      json::array({{{"op", "SetConfig"}, {"config", split}},
                   {{"op", "SetConfig"}, {"config", GoodDirectConfig()}},
                   {{"op", "Status"}, {"config", {{"node_class", "web"}}}, {"timeout_ms", 1000}},
                   {{"op", "Scale"},
                    {"config", {{"node_class", "web"}}},
                    {"action", {{"count", 3}, {"direction", "up"}, {"meta", {{"k", 1}}}}}},
                   {{"op", "Kill"}}}));
  ASSERT_EQ(r.size(), 6u) << host_stderr_;
  EXPECT_TRUE(r[1]["ok"]) << r[1];
  // Direct mode with certificate files that hold no PEM: refused, naming the file.
  EXPECT_EQ(r[2]["code"], "InvalidArgument") << r[2];
  EXPECT_THAT(r[2]["message"].get<std::string>(), testing::HasSubstr("client.pem")) << r[2];
  // The split configuration is still in force: Status answers from the
  // cache (not ready), Scale is refused naming the unreachable hostd.
  EXPECT_TRUE(r[3]["ok"]) << r[3];
  EXPECT_EQ(r[3]["values"]["ready"], false) << r[3];
  EXPECT_EQ(r[4]["code"], "Unavailable") << r[4];
  EXPECT_THAT(r[4]["message"].get<std::string>(), testing::HasSubstr("no-hostd.sock")) << r[4];
  EXPECT_THAT(host_stderr_, testing::Not(testing::HasSubstr("hunter2-secret")));
}

TEST_F(GoHostTest, SetConfigBadNamesEveryProblemAtOnce) {
  json bad = {{"hostd_address", "http://nope"},
              {"hostd_server_key_path", (dir_ / "missing.pub").string()},
              {"bus_key_path", Write("short.key", "tooshort").string()},
              {"max_parallel_launches", "0"},
              {"nomad_skip-verify", "maybe"},
              {"nomad_block-query-wait-time", "5 minutes"}};
  auto r = Run(json::array({{{"op", "SetConfig"}, {"config", bad}},
                            {{"op", "SetConfig"}, {"config", json::object()}},
                            {{"op", "Kill"}}}));
  ASSERT_EQ(r.size(), 4u) << host_stderr_;
  EXPECT_EQ(r[1]["code"], "InvalidArgument");
  std::string msg = r[1]["message"];
  for (const char* key :
       {"hostd_address", "hostd_server_key_path", "bus_key_path", "max_parallel_launches",
        "nomad_skip-verify", "nomad_block-query-wait-time"}) {
    EXPECT_THAT(msg, testing::HasSubstr(std::string(key) + ":")) << key;
  }
  EXPECT_THAT(msg, testing::HasSubstr("6 problems"));
  EXPECT_EQ(r[2]["code"], "InvalidArgument");
  std::string none = r[2]["message"];
  EXPECT_THAT(none, testing::HasSubstr("hostd_address"));
  EXPECT_THAT(none, testing::HasSubstr("multipass_address"));
}

// Issue 16 defect 11: a state_dir that cannot be made said "does not exist"
// instead of why.
TEST_F(GoHostTest, AStateDirThatCannotBeMadeSaysWhy) {
  auto config = SplitToNowhere();
  config["state_dir"] = (Write("a-file", "x") / "state").string();
  auto r = Run(json::array({{{"op", "SetConfig"}, {"config", config}}, {{"op", "Kill"}}}));
  ASSERT_EQ(r.size(), 3u) << host_stderr_;
  EXPECT_EQ(r[1]["code"], "InvalidArgument") << r[1];
  std::string msg = r[1]["message"];
  EXPECT_THAT(msg, testing::HasSubstr("state_dir: cannot create"));
  EXPECT_THAT(msg, testing::HasSubstr("Not a directory"));
}

TEST_F(GoHostTest, StatusBeforeSetConfigIsFailedPrecondition) {
  auto r = Run(
      json::array({{{"op", "Status"}, {"config", {{"node_class", "web"}}}, {"timeout_ms", 2000}},
                   {{"op", "Scale"}, {"action", {{"count", 1}, {"direction", "down"}}}},
                   {{"op", "Kill"}}}));
  ASSERT_EQ(r.size(), 4u) << host_stderr_;
  EXPECT_EQ(r[1]["code"], "FailedPrecondition") << r[1];
  EXPECT_EQ(r[2]["code"], "FailedPrecondition") << r[2];
}

TEST_F(GoHostTest, ScaleWithUnspecifiedDirectionOrBadMetaIsHandled) {
  auto r = Run(json::array(
      {{{"op", "Scale"}, {"action", {{"count", 1}, {"direction", "unspecified"}}}},
       {{"op", "SetConfig"}, {"config", SplitToNowhere()}},
       {{"op", "Scale"},
        {"action", {{"count", 1}, {"direction", "up"}, {"raw_meta", "{not json"}}}},
       {{"op", "Scale"}, {"action", {{"count", 1}, {"direction", "up"}, {"raw_meta", "[1,2]"}}}},
       {{"op", "PluginInfo"}},
       {{"op", "Kill"}}}));
  ASSERT_EQ(r.size(), 7u) << host_stderr_;
  EXPECT_EQ(r[1]["code"], "InvalidArgument");
  EXPECT_THAT(r[1]["message"].get<std::string>(), testing::HasSubstr("direction"));
  // Meta ignored: both reach the backend, which names the missing policy key.
  EXPECT_EQ(r[3]["code"], "InvalidArgument") << r[3];
  EXPECT_THAT(r[3]["message"].get<std::string>(), testing::HasSubstr("node_class")) << r[3];
  EXPECT_EQ(r[4]["code"], "InvalidArgument") << r[4];
  EXPECT_TRUE(r[5]["ok"]);  // still serving
}

TEST_F(GoHostTest, KillExitsCleanlyWithinTwoSecondsAndRemovesSocket) {
  auto r = Run(json::array({{{"op", "PluginInfo"}}, {{"op", "Kill"}}}));
  ASSERT_EQ(r.size(), 3u) << host_stderr_;
  std::string sock = r[0]["values"]["address"];
  // Exited by itself within go-plugin's grace, not killed (status_bench
  // measures how long the stop takes).
  EXPECT_TRUE(r[2]["values"]["exited"]);
  EXPECT_THAT(host_stderr_, testing::Not(testing::HasSubstr("failed to exit gracefully")));
  EXPECT_FALSE(fs::exists(sock));
  EXPECT_FALSE(fs::exists(fs::path(sock).parent_path()));
}
