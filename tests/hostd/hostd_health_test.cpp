// multipass-hostd's health surface as systemd and Nomad see it: READY=1 and
// watchdog kicks on a captured NOTIFY_SOCKET, /ready and /metrics over HTTP,
// with multipassd up and with multipassd unreachable.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <httplib.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "support/child_process.h"
#include "support/notify_socket.h"
#include "support/temp_dir.h"

namespace {

using namespace std::chrono_literals;
using mps::testing::BinDir;
using mps::testing::ChildProcess;
using mps::testing::TempDir;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using mps::testing::NotifySocket;

struct Hostd {
  std::unique_ptr<ChildProcess> proc;
  int metrics_port = 0;
};

Hostd StartHostd(const TempDir& dir, const std::string& multipass_address,
                 const std::string& notify_socket) {
  Hostd h;
  // The strict simulator's cert store already trusts the CLI: hostd
  // authenticates with the passphrase, as on a real host.
  { std::ofstream(dir.path() + "/passphrase") << "sesame\n"; }
  h.proc = std::make_unique<ChildProcess>(
      std::vector<std::string>{
          BinDir() + "/multipass-hostd", "--multipass-address", multipass_address,
          "--multipass-passphrase-file", dir.path() + "/passphrase", "--bind",
          "ipc://" + dir.path() + "/hostd.sock", "--state-dir", dir.path() + "/hostd",
          "--allow-prefix", "web", "--metrics-address", "0", "--probe-interval", "1"},
      mps::testing::ChildOptions{
          .env = {{"NOTIFY_SOCKET", notify_socket}, {"WATCHDOG_USEC", "400000"}},
          .unset_env_prefixes = {},
          .pipe_stdin = false});
  EXPECT_TRUE(h.proc->WaitForLine("ready ", 10s)) << h.proc->stderr_text();
  auto line = h.proc->WaitForLine("metrics http://127.0.0.1:", 5s);
  EXPECT_TRUE(line) << h.proc->stderr_text();
  if (line) h.metrics_port = std::stoi(line->substr(line->rfind(':') + 1));
  return h;
}

TEST(HostdHealth, NotifiesSystemdAndIsReadyWithMultipassd) {
  TempDir dir;
  ChildProcess sim({BinDir() + "/cluster-sim", "--multipass-socket", dir.path() + "/mp.sock",
                    "--state-dir", dir.path() + "/sim", "--passphrase", "sesame", "--ssh-delay",
                    "1ms"});
  ASSERT_TRUE(sim.WaitForLine("ready", 10s)) << sim.stderr_text();
  NotifySocket notify(dir.path() + "/notify");
  auto hostd = StartHostd(dir, "unix:" + dir.path() + "/mp.sock", notify.path());
  auto first = notify.Until("READY=1", 10s);
  ASSERT_THAT(first, Contains(StartsWith("READY=1\nSTATUS=serving ipc://")))
      << hostd.proc->stderr_text();
  // Kicked from the bus I/O loop at least every half WatchdogSec.
  auto kicks = notify.Until("never", 1200ms);
  EXPECT_GE(std::count(kicks.begin(), kicks.end(), "WATCHDOG=1"), 2);

  httplib::Client http("127.0.0.1", hostd.metrics_port);
  auto ready = http.Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200) << ready->body;
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("mps_multipassd_reachable 1"));
  EXPECT_THAT(metrics->body, HasSubstr("mps_host_cpus "));

  hostd.proc->Signal(SIGTERM);
  EXPECT_THAT(notify.Until("STOPPING=1", 5s), Contains("STOPPING=1"));
  EXPECT_EQ(hostd.proc->Wait(10s), 0) << hostd.proc->stderr_text();
}

TEST(HostdHealth, NotReadyWhileMultipassdIsUnreachable) {
  TempDir dir;
  NotifySocket notify(dir.path() + "/notify");
  auto hostd = StartHostd(dir, "unix:" + dir.path() + "/nobody-here.sock", notify.path());
  // systemd still hears READY=1 (the bus is served), with why it is not usable.
  auto first = notify.Until("READY=1", 15s);
  ASSERT_THAT(first, Contains(HasSubstr("multipassd unreachable"))) << hostd.proc->stderr_text();
  httplib::Client http("127.0.0.1", hostd.metrics_port);
  auto ready = http.Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_THAT(ready->body, HasSubstr("multipassd unreachable"));
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("mps_multipassd_reachable 0"));
  EXPECT_THAT(metrics->body,
              HasSubstr("mps_multipassd_rpc_errors_total{code=\"unreachable\",rpc=\"list\"}"));
  hostd.proc->Signal(SIGTERM);
  EXPECT_EQ(hostd.proc->Wait(10s), 0) << hostd.proc->stderr_text();
}

}  // namespace
