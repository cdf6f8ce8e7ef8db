#include "scale_world.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <httplib.h>

#include "bus/keys.h"
#include "cluster_sim/certificate_authority.h"
#include "multipass/multipass_client.h"

namespace mps::test {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

ScaleWorld::ScaleWorld(SimOptions sim) {
  std::vector<std::string> argv{mps::testing::BinDir() + "/cluster-sim",
                                "--state-dir",
                                dir() + "/sim",
                                "--multipass-socket",
                                dir() + "/mp.sock",
                                "--nomad-port",
                                "0",
                                "--boot-delay",
                                sim.boot_delay,
                                "--join-delay",
                                sim.join_delay,
                                "--migration-delay",
                                sim.migration_delay};
  if (sim.hang_launches) argv.push_back("--hang-launches");
  for (const auto& [flag, value] : {std::pair{"--start-delay", sim.start_delay},
                                    {"--restart-join-delay", sim.restart_join_delay},
                                    {"--heartbeat-delay", sim.heartbeat_delay},
                                    {"--cloud-init-delay", sim.cloud_init_delay}}) {
    if (value.empty()) continue;
    argv.push_back(flag);
    argv.push_back(value);
  }
  for (const auto& token : sim.nomad_tokens) {
    argv.push_back("--nomad-token");
    argv.push_back(token);
  }
  if (!sim.nomad_tokens.empty())
    nomad_observer_token_ = sim.nomad_tokens.front().substr(0, sim.nomad_tokens.front().find('='));
  // The strict simulator, as a used host: the cert store already holds the
  // CLI's certificate, so hostd authenticates with local.passphrase. SSH
  // stays cheap to keep the tests fast.
  passphrase_ = sim.passphrase.empty() ? "sesame" : sim.passphrase;
  for (const auto& a :
       {std::string("--passphrase"), passphrase_, std::string("--ssh-delay"), std::string("1ms")})
    argv.push_back(a);
  if (!sim.passphrase.empty()) {
    for (const auto& a : {std::string("--multipass-tls"), std::string("127.0.0.1:0")})
      argv.push_back(a);
  }
  sim_ = std::make_unique<mps::testing::ChildProcess>(argv);
  for (;;) {
    auto line = sim_->ReadLine(20s);
    if (!line) throw std::runtime_error("cluster-sim did not start: " + sim_->stderr_text());
    if (line->rfind("nomad ", 0) == 0) nomad_address_ = line->substr(6);
    if (line->rfind("multipass-tls ", 0) == 0) tls_address_ = line->substr(14);
    if (*line == "ready") break;
  }
  fs::create_directories(dir() + "/keys");
  mps::bus::WriteKeyPair(dir() + "/keys/hostd", "hostd", mps::bus::GenerateKeyPair());
  mps::bus::WriteKeyPair(dir() + "/keys/clients", "plugin", mps::bus::GenerateKeyPair());
  std::ofstream(dir() + "/web.yaml")
      << "#cloud-config\n# nomad client.hcl:\nnode_class = \"web\"\n";
  hostd_endpoint_ = "ipc://" + dir() + "/hostd.sock";
  policy = {{"node_class", "web"},
            {"instance_image_name", "noble"},
            {"instance_size", "c1-m1"},
            {"cloud_init_user_data_path", dir() + "/web.yaml"},
            {"startup_timeout", "20s"},
            {"node_registration_timeout", "20s"},
            {"image_download_timeout", "10s"},
            {"node_drain_deadline", "10s"},
            {"node_purge", "true"},
            {"max_instances", "6"}};
}

ScaleWorld::~ScaleWorld() {
  StopHost();
}

json ScaleWorld::PluginConfig() const {
  return {{"hostd_address", hostd_endpoint_},
          {"hostd_server_key_path", dir() + "/keys/hostd/hostd.pub"},
          {"bus_key_path", dir() + "/keys/clients/plugin.key"},
          {"nomad_address", nomad_address_},
          {"state_dir", dir() + "/target"},
          {"status_address", "ipc://" + dir() + "/status.sock"}};
}

json ScaleWorld::DirectPluginConfig() const {
  auto identity = mps::sim::CertificateAuthority::SelfSignedClientCertificate("plugin");
  std::ofstream(dir() + "/client.pem") << identity.certificate_pem;
  std::ofstream(dir() + "/client.key") << identity.private_key_pem;
  return {{"multipass_address", tls_address_},
          {"client_cert_path", dir() + "/client.pem"},
          {"client_key_path", dir() + "/client.key"},
          {"passphrase", "sesame"},
          {"nomad_address", nomad_address_},
          {"state_dir", dir() + "/target"},
          {"status_address", "ipc://" + dir() + "/status.sock"}};
}

void ScaleWorld::StartHostd() {
  std::ofstream(dir() + "/passphrase") << passphrase_ << "\n";
  hostd_ = std::make_unique<mps::testing::ChildProcess>(std::vector<std::string>{
      mps::testing::BinDir() + "/multipass-hostd", "--multipass-address",
      "unix:" + dir() + "/mp.sock", "--bind", hostd_endpoint_, "--server-key",
      dir() + "/keys/hostd/hostd.key", "--authorized-keys", dir() + "/keys/clients", "--state-dir",
      dir() + "/hostd", "--allow-prefix", "web", "--multipass-passphrase-file",
      dir() + "/passphrase"});
  if (!hostd_->WaitForLine("ready", 20s)) {
    throw std::runtime_error("multipass-hostd did not start: " + hostd_->stderr_text());
  }
}

void ScaleWorld::KillHostd() {
  hostd_->Signal(SIGKILL);
  hostd_->Wait(5s);
}

void ScaleWorld::StartPlugin(const json& extra_config) {
  mps::testing::ChildOptions host_options;
  host_options.pipe_stdin = true;
  host_ = std::make_unique<mps::testing::ChildProcess>(
      std::vector<std::string>{mps::testing::BinDir() + "/goplugin-host"}, host_options);
  steps_.Clear();
  host_->WriteStdin(
      json{{"plugin", mps::testing::BinDir() + "/multipass-target"}, {"interactive", true}}.dump() +
      "\n");
  auto start = host_->ReadLine(30s);
  if (!start) throw std::runtime_error("go-plugin host did not start: " + host_->stderr_text());
  auto s = json::parse(*start);
  if (!s.value("ok", false)) throw std::runtime_error("plugin did not start: " + *start);
  plugin_pid_ = s["values"]["pid"];
  json config = extra_config.contains("multipass_address") ? json::object() : PluginConfig();
  config.update(extra_config);
  auto r = Run({{"op", "SetConfig"}, {"config", config}});
  if (!r.value("ok", false)) throw std::runtime_error("SetConfig failed: " + r.dump());
}

void ScaleWorld::KillPluginProcess() {
  if (plugin_pid_ > 0) ::kill(plugin_pid_, SIGKILL);
  plugin_pid_ = -1;
}

void ScaleWorld::StopHost() {
  if (!host_) return;
  host_->CloseStdin();  // the host kills the plugin and exits
  if (!host_->Wait(10s)) host_->Signal(SIGKILL);
  host_.reset();
}

int ScaleWorld::Send(json step, bool async) {
  return steps_.Send(*host_, std::move(step), async);
}

json ScaleWorld::Await(int id, std::chrono::milliseconds timeout) {
  return steps_.Await(*host_, id, timeout);
}

json ScaleWorld::Run(json step, std::chrono::milliseconds timeout) {
  return Await(Send(std::move(step)), timeout);
}

json ScaleWorld::Status(int until_ready_ms) {
  return Run({{"op", "Status"},
              {"config", policy},
              {"timeout_ms", 5000},
              {"until_ready_ms", until_ready_ms}},
             std::chrono::milliseconds(until_ready_ms) + 10s);
}

json ScaleWorld::Kill() {
  return Run({{"op", "Kill"}}, 10s);
}

json ScaleWorld::Scale(std::int64_t count, std::chrono::milliseconds timeout) {
  return Run({{"op", "Scale"},
              {"config", policy},
              {"action", {{"count", count}, {"reason", "test"}, {"direction", "up"}}}},
             timeout);
}

mps::multipass::MultipassClientOptions ScaleWorld::ObserverOptions() const {
  mps::multipass::MultipassClientOptions o;
  o.address = "unix:" + dir() + "/mp.sock";
  o.state_dir = dir() + "/hostd";  // the accepted client certificate is hostd's
  o.passphrase = passphrase_;
  return o;
}

std::map<std::string, std::string> ScaleWorld::Instances(const std::string& prefix) {
  mps::multipass::MultipassClient client(ObserverOptions());
  std::map<std::string, std::string> out;
  for (const auto& i : client.List()) {
    if (i.name.rfind(prefix, 0) == 0) {
      out[i.name] = std::string(mps::multipass::StateName(i.state));
    }
  }
  return out;
}

void ScaleWorld::LaunchDirect(const std::string& name, const std::string& cloud_init) {
  mps::multipass::MultipassClient client(ObserverOptions());
  mps::multipass::LaunchSpec spec;
  spec.name = name;
  spec.image = "noble";
  spec.cloud_init_user_data = cloud_init;
  client.Launch(spec);
}

std::vector<json> ScaleWorld::Nodes() {
  httplib::Client http(nomad_address_);
  httplib::Headers headers;
  if (!nomad_observer_token_.empty()) headers.emplace("X-Nomad-Token", nomad_observer_token_);
  auto r = http.Get("/v1/nodes", headers);
  if (!r || r->status != 200) throw std::runtime_error("GET /v1/nodes failed");
  std::vector<json> out;
  for (const auto& n : json::parse(r->body)) out.push_back(n);
  return out;
}

void ScaleWorld::AddAllocation(const std::string& node_id, const std::string& ns) {
  httplib::Client http(nomad_address_);
  auto r = http.Post("/sim/allocations", json{{"node_id", node_id}, {"namespace", ns}}.dump(),
                     "application/json");
  if (!r || r->status != 200) throw std::runtime_error("POST /sim/allocations failed");
}

void ScaleWorld::Faults(const json& faults) {
  httplib::Client http(nomad_address_);
  auto r = http.Post("/sim/faults", faults.dump(), "application/json");
  if (!r || r->status != 200) throw std::runtime_error("POST /sim/faults failed");
}

json ScaleWorld::UndrainedDeletions() {
  httplib::Client http(nomad_address_);
  auto r = http.Get("/sim/undrained_deletions");
  if (!r || r->status != 200) throw std::runtime_error("GET /sim/undrained_deletions failed");
  return json::parse(r->body);
}

std::vector<std::string> ScaleWorld::Mpscale(std::vector<std::string> args) {
  args.insert(args.begin(), mps::testing::BinDir() + "/mpscale");
  args.push_back("--address");
  args.push_back("ipc://" + dir() + "/status.sock");
  mps::testing::ChildProcess cli(args);
  std::vector<std::string> lines;
  while (auto line = cli.ReadLine(20s)) lines.push_back(*line);
  auto rc = cli.Wait(10s);
  if (rc != 0) throw std::runtime_error("mpscale failed: " + cli.stderr_text());
  return lines;
}

ScaleWorld::CliRun ScaleWorld::RunMpscale(std::vector<std::string> args) {
  args.insert(args.begin(), mps::testing::BinDir() + "/mpscale");
  mps::testing::ChildProcess cli(args);
  CliRun run;
  while (auto line = cli.ReadLine(20s)) run.out += *line + "\n";
  run.exit_code = cli.Wait(10s).value_or(-1);
  run.err = cli.stderr_text();
  return run;
}

std::string ScaleWorld::host_stderr() const {
  return host_ ? host_->stderr_text() : "";
}

}  // namespace mps::test
