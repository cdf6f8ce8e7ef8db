// Start-up of multipass-target against a minimal Go target plugin served by
// HashiCorp's go-plugin (goplugin-minimal-target), in the same run, started
// the way the autoscaler starts a plugin (magic cookie, protocol versions,
// socket directory in the environment). Per start:
//   exec -> handshake: fork/exec until the handshake line is read;
//   exec -> connected: then a new gRPC channel to the announced socket and
//                      BasePluginService.PluginInfo answered.
// The two binaries alternate (which goes first alternates too), so both see
// the same machine load. Each process is stopped with GRPCController.Shutdown,
// as go-plugin's Kill does, outside the timed part.
//
// usage: startup_bench [starts of each binary, default 200] [other plugin binary...]
// Other binaries (e.g. multipass-target built from an older commit) join the
// same alternation, for before/after figures from one run.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "autoscaler/base.grpc.pb.h"
#include "bench_stats.h"
#include "goplugin/grpc_controller.grpc.pb.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace base_proto = hashicorp::nomad_autoscaler::plugins::base::proto::v1;

namespace {

struct Samples {
  std::vector<std::chrono::nanoseconds> handshake, connected;
};

// One start of `binary`: returns after PluginInfo answered; stops the process.
void StartOnce(const std::string& binary, const std::string& dir, Samples& out) {
  const std::map<std::string, std::string> env{
      {"NOMAD_AUTOSCALER_PLUGIN_MAGIC_COOKIE",
       "e082fa04d587a6525d683666fa253d6afda00f20c122c54a80a3ed57fec99ff3"},
      {"PLUGIN_PROTOCOL_VERSIONS", "1"},
      {"PLUGIN_UNIX_SOCKET_DIR", dir},  // multipass-target
      {"TMPDIR", dir}};                 // go-plugin 1.0.1 (ioutil.TempFile)
  auto t0 = Clock::now();
  mps::testing::ChildOptions options;
  options.env = env;
  mps::testing::ChildProcess plugin({binary}, options);
  auto line = plugin.ReadLine(10s);
  if (!line) throw std::runtime_error(binary + ": no handshake: " + plugin.stderr_text());
  auto t1 = Clock::now();
  // 1|1|unix|/path|grpc|
  auto a = line->find("|unix|");
  if (a == std::string::npos) throw std::runtime_error(binary + ": handshake " + *line);
  a += 6;
  auto socket = line->substr(a, line->find('|', a) - a);
  auto channel = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
  {
    auto base = base_proto::BasePluginService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    base_proto::PluginInfoRequest req;
    base_proto::PluginInfoResponse resp;
    auto st = base->PluginInfo(&ctx, req, &resp);
    if (!st.ok()) throw std::runtime_error(binary + ": PluginInfo: " + st.error_message());
  }
  auto t2 = Clock::now();
  out.handshake.push_back(t1 - t0);
  out.connected.push_back(t2 - t0);
  {
    auto controller = ::plugin::GRPCController::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    ::plugin::Empty req, resp;
    controller->Shutdown(&ctx, req, &resp);
  }
  if (!plugin.Wait(3s)) {
    plugin.Signal(SIGKILL);
    plugin.Wait(3s);
  }
}

double Ms(double us) {
  return us / 1000.0;
}

int Run(int starts, std::vector<std::string> others) {
  const std::string go = mps::testing::BinDir() + "/goplugin-minimal-target";
  if (!std::filesystem::exists(go)) {
    std::fprintf(stderr, "startup_bench: %s missing (built with the Go tests)\n", go.c_str());
    return 1;
  }
  std::vector<std::pair<std::string, std::string>> binaries{
      {"multipass-target", mps::testing::BinDir() + "/multipass-target"},
      {"go-plugin minimal target (Go)", go}};
  for (auto& o : others) binaries.emplace_back(o, o);
  mps::testing::TempDir dir;
  Samples warm;
  std::vector<Samples> samples(binaries.size());
  for (int i = 0; i < 3; ++i)  // page cache, the bench's own gRPC client
    for (const auto& b : binaries) StartOnce(b.second, dir.path(), warm);
  for (int i = 0; i < starts; ++i) {
    for (std::size_t k = 0; k < binaries.size(); ++k) {
      // Each round starts with the next binary, so none always goes first.
      std::size_t at = (k + static_cast<std::size_t>(i)) % binaries.size();
      StartOnce(binaries[at].second, dir.path(), samples[at]);
    }
  }
  std::printf("start-up, %d starts of each, alternating\n", starts);
  std::printf("%-34s %12s %12s %12s %12s\n", "binary", "hs p50 (ms)", "hs p99 (ms)",
              "conn p50 (ms)", "conn p99 (ms)");
  std::vector<mps::bench::Percentiles> connected;
  for (std::size_t k = 0; k < binaries.size(); ++k) {
    auto h = mps::bench::Summarize(samples[k].handshake);
    auto c = mps::bench::Summarize(samples[k].connected);
    connected.push_back(c);
    std::printf("%-34s %12.1f %12.1f %12.1f %12.1f\n", binaries[k].first.c_str(), Ms(h.p50_us),
                Ms(h.p99_us), Ms(c.p50_us), Ms(c.p99_us));
  }
  for (std::size_t k = 0; k < binaries.size(); ++k) {
    if (k == 1) continue;
    std::printf("ratio %s / Go, exec -> connected: p50 %.2f, p99 %.2f (aim <= 1)\n",
                binaries[k].first.c_str(), connected[k].p50_us / connected[1].p50_us,
                connected[k].p99_us / connected[1].p99_us);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int starts = argc > 1 ? std::atoi(argv[1]) : 200;
  if (starts <= 0) {
    std::fprintf(stderr, "usage: startup_bench [starts of each binary > 0]\n");
    return 2;
  }
  try {
    return Run(starts, std::vector<std::string>(argv + std::min(argc, 2), argv + argc));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "startup_bench: %s\n", e.what());
    return 1;
  }
}
