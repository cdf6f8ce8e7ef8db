#include "chaos_world.h"

#include <signal.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <httplib.h>

#include "bus/keys.h"
#include "multipass/multipass_client.h"

namespace mps::chaos {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// --- PluginDriver ---

PluginDriver::PluginDriver(std::atomic<int>& next_id) : next_id_(next_id) {
  mps::testing::ChildOptions options;
  options.pipe_stdin = true;
  host_ = std::make_unique<mps::testing::ChildProcess>(
      std::vector<std::string>{mps::testing::BinDir() + "/goplugin-host"}, options);
  std::string plugin = mps::testing::BinDir() + "/multipass-target";
  // SIGXFSZ ignored (inherited through exec), so RLIMIT_FSIZE makes writes
  // fail with EFBIG instead of killing the plugin; exec keeps the pid.
  host_->WriteStdin(json{{"plugin", "/bin/sh"},
                         {"args", {"-c", "trap '' XFSZ; exec '" + plugin + "'"}},
                         {"interactive", true}}
                        .dump() +
                    "\n");
  auto start = host_->ReadLine(30s);
  if (!start) throw std::runtime_error("go-plugin host did not start: " + host_->stderr_text());
  auto s = json::parse(*start, nullptr, false);
  if (!s.is_object() || !s.value("ok", false)) {
    throw std::runtime_error("plugin did not start: " + *start + "\n" + host_->stderr_text());
  }
  plugin_pid_ = s["values"]["pid"].get<int>();
  reader_ = std::thread([this] { ReadLoop(); });
}

PluginDriver::~PluginDriver() {
  Shutdown();
}

void PluginDriver::ReadLoop() {
  // After the host exited, what is left in the pipe is still read: nothing
  // more within 100 ms then means EOF.
  for (;;) {
    auto line = host_->ReadLine(100ms);
    if (!line) {
      if (stop_) break;
      continue;
    }
    auto r = json::parse(*line, nullptr, false);
    if (!r.is_object() || !r.contains("step")) continue;
    int id = r["step"].get<int>();
    r["arrived_ns"] = Clock::now().time_since_epoch().count();  // steady clock
    std::lock_guard lock(mu_);
    results_[id] = std::move(r);
    cv_.notify_all();
  }
}

int PluginDriver::Send(json step) {
  int id = next_id_++;
  step["id"] = id;
  step["async"] = true;
  std::lock_guard lock(write_mu_);
  if (!host_->WriteStdin(step.dump() + "\n")) {
    std::lock_guard results(mu_);
    results_[id] = {{"step", id}, {"ok", false}, {"code", "HostGone"}};
  }
  return id;
}

std::optional<json> PluginDriver::Await(int id, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return results_.contains(id) || gone_; })) {
    return std::nullopt;
  }
  if (!results_.contains(id)) return json{{"step", id}, {"ok", false}, {"code", "HostGone"}};
  return results_.at(id);
}

void PluginDriver::Shutdown() {
  if (!reader_.joinable()) return;
  {
    std::lock_guard lock(write_mu_);
    host_->CloseStdin();
  }
  if (!host_->Wait(10s)) {
    host_->Signal(SIGKILL);
    host_->Wait(5s);
  }
  stop_ = true;
  reader_.join();
  // Whatever was not answered never will be.
  std::lock_guard lock(mu_);
  gone_ = true;
  cv_.notify_all();
}

// --- ChaosWorld ---

ChaosWorld::ChaosWorld(std::vector<std::string> pools) : pools_(std::move(pools)) {
  std::vector<std::string> argv{
      mps::testing::BinDir() + "/cluster-sim", "--state-dir", dir() + "/sim", "--multipass-socket",
      dir() + "/mp.sock", "--nomad-port", "0", "--boot-delay", "300ms", "--join-delay", "200ms",
      "--migration-delay", "200ms", "--host-cpus", "64", "--host-memory", "128G",
      // The strict simulator as a used host: hostd
      // authenticates; SSH kept cheap for speed.
      "--passphrase", "sesame", "--ssh-delay", "1ms"};
  { std::ofstream(dir() + "/passphrase") << "sesame\n"; }
  sim_ = std::make_unique<mps::testing::ChildProcess>(argv);
  for (;;) {
    auto line = sim_->ReadLine(20s);
    if (!line) throw std::runtime_error("cluster-sim did not start: " + sim_->stderr_text());
    if (line->rfind("nomad ", 0) == 0) nomad_address_ = line->substr(6);
    if (*line == "ready") break;
  }
  fs::create_directories(dir() + "/keys");
  mps::bus::WriteKeyPair(dir() + "/keys/hostd", "hostd", mps::bus::GenerateKeyPair());
  mps::bus::WriteKeyPair(dir() + "/keys/clients", "plugin", mps::bus::GenerateKeyPair());
  hostd_endpoint_ = "ipc://" + dir() + "/hostd.sock";
  for (const auto& pool : pools_) {
    std::string cloud_init = dir() + "/" + pool + ".yaml";
    std::ofstream(cloud_init) << "#cloud-config\n# nomad client.hcl:\nnode_class = \"" << pool
                              << "\"\n";
    policies_[pool] = {{"node_class", pool},
                       {"instance_name_prefix", pool},
                       {"instance_image_name", "noble"},
                       {"instance_size", "c1-m1"},
                       {"cloud_init_user_data_path", cloud_init},
                       {"startup_timeout", "10s"},
                       {"node_registration_timeout", "10s"},
                       {"node_drain_deadline", "3s"},
                       {"node_purge", "true"},
                       {"max_instances", "5"}};
  }
}

ChaosWorld::~ChaosWorld() {
  std::shared_ptr<PluginDriver> plugin;
  {
    std::lock_guard lock(plugin_mu_);
    plugin = std::move(plugin_);
  }
  if (plugin) plugin->Shutdown();
  hostd_.reset();
  sim_.reset();
}

json ChaosWorld::PluginConfig() const {
  return {{"hostd_address", hostd_endpoint_},
          {"hostd_server_key_path", dir() + "/keys/hostd/hostd.pub"},
          {"bus_key_path", dir() + "/keys/clients/plugin.key"},
          {"nomad_address", nomad_address_},
          {"state_dir", dir() + "/target"},
          {"status_address", "ipc://" + dir() + "/status.sock"}};
}

void ChaosWorld::StartHostd() {
  std::vector<std::string> argv{mps::testing::BinDir() + "/multipass-hostd",
                                "--multipass-address",
                                "unix:" + dir() + "/mp.sock",
                                "--multipass-passphrase-file",
                                dir() + "/passphrase",
                                "--bind",
                                hostd_endpoint_,
                                "--server-key",
                                dir() + "/keys/hostd/hostd.key",
                                "--authorized-keys",
                                dir() + "/keys/clients",
                                "--state-dir",
                                dir() + "/hostd"};
  for (const auto& pool : pools_) {
    argv.push_back("--allow-prefix");
    argv.push_back(pool);
  }
  hostd_ = std::make_unique<mps::testing::ChildProcess>(argv);
  if (!hostd_->WaitForLine("ready", 20s)) {
    throw std::runtime_error("multipass-hostd did not start: " + hostd_->stderr_text());
  }
}

void ChaosWorld::KillHostd() {
  if (!hostd_) return;
  hostd_->Signal(SIGKILL);
  hostd_->Wait(5s);
  hostd_.reset();
}

void ChaosWorld::StartPlugin() {
  auto driver = std::make_shared<PluginDriver>(next_id_);
  int id = driver->Send({{"op", "SetConfig"}, {"config", PluginConfig()}});
  auto r = driver->Await(id, 30s);
  if (!r || !r->value("ok", false)) {
    std::string err = driver->host_stderr();
    driver->Shutdown();
    throw std::runtime_error("SetConfig failed: " + (r ? r->dump() : "no answer") + "\n" + err);
  }
  if (disk_full_) {
    rlimit none{0, RLIM_INFINITY};
    prlimit(driver->plugin_pid(), RLIMIT_FSIZE, &none, nullptr);
  }
  std::lock_guard lock(plugin_mu_);
  plugin_ = std::move(driver);
  ++epoch_;
}

void ChaosWorld::KillPlugin() {
  std::shared_ptr<PluginDriver> driver;
  {
    std::lock_guard lock(plugin_mu_);
    driver = std::move(plugin_);
    ++epoch_;
  }
  if (!driver) return;
  ::kill(driver->plugin_pid(), SIGKILL);
  driver->Shutdown();
  old_plugin_stderr_ += driver->host_stderr();
}

std::shared_ptr<PluginDriver> ChaosWorld::plugin(int* epoch) {
  std::lock_guard lock(plugin_mu_);
  if (epoch) *epoch = epoch_;
  return plugin_;
}

std::string ChaosWorld::plugin_stderr() const {
  std::lock_guard lock(plugin_mu_);
  return old_plugin_stderr_ + (plugin_ ? plugin_->host_stderr() : "");
}

void ChaosWorld::RestartMultipassd() {
  sim_->Signal(SIGUSR1);
}

void ChaosWorld::SetSimFaults(const json& faults) {
  httplib::Client http(nomad_address_);
  auto r = http.Post("/sim/faults", faults.dump(), "application/json");
  if (!r || r->status != 200) throw std::runtime_error("POST /sim/faults failed");
}

void ChaosWorld::SetDiskFull(bool full) {
  disk_full_ = full;
  auto driver = plugin();
  if (!driver) return;
  rlimit limit{full ? 0 : RLIM_INFINITY, RLIM_INFINITY};
  if (prlimit(driver->plugin_pid(), RLIMIT_FSIZE, &limit, nullptr) != 0) {
    throw std::runtime_error(std::string("prlimit(RLIMIT_FSIZE) of the plugin: ") +
                             std::strerror(errno));
  }
}

std::map<std::string, std::string> ChaosWorld::Instances(const std::string& pool) {
  mps::multipass::MultipassClientOptions o;
  o.address = "unix:" + dir() + "/mp.sock";
  o.state_dir = dir() + "/hostd";  // the client certificate multipassd accepted is hostd's
  mps::multipass::MultipassClient client(o);
  std::map<std::string, std::string> out;
  for (const auto& i : client.List()) {
    if (i.name.rfind(pool + "-", 0) != 0) continue;
    auto state = std::string(mps::multipass::StateName(i.state));
    if (state == "deleted") continue;
    out[i.name] = state;
  }
  return out;
}

std::vector<json> ChaosWorld::Nodes() {
  httplib::Client http(nomad_address_);
  auto r = http.Get("/v1/nodes");
  if (!r || r->status != 200) throw std::runtime_error("GET /v1/nodes failed");
  std::vector<json> out;
  for (const auto& n : json::parse(r->body)) out.push_back(n);
  return out;
}

std::vector<json> ChaosWorld::UndrainedDeletions() {
  httplib::Client http(nomad_address_);
  auto r = http.Get("/sim/undrained_deletions");
  if (!r || r->status != 200) throw std::runtime_error("GET /sim/undrained_deletions failed");
  std::vector<json> out;
  for (const auto& n : json::parse(r->body)) out.push_back(n);
  return out;
}

namespace {

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

CliRun Mpscale(std::vector<std::string> args) {
  args.insert(args.begin(), mps::testing::BinDir() + "/mpscale");
  mps::testing::ChildProcess cli(args);
  CliRun run;
  while (auto line = cli.ReadLine(20s)) run.out += *line + "\n";
  run.exit_code = cli.Wait(10s).value_or(-1);
  run.err = cli.stderr_text();
  return run;
}

}  // namespace

std::optional<json> ChaosWorld::MpscaleStatus() {
  auto run = Mpscale(
      {"status", "--json", "--timeout", "5", "--address", "ipc://" + dir() + "/status.sock"});
  if (run.exit_code != 0) return std::nullopt;
  auto j = json::parse(run.out, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::string ChaosWorld::MpscaleEvents() {
  auto run = Mpscale({"events", "--timeout", "5", "--address", "ipc://" + dir() + "/status.sock"});
  return run.out + (run.exit_code == 0 ? "" : "(mpscale events: " + run.err + ")");
}

}  // namespace mps::chaos
