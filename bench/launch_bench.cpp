// Launches through multipass-hostd (tcp + CurveZMQ) against cluster-sim with
// a 2 s boot delay: 16 launches with parallelism 16 against one launch
// (aim <= 1.3). And `multipass.list` latency through hostd against a direct
// gRPC list (MultipassClient) to the same simulated daemon.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_stats.h"
#include "bus/client.h"
#include "bus/keys.h"
#include "contracts/codec.h"
#include "contracts/multipass.h"
#include "multipass/multipass_client.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using mps::testing::ChildProcess;
namespace mp = mps::contracts::multipass;

namespace {

double LaunchBatch(mps::bus::BusClient& client, const std::string& tag, int n) {
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  std::atomic<int> failed{0};
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      std::string name = "bench-" + tag + "-" + std::to_string(i);
      try {
        mp::LaunchRequest launch;
        launch.name = name;
        launch.image = "noble";
        client.CallSync(std::string(launch.kType), mps::contracts::Encode(launch),
                        {60s, "launch/" + name});
      } catch (const std::exception& e) {
        std::fprintf(stderr, "launch %s failed: %s\n", name.c_str(), e.what());
        ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  if (failed) std::exit(1);
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main() {
  mps::testing::TempDir dir;
  auto bin = mps::testing::BinDir();
  ChildProcess sim({bin + "/cluster-sim", "--state-dir", dir.path() + "/sim", "--multipass-socket",
                    dir.path() + "/multipass.sock", "--boot-delay", "2s", "--host-cpus", "64",
                    "--host-memory", "128G", "--passphrase", "bench-passphrase"});
  if (!sim.WaitForLine("ready", 20s)) {
    std::fprintf(stderr, "cluster-sim did not start: %s\n", sim.stderr_text().c_str());
    return 1;
  }
  namespace fs = std::filesystem;
  auto server = mps::bus::GenerateKeyPair(), me = mps::bus::GenerateKeyPair();
  mps::bus::WriteKeyPair(fs::path(dir.path()) / "keys", "hostd", server);
  mps::bus::WriteKeyPair(fs::path(dir.path()) / "clients", "bench", me);
  std::string bind = "tcp://127.0.0.1:47311";
  // The strict simulator knows only the CLI's certificate: hostd authenticates.
  { std::ofstream(dir.path() + "/passphrase") << "bench-passphrase\n"; }
  ChildProcess hostd(
      {bin + "/multipass-hostd", "--multipass-address", "unix:" + dir.path() + "/multipass.sock",
       "--bind", bind, "--server-key", dir.path() + "/keys/hostd.key", "--authorized-keys",
       dir.path() + "/clients", "--allow-prefix", "bench", "--state-dir", dir.path() + "/hostd",
       "--max-parallel-launches", "16", "--multipass-passphrase-file", dir.path() + "/passphrase"});
  if (!hostd.WaitForLine("ready", 20s)) {
    std::fprintf(stderr, "multipass-hostd did not start: %s\n", hostd.stderr_text().c_str());
    return 1;
  }
  mps::bus::BusContext ctx;
  mps::bus::ClientOptions co;
  co.endpoint = bind;
  co.curve = mps::bus::CurveClientConfig{me.secret_z85, server.public_z85};
  mps::bus::BusClient client(ctx, co);

  // The first launch of an image runs alone (it "downloads"); warm the cache first.
  LaunchBatch(client, "warm", 1);
  double one = LaunchBatch(client, "one", 1);
  double sixteen = LaunchBatch(client, "many", 16);

  // List latency (states, as the watcher lists; with addresses the daemon's
  // SSH per VM would dominate): through hostd vs a direct gRPC client to the
  // same daemon.
  mps::multipass::MultipassClientOptions direct_options;
  direct_options.address = "unix:" + dir.path() + "/multipass.sock";
  direct_options.state_dir = dir.path() + "/hostd";  // the certificate the daemon already knows
  mps::multipass::MultipassClient direct(direct_options);
  std::vector<std::chrono::nanoseconds> via_hostd, via_grpc;
  const auto list_type = std::string(mp::ListRequest::kType);
  const auto list = mps::contracts::Encode(mp::ListRequest{"bench", false});
  for (int i = 0; i < 50; ++i) {
    client.CallSync(list_type, list);
    direct.List("bench", false);
  }
  for (int i = 0; i < 500; ++i) {
    auto t0 = Clock::now();
    client.CallSync(list_type, list);
    via_hostd.push_back(Clock::now() - t0);
    t0 = Clock::now();
    direct.List("bench", false);
    via_grpc.push_back(Clock::now() - t0);
  }
  auto h = mps::bench::Summarize(via_hostd), g = mps::bench::Summarize(via_grpc);
  std::printf("launch through multipass-hostd (tcp+Curve) against cluster-sim, boot delay 2 s\n");
  std::printf("%-30s %10s\n", "case", "wall (s)");
  std::printf("%-30s %10.2f\n", "1 launch", one);
  std::printf("%-30s %10.2f\n", "16 launches, parallelism 16", sixteen);
  std::printf("ratio 16 / 1: %.2f (aim <= 1.3; sequential would be 16)\n", sixteen / one);
  std::printf("list of 18 instances          p50 (us)   p99 (us)\n");
  std::printf("%-30s %10.1f %10.1f\n", "via hostd (bus, tcp+Curve)", h.p50_us, h.p99_us);
  std::printf("%-30s %10.1f %10.1f\n", "direct gRPC to the daemon", g.p50_us, g.p99_us);
  std::printf("ratio p50 hostd/direct: %.2f\n", h.p50_us / g.p50_us);
  return 0;
}
