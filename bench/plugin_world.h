#pragma once
// One world for the plugin benchmarks: cluster-sim (Multipass + Nomad on
// loopback), a real multipass-hostd (ipc + Curve) per Multipass host and
// multipass-target started as the autoscaler starts it (magic cookie,
// go-plugin handshake on stdout), driven over its gRPC socket like the
// autoscaler drives it. One host is configured with `hostd_address`; several
// (`WorldOptions::hosts`) are `cluster-sim --hosts N`, one hostd each, and a
// `hosts_file` listing them (issue 13).
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "autoscaler/base.grpc.pb.h"
#include "autoscaler/target.grpc.pb.h"
#include "bus/client.h"
#include "bus/keys.h"
#include "contracts/codec.h"
#include "contracts/multipass.h"
#include "goplugin/grpc_controller.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

namespace mps::bench {

namespace base_proto = hashicorp::nomad_autoscaler::plugins::base::proto::v1;
namespace target_proto = hashicorp::nomad_autoscaler::plugins::target::proto::v1;
using ConfigMap = std::map<std::string, std::string>;

struct WorldOptions {
  std::string boot_delay = "10ms";
  std::string join_delay = "100ms";
  int max_parallel_launches = 4;  // hostd's and the plugin's
  int hosts = 1;                  // Multipass hosts, each with its own hostd
  std::string host_cpus = "64";   // each host's
  std::string host_memory = "128G";
  std::string ssh_delay = "50ms";  // cluster-sim's default: one SSH command in a VM
  // Extra environment of multipass-target.
  std::map<std::string, std::string> plugin_env;
  // More cluster-sim flags (--cloud-init-delay, --start-delay, ...).
  std::vector<std::string> sim_args;
};

// VmRSS of a live process in KiB (0 when it cannot be read).
inline long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

class PluginWorld {
 public:
  using Clock = std::chrono::steady_clock;

  explicit PluginWorld(WorldOptions options) : options_(std::move(options)) {
    using namespace std::chrono_literals;
    namespace fs = std::filesystem;
    auto bin = mps::testing::BinDir();
    const bool several = options_.hosts > 1;
    std::vector<std::string> sim_argv{bin + "/cluster-sim",
                                      "--state-dir",
                                      dir() + "/sim",
                                      "--nomad-port",
                                      "0",
                                      "--boot-delay",
                                      options_.boot_delay,
                                      "--join-delay",
                                      options_.join_delay,
                                      "--host-cpus",
                                      options_.host_cpus,
                                      "--host-memory",
                                      options_.host_memory,
                                      "--ssh-delay",
                                      options_.ssh_delay,
                                      "--passphrase",
                                      "bench-passphrase"};
    if (several) {
      // Host I's daemon listens on DIR/mp-I.sock.
      sim_argv.insert(sim_argv.end(),
                      {"--hosts", std::to_string(options_.hosts), "--multipass-socket-dir", dir()});
    } else {
      sim_argv.insert(sim_argv.end(), {"--multipass-socket", dir() + "/mp.sock"});
    }
    sim_argv.insert(sim_argv.end(), options_.sim_args.begin(), options_.sim_args.end());
    sim_ = std::make_unique<mps::testing::ChildProcess>(sim_argv);
    for (;;) {
      auto line = sim_->ReadLine(20s);
      if (!line) throw std::runtime_error("cluster-sim did not start: " + sim_->stderr_text());
      if (line->rfind("nomad ", 0) == 0) nomad_address_ = line->substr(6);
      if (*line == "ready") break;
    }
    client_ = mps::bus::GenerateKeyPair();
    mps::bus::WriteKeyPair(fs::path(dir()) / "keys" / "clients", "plugin", client_);
    std::ofstream(dir() + "/web.yaml")
        << "#cloud-config\n# nomad client.hcl:\nnode_class = \"web\"\n";
    // The strict simulator: hostd authenticates with the daemon's passphrase.
    std::ofstream(dir() + "/passphrase") << "bench-passphrase\n";
    nlohmann::json hosts_file = nlohmann::json::array();
    for (int i = 0; i < options_.hosts; ++i) {
      // One host keeps the layout the single-host benchmarks always had.
      const std::string suffix = several ? "-" + std::to_string(i) : "";
      Host& host = hosts_.emplace_back();
      host.name = several ? "mp-" + std::to_string(i) : "default";
      host.endpoint = "ipc://" + dir() + "/hostd" + suffix + ".sock";
      host.key_dir = dir() + "/keys/hostd" + suffix;
      host.key = mps::bus::GenerateKeyPair();
      mps::bus::WriteKeyPair(host.key_dir, "hostd", host.key);
      host.process = std::make_unique<mps::testing::ChildProcess>(std::vector<std::string>{
          bin + "/multipass-hostd", "--multipass-address",
          "unix:" + dir() + "/" + (several ? host.name : "mp") + ".sock", "--bind", host.endpoint,
          "--server-key", host.key_dir + "/hostd.key", "--authorized-keys", dir() + "/keys/clients",
          "--state-dir", dir() + "/hostd" + suffix, "--allow-prefix", "web", "--allow-prefix",
          "warm", "--max-parallel-launches", std::to_string(options_.max_parallel_launches),
          "--multipass-passphrase-file", dir() + "/passphrase"});
      hosts_file.push_back({{"name", host.name},
                            {"hostd_address", host.endpoint},
                            {"hostd_server_key_path", host.key_dir + "/hostd.pub"}});
    }
    for (auto& host : hosts_) {
      if (!host.process->WaitForLine("ready", 20s)) {
        throw std::runtime_error("multipass-hostd " + host.name +
                                 " did not start: " + host.process->stderr_text());
      }
    }
    if (several) std::ofstream(dir() + "/hosts.json") << nlohmann::json{{"hosts", hosts_file}};
    policy = {{"node_class", "web"},
              {"instance_image_name", "noble"},
              {"instance_size", "c1-m1"},
              {"cloud_init_user_data_path", dir() + "/web.yaml"},
              {"startup_timeout", "60s"},
              {"node_registration_timeout", "60s"},
              {"max_instances", "16"},
              {"max_parallel_launches", std::to_string(options_.max_parallel_launches)}};
  }

  const std::string& dir() const { return dir_.path(); }
  const std::string& nomad_address() const { return nomad_address_; }
  // The first host's hostd.
  pid_t hostd_pid() const { return hosts_.front().process->pid(); }
  pid_t plugin_pid() const { return plugin_ ? plugin_->pid() : -1; }

  // Execs multipass-target; returns the time from exec to its handshake line.
  std::chrono::nanoseconds StartPlugin() {
    using namespace std::chrono_literals;
    channel_.reset();
    plugin_.reset();
    auto t0 = Clock::now();
    mps::testing::ChildOptions options;
    options.env = {{"NOMAD_AUTOSCALER_PLUGIN_MAGIC_COOKIE",
                    "e082fa04d587a6525d683666fa253d6afda00f20c122c54a80a3ed57fec99ff3"},
                   {"PLUGIN_PROTOCOL_VERSIONS", "1"},
                   {"PLUGIN_UNIX_SOCKET_DIR", dir()}};
    for (const auto& [k, v] : options_.plugin_env) options.env[k] = v;
    plugin_ = std::make_unique<mps::testing::ChildProcess>(
        std::vector<std::string>{mps::testing::BinDir() + "/multipass-target"}, options);
    auto line = plugin_->ReadLine(10s);
    if (!line) throw std::runtime_error("no handshake: " + plugin_->stderr_text());
    auto took = Clock::now() - t0;
    // 1|1|unix|/path|grpc|
    auto a = line->find("unix|") + 5;
    auto socket = line->substr(a, line->find('|', a) - a);
    channel_ = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
    base_ = base_proto::BasePluginService::NewStub(channel_);
    target_ = target_proto::TargetPluginService::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
    return took;
  }

  // Stops the plugin as go-plugin's client does (GRPCController.Shutdown,
  // then the connection is dropped); returns the time from the Shutdown call
  // to the process's clean exit, or nullopt when it did not exit with status
  // 0 within 10 s (it is killed then).
  std::optional<std::chrono::nanoseconds> StopPlugin() {
    using namespace std::chrono_literals;
    auto t0 = Clock::now();
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 5s);
      ::plugin::Empty req, resp;
      auto st = ::plugin::GRPCController::NewStub(channel_)->Shutdown(&ctx, req, &resp);
      if (!st.ok()) throw std::runtime_error("Shutdown: " + st.error_message());
    }
    base_.reset();
    target_.reset();
    health_.reset();
    channel_.reset();
    auto status = plugin_->Wait(10s);
    auto took = Clock::now() - t0;
    plugin_.reset();
    if (status != 0) return std::nullopt;
    return took;
  }

  // `extra` keys are added to (or override) the world's configuration.
  void SetConfig(const std::map<std::string, std::string>& extra = {}) {
    grpc::ClientContext ctx;
    base_proto::SetConfigRequest req;
    base_proto::SetConfigResponse resp;
    auto& c = *req.mutable_config();
    if (hosts_.size() > 1) {
      c["hosts_file"] = dir() + "/hosts.json";
    } else {
      c["hostd_address"] = hosts_.front().endpoint;
      c["hostd_server_key_path"] = hosts_.front().key_dir + "/hostd.pub";
    }
    c["bus_key_path"] = dir() + "/keys/clients/plugin.key";
    c["nomad_address"] = nomad_address_;
    c["state_dir"] = dir() + "/target";
    c["max_parallel_launches"] = std::to_string(options_.max_parallel_launches);
    for (const auto& [k, v] : extra) c[k] = v;
    auto st = base_->SetConfig(&ctx, req, &resp);
    if (!st.ok()) throw std::runtime_error("SetConfig: " + st.error_message());
  }

  target_proto::StatusResponse Status() {
    using namespace std::chrono_literals;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 7500ms);
    target_proto::StatusRequest req;
    for (const auto& [k, v] : policy) (*req.mutable_config())[k] = v;
    target_proto::StatusResponse resp;
    auto st = target_->Status(&ctx, req, &resp);
    if (!st.ok()) throw std::runtime_error("Status: " + st.error_message());
    return resp;
  }

  // Status and Scale that report failure instead of throwing (the soak
  // counts errors); safe from several threads (gRPC stubs are).
  grpc::Status TryStatus(target_proto::StatusResponse* resp, std::chrono::milliseconds deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    target_proto::StatusRequest req;
    for (const auto& [k, v] : policy) (*req.mutable_config())[k] = v;
    return target_->Status(&ctx, req, resp);
  }
  grpc::Status TryScale(std::int64_t count, std::chrono::milliseconds deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    target_proto::ScaleRequest req;
    for (const auto& [k, v] : policy) (*req.mutable_config())[k] = v;
    req.mutable_action()->set_count(count);
    req.mutable_action()->set_reason("soak");
    req.mutable_action()->set_direction(
        hashicorp::nomad_autoscaler::plugins::shared::proto::v1::SCALING_DIRECTION_UP);
    target_proto::ScaleResponse resp;
    return target_->Scale(&ctx, req, &resp);
  }

  // Polls Status until ready with `count` instances; returns when it was seen.
  Clock::time_point WaitReady(std::int64_t count, std::chrono::milliseconds timeout) {
    using namespace std::chrono_literals;
    auto give_up = Clock::now() + timeout;
    target_proto::StatusResponse last;
    while (Clock::now() < give_up) {
      last = Status();
      if (last.ready() && last.count() == count) return Clock::now();
      std::this_thread::sleep_for(5ms);
    }
    std::string meta;
    for (const auto& [k, v] : last.meta()) meta += " " + k + "=" + v;
    throw std::runtime_error("pool not ready with " + std::to_string(count) +
                             " instances: ready=" + std::to_string(last.ready()) +
                             " count=" + std::to_string(last.count()) + meta);
  }

  void Scale(std::int64_t count) {
    using namespace std::chrono_literals;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 180s);
    target_proto::ScaleRequest req;
    for (const auto& [k, v] : policy) (*req.mutable_config())[k] = v;
    req.mutable_action()->set_count(count);
    req.mutable_action()->set_reason("bench");
    req.mutable_action()->set_direction(
        hashicorp::nomad_autoscaler::plugins::shared::proto::v1::SCALING_DIRECTION_UP);
    target_proto::ScaleResponse resp;
    auto st = target_->Scale(&ctx, req, &resp);
    if (!st.ok()) throw std::runtime_error("Scale: " + st.error_message());
  }

  // Seconds from a Scale call until it returned and until Status said ready
  // with `count` instances.
  struct ScaleTimes {
    double scale_s = 0;
    double ready_s = 0;
  };
  ScaleTimes TimeScale(std::int64_t count, std::chrono::milliseconds ready_timeout) {
    auto t0 = Clock::now();
    Scale(count);
    auto scaled = Clock::now();
    auto ready = WaitReady(count, ready_timeout);
    return {std::chrono::duration<double>(scaled - t0).count(),
            std::chrono::duration<double>(ready - t0).count()};
  }

  bool HealthCheck() {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("plugin");
    grpc::health::v1::HealthCheckResponse resp;
    return health_->Check(&ctx, req, &resp).ok();
  }

  // hostd runs the first launch of an image alone; this launches the image
  // once on every host (at the same time), outside the pool, so a Scale
  // measures only parallel launches.
  void WarmImage() {
    using namespace std::chrono_literals;
    mps::bus::BusContext ctx;
    std::vector<std::thread> launches;
    std::vector<std::string> failures(hosts_.size());
    for (std::size_t i = 0; i < hosts_.size(); ++i) {
      launches.emplace_back([&, i] {
        try {
          mps::bus::BusClient client(ctx, ClientOptionsFor(hosts_[i]));
          mps::contracts::multipass::LaunchRequest launch;
          launch.name = "warm-" + std::to_string(i);
          launch.image = "noble";
          client.CallSync(std::string(launch.kType), mps::contracts::Encode(launch),
                          {120s, "launch/" + launch.name});
        } catch (const std::exception& e) {
          failures[i] = hosts_[i].name + ": " + e.what();
        }
      });
    }
    for (auto& t : launches) t.join();
    for (const auto& f : failures)
      if (!f.empty()) throw std::runtime_error("WarmImage: " + f);
  }

  // One multipass.version through the first host's hostd (the daemon answers it on its one RPC
  // thread, so it waits behind whatever runs there); returns its round trip.
  std::chrono::nanoseconds VersionRoundTrip() {
    using namespace std::chrono_literals;
    if (!probe_) {
      probe_context_ = std::make_unique<mps::bus::BusContext>();
      probe_ =
          std::make_unique<mps::bus::BusClient>(*probe_context_, ClientOptionsFor(hosts_.front()));
    }
    auto t0 = Clock::now();
    probe_->CallSync(std::string(mps::contracts::multipass::VersionRequest::kType),
                     mps::contracts::Encode(mps::contracts::multipass::VersionRequest{}),
                     {30s, {}});
    return Clock::now() - t0;
  }

  // cluster-sim's counters (SIGUSR2 → "stats k=v ..."): rpc_calls,
  // rpc_busy_us (the daemon's one RPC thread), ssh_commands, ... of the
  // first host.
  std::map<std::string, long> SimStats() { return SimStatsPerHost().front(); }

  // The same for every host, in the order of their names (one line each).
  std::vector<std::map<std::string, long>> SimStatsPerHost() {
    using namespace std::chrono_literals;
    sim_->Signal(SIGUSR2);
    std::vector<std::map<std::string, long>> out;
    for (const auto& host : hosts_) {
      auto line = sim_->WaitForLine("stats ", 5s);
      if (!line) {
        throw std::runtime_error("cluster-sim printed no stats for " + host.name + ": " +
                                 sim_->stderr_text());
      }
      std::istringstream words(line->substr(6));
      std::string word;
      auto& stats = out.emplace_back();
      while (words >> word) {
        auto eq = word.find('=');
        if (eq != std::string::npos) stats[word.substr(0, eq)] = std::stol(word.substr(eq + 1));
      }
    }
    return out;
  }

  ConfigMap policy;

 private:
  // One Multipass host: its daemon is cluster-sim's, its hostd ours.
  struct Host {
    std::string name;      // in the hosts file and Status
    std::string endpoint;  // hostd's bus endpoint
    std::string key_dir;   // hostd.key, hostd.pub
    mps::bus::CurveKeyPair key;
    std::unique_ptr<mps::testing::ChildProcess> process;
  };

  mps::bus::ClientOptions ClientOptionsFor(const Host& host) const {
    mps::bus::ClientOptions co;
    co.endpoint = host.endpoint;
    co.curve = mps::bus::CurveClientConfig{client_.secret_z85, host.key.public_z85};
    return co;
  }

  WorldOptions options_;
  mps::testing::TempDir dir_;
  std::unique_ptr<mps::testing::ChildProcess> sim_;
  std::vector<Host> hosts_;
  std::unique_ptr<mps::testing::ChildProcess> plugin_;
  std::string nomad_address_;
  mps::bus::CurveKeyPair client_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<base_proto::BasePluginService::Stub> base_;
  std::unique_ptr<target_proto::TargetPluginService::Stub> target_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::unique_ptr<mps::bus::BusContext> probe_context_;
  std::unique_ptr<mps::bus::BusClient> probe_;
};

}  // namespace mps::bench
