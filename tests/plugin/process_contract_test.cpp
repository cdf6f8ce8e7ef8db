#include "plugin/process_contract.h"

#include <sys/stat.h>

#include <filesystem>
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace mps::plugin;

namespace {

GetEnv EnvOf(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST(ProcessContract, MagicCookieMustMatchExactly) {
  EXPECT_TRUE(MagicCookieValid(EnvOf({{kMagicCookieKey, kMagicCookieValue}})));
  EXPECT_FALSE(MagicCookieValid(EnvOf({})));
  EXPECT_FALSE(MagicCookieValid(EnvOf({{kMagicCookieKey, std::string(kMagicCookieValue) + " "}})));
}

TEST(ProcessContract, ProtocolNegotiation) {
  std::vector<std::string> skipped;
  EXPECT_EQ(NegotiateAppProtocol("1", &skipped), 1);
  EXPECT_EQ(NegotiateAppProtocol(" 3, 1 ,x", &skipped), 1);
  EXPECT_THAT(skipped, testing::ElementsAre("x"));
  EXPECT_EQ(NegotiateAppProtocol("2,3"), kAppProtocolVersion);  // host will refuse
  EXPECT_EQ(NegotiateAppProtocol(std::nullopt), kAppProtocolVersion);
}

TEST(ProcessContract, UnixPlanAndHandshakeLine) {
  auto plan = PlanListener(EnvOf({{"PLUGIN_UNIX_SOCKET_DIR", "/tmp"}}));
  EXPECT_EQ(plan.network, ListenerPlan::Network::unix);
  EXPECT_EQ(plan.socket_path.parent_path(), "/tmp");
  EXPECT_FALSE(plan.private_dir);
  EXPECT_EQ(HandshakeLine(1, plan, 0), "1|1|unix|" + plan.socket_path.string() + "|grpc|");
  EXPECT_EQ(GrpcListenUri(plan, 0), "unix:" + plan.socket_path.string());
}

TEST(ProcessContract, PrivateDirIsCreatedOwnerOnly) {
  auto plan = PlanListener(EnvOf({{"TMPDIR", fs::temp_directory_path().string()}}));
  ASSERT_TRUE(plan.private_dir);
  struct stat st {};
  ASSERT_EQ(stat(plan.private_dir->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(plan.socket_path.parent_path(), *plan.private_dir);
  fs::remove(*plan.private_dir);
}

TEST(ProcessContract, TcpPlanValidatesRange) {
  auto plan = PlanListener(EnvOf({{"MPS_PLUGIN_TRANSPORT", "tcp"},
                                  {"PLUGIN_MIN_PORT", "20000"},
                                  {"PLUGIN_MAX_PORT", "20010"}}));
  EXPECT_EQ(plan.network, ListenerPlan::Network::tcp);
  EXPECT_EQ(plan.min_port, 20000);
  EXPECT_EQ(HandshakeLine(1, plan, 20001), "1|1|tcp|127.0.0.1:20001|grpc|");
  EXPECT_THROW(PlanListener(EnvOf({{"MPS_PLUGIN_TRANSPORT", "udp"}})), ListenerError);
  EXPECT_THROW(PlanListener(EnvOf({{"MPS_PLUGIN_TRANSPORT", "tcp"}, {"PLUGIN_MIN_PORT", "x"}})),
               ListenerError);
  EXPECT_THROW(
      PlanListener(EnvOf(
          {{"MPS_PLUGIN_TRANSPORT", "tcp"}, {"PLUGIN_MIN_PORT", "5"}, {"PLUGIN_MAX_PORT", "4"}})),
      ListenerError);
  EXPECT_THROW(PlanListener(EnvOf({{"PLUGIN_UNIX_SOCKET_DIR", "/nonexistent/dir"}})),
               ListenerError);
}
