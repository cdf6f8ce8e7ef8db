// Runs the cluster-sim binary as the demo and other tests do: waits for its
// ready lines on stdout, talks to it, restarts it with SIGUSR1, stops it with SIGTERM.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "raw_client.h"

namespace {

using namespace std::chrono_literals;
using mps::sim::testing::RawClient;

struct Child {
  pid_t pid = -1;
  int out = -1;
  int err = -1;
};

// $MPS_BIN_DIR, else the directory of this test binary (both are build/bin).
std::string BinDir() {
  if (const char* dir = getenv("MPS_BIN_DIR"); dir != nullptr && *dir != '\0') return dir;
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
}

Child Spawn(const std::vector<std::string>& args) {
  int out[2], err[2];
  EXPECT_EQ(pipe(out), 0);
  EXPECT_EQ(pipe(err), 0);
  std::string bin = BinDir() + "/cluster-sim";
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    std::vector<char*> argv{bin.data()};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    std::string why = "exec " + bin + " failed: " + strerror(errno) + "\n";
    (void)!write(2, why.data(), why.size());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  return {pid, out[0], err[0]};
}

// Reads lines until one equals `last` (or contains it, with `contains`), EOF or the time limit.
std::vector<std::string> ReadUntil(int fd, const std::string& last, bool contains,
                                   std::chrono::milliseconds limit) {
  std::vector<std::string> lines;
  std::string buf;
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char chunk[512];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      lines.push_back(buf.substr(0, nl));
      buf.erase(0, nl + 1);
      if (contains ? lines.back().find(last) != std::string::npos : lines.back() == last)
        return lines;
    }
  }
  return lines;
}

std::string ReadAll(int fd) {
  std::string text;
  char chunk[512];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0) text.append(chunk, static_cast<size_t>(n));
  return text;
}

int WaitExit(pid_t pid, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

class ClusterSimBinary : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mpsim-bin-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::filesystem::path dir_;
};

TEST_F(ClusterSimBinary, PrintsReadyLinesServesRestartsAndStopsOnSigterm) {
  auto socket = (dir_ / "mp.sock").string();
  auto state = (dir_ / "state").string();
  Child c = Spawn({"--multipass-socket", socket, "--multipass-tls", "127.0.0.1:0", "--state-dir",
                   state, "--boot-delay", "50ms"});
  auto lines = ReadUntil(c.out, "ready", false, 5s);
  ASSERT_EQ(lines.size(), 4u) << ReadAll(c.err);
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

  ASSERT_EQ(kill(c.pid, SIGUSR1), 0);
  auto log = ReadUntil(c.err, "restarted", true, 5s);
  ASSERT_FALSE(log.empty());
  ASSERT_NE(log.back().find("restarted"), std::string::npos);
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

  ASSERT_EQ(kill(c.pid, SIGTERM), 0);
  EXPECT_EQ(WaitExit(c.pid, 5s), 0);
  EXPECT_FALSE(std::filesystem::exists(socket));
  close(c.out);
  close(c.err);
}

TEST_F(ClusterSimBinary, RefusesNonLoopbackAddressAndBadDurations) {
  Child c = Spawn({"--multipass-tls", "0.0.0.0:50051"});
  EXPECT_EQ(WaitExit(c.pid, 5s), 2);
  EXPECT_NE(ReadAll(c.err).find("only the loopback address"), std::string::npos);
  close(c.out);
  close(c.err);

  Child d = Spawn({"--multipass-socket", (dir_ / "x.sock").string(), "--boot-delay", "soon"});
  EXPECT_EQ(WaitExit(d.pid, 5s), 2);
  EXPECT_NE(ReadAll(d.err).find("--boot-delay"), std::string::npos);
  close(d.out);
  close(d.err);
}

}  // namespace
