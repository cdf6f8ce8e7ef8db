#include "plugin/plugin_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "plugin/plugin_error.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using mps::plugin::ParsePluginConfig;
using mps::plugin::PluginConfig;
using mps::plugin::PluginError;
using testing::HasSubstr;

namespace {

class PluginConfigTest : public testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& content) {
    fs::path p = dir_ / name;
    std::ofstream(p) << content;
    return p.string();
  }
  std::map<std::string, std::string> Split() {
    return {{"hostd_address", "tcp://10.0.0.1:7700"},
            {"hostd_server_key_path", Write("hostd.pub", std::string(40, 'x') + "\n")},
            {"bus_key_path", Write("bus.key", "0123456789abcdefghijABCDEFGHIJ.-:+=^!/*? \t\n")}};
  }
  std::map<std::string, std::string> Direct() {
    return {{"multipass_address", "unix:///var/snap/multipass/common/multipass_socket"},
            {"client_cert_path", Write("c.pem", "c")},
            {"client_key_path", Write("k.pem", "k")},
            {"passphrase", "pw"}};
  }
  std::vector<std::string> ProblemKeys(const std::map<std::string, std::string>& raw) {
    std::vector<std::string> keys;
    for (auto& p : ParsePluginConfig(raw).problems) keys.push_back(p.key);
    return keys;
  }
  mps::testing::TempDir tmp_;
  fs::path dir_{tmp_.path()};
};

}  // namespace

TEST_F(PluginConfigTest, SplitModeParsesAndReadsKeys) {
  auto raw = Split();
  raw["state_dir"] = (dir_ / "state").string();
  raw["max_parallel_launches"] = "8";
  PluginConfig c = PluginConfig::Parse(raw);
  ASSERT_TRUE(c.split());
  const auto& s = std::get<mps::plugin::SplitModeConfig>(c.mode);
  EXPECT_EQ(s.hostd_address, "tcp://10.0.0.1:7700");
  EXPECT_EQ(s.hostd_server_public_key, std::string(40, 'x'));
  EXPECT_EQ(s.bus_secret_key, "0123456789abcdefghijABCDEFGHIJ.-:+=^!/*?");
  EXPECT_EQ(c.max_parallel_launches, 8);
  EXPECT_EQ(c.state_dir, dir_ / "state");
}

TEST_F(PluginConfigTest, DirectModeTakesTheGoPluginKeys) {
  auto raw = Direct();
  raw["multipass_ca_path"] = Write("ca.pem", "ca");
  raw["multipass_server_name"] = "localhost";
  PluginConfig c = PluginConfig::Parse(raw);
  ASSERT_FALSE(c.split());
  const auto& d = std::get<mps::plugin::DirectModeConfig>(c.mode);
  EXPECT_EQ(d.multipass_address, "unix:///var/snap/multipass/common/multipass_socket");
  EXPECT_EQ(d.passphrase, "pw");
  EXPECT_EQ(c.multipass_server_name, "localhost");
  EXPECT_EQ(c.max_parallel_launches, PluginConfig::kDefaultMaxParallelLaunches);
  raw["multipass_address"] = "192.168.64.1:50051";
  EXPECT_NO_THROW(PluginConfig::Parse(raw));
}

TEST_F(PluginConfigTest, BothModesIsAnError) {
  auto raw = Split();
  raw["multipass_address"] = "127.0.0.1:1";
  auto parsed = ParsePluginConfig(raw);
  ASSERT_EQ(parsed.problems.size(), 1u);
  EXPECT_THAT(parsed.problems[0].expected, HasSubstr("exactly one"));
  EXPECT_FALSE(parsed.config);
}

TEST_F(PluginConfigTest, NeitherModeNamesBothKeySets) {
  try {
    PluginConfig::Parse({{"nomad_address", "http://127.0.0.1:4646"}});
    FAIL() << "expected PluginError";
  } catch (const PluginError& e) {
    EXPECT_EQ(e.code, PluginError::Code::invalid_argument);
    for (const char* key :
         {"hostd_address", "hostd_server_key_path", "bus_key_path", "multipass_address",
          "client_cert_path", "client_key_path", "passphrase"}) {
      EXPECT_THAT(e.message, HasSubstr(key));
    }
  }
}

TEST_F(PluginConfigTest, EveryDirectModeProblemReportedAtOnce) {
  std::map<std::string, std::string> raw = {
      {"multipass_address", "no-port"},   {"client_cert_path", (dir_ / "nope.pem").string()},
      {"client_key_path", dir_.string()}, {"multipass_ca_path", (dir_ / "ca.pem").string()},
      {"max_parallel_launches", "lots"},  {"state_dir", Write("file", "")}};
  EXPECT_THAT(ProblemKeys(raw),
              testing::UnorderedElementsAre("multipass_address", "client_cert_path",
                                            "client_key_path", "passphrase", "multipass_ca_path",
                                            "max_parallel_launches", "state_dir"));
}

TEST_F(PluginConfigTest, UnreadableFileIsReported) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads any file";
  auto raw = Direct();
  chmod(raw["client_key_path"].c_str(), 0);
  EXPECT_THAT(ProblemKeys(raw), testing::ElementsAre("client_key_path"));
}

TEST_F(PluginConfigTest, Z85KeyFilesAreChecked) {
  auto raw = Split();
  raw["hostd_server_key_path"] = Write("short", std::string(39, 'a'));
  raw["bus_key_path"] = Write("badchars", std::string(39, 'a') + "\"");
  auto parsed = ParsePluginConfig(raw);
  ASSERT_EQ(parsed.problems.size(), 2u);
  EXPECT_THAT(parsed.problems[0].expected, HasSubstr("39 characters"));
  EXPECT_THAT(parsed.problems[1].expected, HasSubstr("non-z85"));
  // A key's content is never echoed (it may be secret).
  EXPECT_THAT(parsed.problems[1].expected, testing::Not(HasSubstr(std::string(39, 'a'))));
}

TEST_F(PluginConfigTest, BusEndpointForms) {
  for (const char* good : {"tcp://host:1", "ipc:///run/mps/hostd.sock"}) {
    auto raw = Split();
    raw["hostd_address"] = good;
    EXPECT_TRUE(ProblemKeys(raw).empty()) << good;
  }
  for (const char* bad :
       {"tcp://host", "tcp://host:0", "tcp://:80", "ipc://", "host:80", "tcp://host:99999"}) {
    auto raw = Split();
    raw["hostd_address"] = bad;
    EXPECT_THAT(ProblemKeys(raw), testing::ElementsAre("hostd_address")) << bad;
  }
}

TEST_F(PluginConfigTest, NomadKeysKeptRawAndCheapFormatsChecked) {
  auto raw = Direct();
  raw["nomad_address"] = "https://nomad:4646";
  raw["nomad_token"] = "tok";
  raw["nomad_skip-verify"] = "TRUE";
  raw["nomad_config_inherit"] = "0";
  raw["nomad_block-query-wait-time"] = "1m30s";
  PluginConfig c = PluginConfig::Parse(raw);
  EXPECT_EQ(c.nomad.size(), 5u);
  EXPECT_EQ(c.nomad.at("nomad_token"), "tok");
  EXPECT_EQ(c.nomad.at("nomad_skip-verify"), "TRUE");
  raw["nomad_skip-verify"] = "yes";
  raw["nomad_config_inherit"] = "nah";
  raw["nomad_block-query-wait-time"] = "5d";
  EXPECT_THAT(ProblemKeys(raw),
              testing::UnorderedElementsAre("nomad_skip-verify", "nomad_config_inherit",
                                            "nomad_block-query-wait-time"));
}

TEST_F(PluginConfigTest, UnknownKeysAreNotErrors) {
  auto raw = Direct();
  raw["node_class"] = "web";
  raw["nomad_future-option"] = "x";
  auto parsed = ParsePluginConfig(raw);
  EXPECT_TRUE(parsed.problems.empty());
  EXPECT_THAT(parsed.unknown_keys, testing::ElementsAre("node_class", "nomad_future-option"));
  EXPECT_EQ(parsed.config->nomad.count("nomad_future-option"), 1u);
}

TEST_F(PluginConfigTest, EmptyValuesCountAsMissing) {
  auto raw = Direct();
  raw["passphrase"] = "";
  EXPECT_THAT(ProblemKeys(raw), testing::ElementsAre("passphrase"));
}

TEST_F(PluginConfigTest, OneHostTheOldWayIsTheHostNamedDefault) {
  PluginConfig c = PluginConfig::Parse(Split());
  const auto& s = std::get<mps::plugin::SplitModeConfig>(c.mode);
  ASSERT_EQ(s.hosts.size(), 1u);
  EXPECT_EQ(s.hosts[0].name, mps::plugin::kSingleHostName);
  EXPECT_EQ(s.hosts[0].hostd_address, "tcp://10.0.0.1:7700");
  EXPECT_EQ(s.hosts[0].hostd_server_public_key, std::string(40, 'x'));
  EXPECT_FALSE(s.hosts_file);
}

TEST_F(PluginConfigTest, HostsFileGivesEveryHost) {
  Write("a.pub", std::string(40, 'a'));
  Write("b.pub", std::string(40, 'b'));
  auto hosts = Write("hosts.json", R"({"hosts": [
      {"name": "mp-a", "hostd_address": "tcp://10.0.0.11:7400", "hostd_server_key_path": "a.pub",
       "zone": "z1"},
      {"name": "mp-b", "hostd_address": "tcp://10.0.0.12:7400", "hostd_server_key_path": "b.pub",
       "zone": "z2"}]})");
  auto raw = Split();
  raw.erase("hostd_address");
  raw.erase("hostd_server_key_path");
  raw["hosts_file"] = hosts;
  PluginConfig c = PluginConfig::Parse(raw);
  ASSERT_TRUE(c.split());
  const auto& s = std::get<mps::plugin::SplitModeConfig>(c.mode);
  ASSERT_EQ(s.hosts.size(), 2u);
  EXPECT_EQ(s.hosts[1].name, "mp-b");
  EXPECT_EQ(s.hosts[1].zone, "z2");
  EXPECT_EQ(s.hosts_file, fs::path(hosts));
  EXPECT_EQ(s.hostd_address, "tcp://10.0.0.11:7400");  // the first host's
}

TEST_F(PluginConfigTest, HostsFileAndTheSingleHostKeysTogetherAreRefusedNamingBoth) {
  auto raw = Split();
  raw["hosts_file"] = Write("hosts.json", "{}");
  auto parsed = ParsePluginConfig(raw);
  ASSERT_EQ(parsed.problems.size(), 1u);
  EXPECT_EQ(parsed.problems[0].key, "hosts_file/hostd_address/hostd_server_key_path");
  EXPECT_THAT(parsed.problems[0].expected, HasSubstr("not both"));
}

TEST_F(PluginConfigTest, EachProblemOfTheHostsFileIsOneProblemOfItsKey) {
  Write("a.pub", std::string(40, 'a'));
  auto raw = Split();
  raw.erase("hostd_address");
  raw.erase("hostd_server_key_path");
  raw["hosts_file"] = Write("hosts.json", R"({"hosts": [
      {"name": "mp-a", "hostd_address": "tcp://h:1", "hostd_server_key_path": "a.pub"},
      {"name": "mp-a", "hostd_address": "nope", "hostd_server_key_path": "a.pub"}]})");
  auto parsed = ParsePluginConfig(raw);
  ASSERT_EQ(parsed.problems.size(), 2u);
  EXPECT_EQ(parsed.problems[0].key, "hosts_file");
  EXPECT_THAT(parsed.problems[0].expected, HasSubstr("hosts[1] (\"mp-a\"): hostd_address"));
  EXPECT_THAT(parsed.problems[1].expected,
              HasSubstr("hosts[1] (\"mp-a\"): name: \"mp-a\" is already the name of hosts[0]"));
}
