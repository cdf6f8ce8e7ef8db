// Runs the cluster-sim binary as the demo and other tests do: waits for its
// ready lines on stdout, talks to it, restarts it with SIGUSR1, stops it with SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
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
                          "--state-dir", state, "--boot-delay", "50ms", "--passphrase", "sesame"}));
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
  ASSERT_TRUE(client.Authenticate("sesame").ok());  // a used host: the store is not empty
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

std::string RootOf(const std::string& state) {
  std::ifstream in(state + "/multipass_root_cert.pem");
  std::stringstream root;
  root << in.rdbuf();
  return root.str();
}

std::map<std::string, long> Stats(ChildProcess& c) {
  c.Signal(SIGUSR2);
  std::map<std::string, long> out;
  while (auto line = c.ReadLine(5s)) {
    if (line->rfind("stats ", 0) != 0) continue;
    std::istringstream words(line->substr(6));
    std::string word;
    while (words >> word) {
      auto eq = word.find('=');
      out[word.substr(0, eq)] = std::stol(word.substr(eq + 1));
    }
    break;
  }
  return out;
}

TEST_F(ClusterSimBinary, StrictByDefaultAndReportsTheRpcThreadsBusyTime) {
  auto socket = (dir_ / "mp.sock").string();
  auto state = (dir_ / "state").string();
  ChildProcess c(SimArgs({"--multipass-socket", socket, "--state-dir", state, "--boot-delay",
                          "10ms", "--passphrase", "sesame", "--daemon-version", "1.15.2"}));
  ASSERT_TRUE(c.WaitForLine("ready", 5s)) << c.stderr_text();
  RawClient client("unix:" + socket, RootOf(state),
                   mps::sim::CertificateAuthority::SelfSignedClientCertificate("new"));
  EXPECT_EQ(client.Version().status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(client.Authenticate("wrong").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(client.Authenticate("sesame").ok());
  auto version = client.Version();
  ASSERT_TRUE(version.status.ok());
  EXPECT_EQ(version.replies.back().version(), "1.15.2");
  for (auto n : {"a", "b"}) ASSERT_TRUE(client.Launch(mps::sim::testing::LaunchOf(n)).status.ok());
  auto before = Stats(c);
  ASSERT_TRUE(client.List(true).status.ok());
  auto after = Stats(c);
  EXPECT_EQ(after["ssh_commands"] - before["ssh_commands"], 2);      // the default SSH cost...
  EXPECT_GE(after["rpc_busy_us"] - before["rpc_busy_us"], 100'000);  // ...is 50 ms each
  EXPECT_EQ(after["rpc_calls"] - before["rpc_calls"], 1);
  c.Signal(SIGTERM);
  EXPECT_EQ(c.Wait(5s), 0) << c.stderr_text();
}

TEST_F(ClusterSimBinary, ConcurrentLaunchesShareOneDownloadThatTheTimeoutDoesNotCount) {
  auto socket = (dir_ / "mp.sock").string();
  auto state = (dir_ / "state").string();
  ChildProcess c(SimArgs({"--multipass-socket", socket, "--state-dir", state, "--ssh-delay", "1ms",
                          "--empty-cert-store", "--download-delay", "1500ms", "--boot-delay",
                          "200ms", "--cloud-init-delay", "200ms"}));
  ASSERT_TRUE(c.WaitForLine("ready", 5s)) << c.stderr_text();
  RawClient client("unix:" + socket, RootOf(state),
                   mps::sim::CertificateAuthority::SelfSignedClientCertificate("first"));
  ASSERT_TRUE(client.Version().status.ok());
  // A 1 s timeout: the 1.5 s download is not counted, SSH-up and cloud-init
  // each fit in it.
  auto second = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(300ms);  // joins the download in flight
    return client.Launch(mps::sim::testing::LaunchOf("b", "jammy", 1), 10s);
  });
  auto first = client.Launch(mps::sim::testing::LaunchOf("a", "jammy", 1), 10s);
  EXPECT_TRUE(first.status.ok()) << first.status.error_message();
  auto b = second.get();
  EXPECT_TRUE(b.status.ok()) << b.status.error_message();
  EXPECT_EQ(Stats(c)["image_downloads"], 1);
  c.Signal(SIGTERM);
  EXPECT_EQ(c.Wait(5s), 0) << c.stderr_text();
}

TEST_F(ClusterSimBinary, EmptyCertStoreAutoAcceptsTheFirstUnixClient) {
  auto socket = (dir_ / "mp.sock").string();
  auto state = (dir_ / "state").string();
  ChildProcess c(SimArgs({"--multipass-socket", socket, "--state-dir", state, "--ssh-delay", "1ms",
                          "--empty-cert-store"}));
  ASSERT_TRUE(c.WaitForLine("ready", 5s)) << c.stderr_text();
  RawClient first("unix:" + socket, RootOf(state),
                  mps::sim::CertificateAuthority::SelfSignedClientCertificate("first"));
  EXPECT_TRUE(first.Version().status.ok());
  RawClient second("unix:" + socket, RootOf(state),
                   mps::sim::CertificateAuthority::SelfSignedClientCertificate("second"));
  EXPECT_EQ(second.Version().status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // No passphrase set on the daemon: authenticate cannot help.
  EXPECT_EQ(second.Authenticate("x").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  c.Signal(SIGTERM);
  EXPECT_EQ(c.Wait(5s), 0) << c.stderr_text();
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

  ChildProcess e(SimArgs({"--multipass-socket", (dir_ / "y.sock").string(), "--ssh-delay", "x"}));
  EXPECT_EQ(e.Wait(5s), 2);
  EXPECT_NE(e.stderr_text().find("--ssh-delay"), std::string::npos) << e.stderr_text();
  ChildProcess f(
      SimArgs({"--multipass-socket", (dir_ / "z.sock").string(), "--daemon-version", "new"}));
  EXPECT_EQ(f.Wait(5s), 2);
  EXPECT_NE(f.stderr_text().find("--daemon-version"), std::string::npos) << f.stderr_text();
}

}  // namespace
