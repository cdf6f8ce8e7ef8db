// Runs the cluster-sim binary as the demo and other tests do: waits for its
// ready lines on stdout, talks to it, restarts it with SIGUSR1, stops it with SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "raw_client.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

namespace {

using namespace std::chrono_literals;
using mps::sim::testing::RawClient;
using mps::testing::ChildProcess;

std::vector<std::string> SimArgs(std::vector<std::string> args) {
  args.insert(args.begin(), mps::testing::BinDir() + "/cluster-sim");
  return args;
}

class ClusterSimBinary : public ::testing::Test {
 protected:
  mps::testing::TempDir tmp_;
  std::filesystem::path dir_{tmp_.path()};
};

TEST_F(ClusterSimBinary, PrintsReadyLinesServesRestartsAndStopsOnSigterm) {
  auto socket = (dir_ / "mp.sock").string();
  auto state = (dir_ / "state").string();
  ChildProcess c(SimArgs({"--multipass-socket", socket, "--multipass-tls", "127.0.0.1:0",
                          "--state-dir", state, "--boot-delay", "50ms"}));
  std::vector<std::string> lines;
  while (auto line = c.ReadLine(5s)) {
    lines.push_back(*line);
    if (*line == "ready") break;
  }
  ASSERT_EQ(lines.size(), 4u) << c.stderr_text();
  EXPECT_EQ(lines[0], "multipass unix:" + socket);
  ASSERT_EQ(lines[1].rfind("multipass-tls 127.0.0.1:", 0), 0u) << lines[1];
  EXPECT_GT(std::stoi(lines[1].substr(lines[1].rfind(':') + 1)), 0);
  EXPECT_EQ(lines[2], "root-cert " + state + "/multipass_root_cert.pem");
  EXPECT_EQ(lines[3], "ready");

  std::ifstream in(state + "/multipass_root_cert.pem");
  std::stringstream root;
  root << in.rdbuf();
  auto id = mps::sim::CertificateAuthority::SelfSignedClientCertificate("bin-test");
  RawClient client("unix:" + socket, root.str(), id);
  auto launched = client.Launch(mps::sim::testing::LaunchOf("vm"));
  ASSERT_TRUE(launched.status.ok()) << launched.status.error_message();

  c.Signal(SIGUSR1);
  ASSERT_TRUE(c.WaitForStderr("restarted", 5s)) << c.stderr_text();
  // After the restart the same client reconnects and the instance is still there.
  // A call that races the dropped connection fails UNAVAILABLE, as with a
  // restarted multipassd; a client retries it.
  auto list = client.List();
  for (int i = 0; i < 20 && list.status.error_code() == grpc::StatusCode::UNAVAILABLE; ++i) {
    std::this_thread::sleep_for(20ms);
    list = client.List();
  }
  ASSERT_TRUE(list.status.ok()) << list.status.error_message();
  ASSERT_EQ(list.replies.back().instance_list().instances_size(), 1);
  EXPECT_EQ(list.replies.back().instance_list().instances(0).name(), "vm");

  c.Signal(SIGTERM);
  EXPECT_EQ(c.Wait(5s), 0) << c.stderr_text();
  EXPECT_FALSE(std::filesystem::exists(socket));
}

TEST_F(ClusterSimBinary, RefusesNonLoopbackAddressAndBadDurations) {
  ChildProcess c(SimArgs({"--multipass-tls", "0.0.0.0:50051"}));
  EXPECT_EQ(c.Wait(5s), 2);
  EXPECT_NE(c.stderr_text().find("only the loopback address"), std::string::npos)
      << c.stderr_text();

  ChildProcess d(
      SimArgs({"--multipass-socket", (dir_ / "x.sock").string(), "--boot-delay", "soon"}));
  EXPECT_EQ(d.Wait(5s), 2);
  EXPECT_NE(d.stderr_text().find("--boot-delay"), std::string::npos) << d.stderr_text();
}

}  // namespace
