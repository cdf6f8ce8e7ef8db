// Status latency through the plugin's go-plugin gRPC socket, against a bare
// gRPC unary round trip (grpc.health.v1.Health/Check) on the same socket of
// the same process, in the same run. Status takes the real path: gRPC →
// BusTargetBackend → bus (ipc + Curve) → multipass-hostd → multipassd
// (cluster-sim) list. Also start-up time from exec to the handshake line.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "autoscaler/base.grpc.pb.h"
#include "autoscaler/target.grpc.pb.h"
#include "bench_stats.h"
#include "bus/keys.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "support/child_process.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using mps::testing::ChildProcess;
namespace base = hashicorp::nomad_autoscaler::plugins::base::proto::v1;
namespace target = hashicorp::nomad_autoscaler::plugins::target::proto::v1;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 2000;
  mps::testing::TempDir dir;
  auto bin = mps::testing::BinDir();
  ChildProcess sim({bin + "/cluster-sim", "--state-dir", dir.path() + "/sim", "--multipass-socket",
                    dir.path() + "/mp.sock", "--boot-delay", "10ms"});
  if (!sim.WaitForLine("ready", 20s)) return 1;
  auto server = mps::bus::GenerateKeyPair(), plugin = mps::bus::GenerateKeyPair();
  fs::path keys = fs::path(dir.path()) / "keys";
  mps::bus::WriteKeyPair(keys / "hostd", "hostd", server);
  mps::bus::WriteKeyPair(keys / "clients", "plugin", plugin);
  std::string endpoint = "ipc://" + dir.path() + "/hostd.sock";
  ChildProcess hostd({bin + "/multipass-hostd", "--multipass-address",
                      "unix:" + dir.path() + "/mp.sock", "--bind", endpoint, "--server-key",
                      (keys / "hostd" / "hostd.key").string(), "--authorized-keys",
                      (keys / "clients").string(), "--state-dir", dir.path() + "/hostd"});
  if (!hostd.WaitForLine("ready", 20s)) {
    std::fprintf(stderr, "%s\n", hostd.stderr_text().c_str());
    return 1;
  }

  // Start-up: exec to handshake line, a few times.
  std::vector<std::chrono::nanoseconds> startups;
  std::unique_ptr<ChildProcess> target_process;
  std::string socket;
  for (int i = 0; i < 5; ++i) {
    auto t0 = Clock::now();
    target_process = std::make_unique<ChildProcess>(
        std::vector<std::string>{bin + "/multipass-target"},
        std::map<std::string, std::string>{
            {"NOMAD_AUTOSCALER_PLUGIN_MAGIC_COOKIE",
             "e082fa04d587a6525d683666fa253d6afda00f20c122c54a80a3ed57fec99ff3"},
            {"PLUGIN_PROTOCOL_VERSIONS", "1"},
            {"PLUGIN_UNIX_SOCKET_DIR", dir.path()}});
    auto line = target_process->ReadLine(10s);
    if (!line) return 1;
    startups.push_back(Clock::now() - t0);
    // 1|1|unix|/path|grpc|
    auto a = line->find("unix|") + 5;
    socket = line->substr(a, line->find('|', a) - a);
    if (i < 4) target_process.reset();
  }

  auto channel = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
  auto base_stub = base::BasePluginService::NewStub(channel);
  auto target_stub = target::TargetPluginService::NewStub(channel);
  auto health = grpc::health::v1::Health::NewStub(channel);
  {
    grpc::ClientContext ctx;
    base::SetConfigRequest req;
    base::SetConfigResponse resp;
    (*req.mutable_config())["hostd_address"] = endpoint;
    (*req.mutable_config())["hostd_server_key_path"] = (keys / "hostd" / "hostd.pub").string();
    (*req.mutable_config())["bus_key_path"] = (keys / "clients" / "plugin.key").string();
    auto st = base_stub->SetConfig(&ctx, req, &resp);
    if (!st.ok()) {
      std::fprintf(stderr, "SetConfig: %s\n", st.error_message().c_str());
      return 1;
    }
  }
  auto status_once = [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 7500ms);
    target::StatusRequest req;
    (*req.mutable_config())["node_class"] = "web";
    target::StatusResponse resp;
    auto st = target_stub->Status(&ctx, req, &resp);
    if (!st.ok()) {
      std::fprintf(stderr, "Status: %s\n", st.error_message().c_str());
      std::exit(1);
    }
  };
  auto health_once = [&] {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("plugin");
    grpc::health::v1::HealthCheckResponse resp;
    if (!health->Check(&ctx, req, &resp).ok()) std::exit(1);
  };
  for (int i = 0; i < 200; ++i) {
    status_once();
    health_once();
  }
  std::vector<std::chrono::nanoseconds> status, bare;
  for (int i = 0; i < iterations; ++i) {
    auto t0 = Clock::now();
    status_once();
    status.push_back(Clock::now() - t0);
    t0 = Clock::now();
    health_once();
    bare.push_back(Clock::now() - t0);
  }
  auto s = mps::bench::Summarize(status), b = mps::bench::Summarize(bare),
       up = mps::bench::Summarize(startups);
  std::printf("Status through the plugin socket vs bare unary on the same socket, %d calls\n",
              iterations);
  std::printf("%-44s %10s %10s\n", "path", "p50 (us)", "p99 (us)");
  std::printf("%-44s %10.1f %10.1f\n", "Status (bus -> hostd -> multipassd list)", s.p50_us,
              s.p99_us);
  std::printf("%-44s %10.1f %10.1f\n", "bare unary (Health/Check)", b.p50_us, b.p99_us);
  std::printf("ratio p50 Status/bare: %.2f, p99: %.2f\n", s.p50_us / b.p50_us, s.p99_us / b.p99_us);
  std::printf("start-up exec -> handshake line: p50 %.1f ms (5 runs)\n", up.p50_us / 1000.0);
  return 0;
}
