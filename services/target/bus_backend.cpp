#include "target/bus_backend.h"

#include <spdlog/spdlog.h>

#include "multipass/bus_protocol.h"
#include "multipass/client_identity.h"
#include "multipass/daemon_endpoint.h"
#include "multipass/multipass_error.h"
#include "multipass/session.h"
#include "plugin/plugin_error.h"
#include "scaling/pool_policy.h"

namespace mps::target {

namespace proto = multipass::bus_protocol;
using plugin::PluginError;

struct BusTargetBackend::Link {
  plugin::PluginConfig config;
  std::string description;  // where requests go, for error messages
  // Declared in destruction order: the client first, then any in-process
  // session server, then the context they share.
  std::unique_ptr<bus::BusContext> context;
  std::unique_ptr<bus::BusServer> session_server;
  std::unique_ptr<bus::BusClient> client;
  caf::actor_system* system = nullptr;  // direct mode: the in-process session
  caf::actor session;

  ~Link() {
    client.reset();
    session_server.reset();
    if (session) multipass::StopMultipassSession(*system, session);
  }
};

namespace {

std::shared_ptr<BusTargetBackend::Link> MakeSplitLink(const plugin::PluginConfig& config) {
  const auto& split = std::get<plugin::SplitModeConfig>(config.mode);
  auto link = std::make_shared<BusTargetBackend::Link>();
  link->config = config;
  link->description = "multipass-hostd at " + split.hostd_address;
  link->context = std::make_unique<bus::BusContext>();
  bus::ClientOptions options;
  options.endpoint = split.hostd_address;
  options.name = "multipass-target";
  options.curve = bus::CurveClientConfig{split.bus_secret_key, split.hostd_server_public_key};
  try {
    link->client = std::make_unique<bus::BusClient>(*link->context, options);
  } catch (const bus::BusError& e) {
    throw PluginError(PluginError::Code::invalid_argument,
                      std::string("hostd_address: ") + e.what());
  }
  return link;
}

PluginError ToPluginError(const bus::BusError& e, const std::string& where) {
  using C = bus::ErrorCode;
  switch (e.code()) {
    case C::kUnreachable:
    case C::kTimeout:
    case C::kRefused:
    case C::kShuttingDown:
      return PluginError(PluginError::Code::unavailable, where + ": " + e.what());
    case C::kDeadlineExpired:
      return PluginError(PluginError::Code::deadline_exceeded, where + ": " + e.what());
    case C::kHandlerFailed:
      if (e.app_code() == "unreachable" || e.app_code() == "unauthenticated" ||
          e.app_code() == "wrong_passphrase" || e.app_code() == "timeout")
        return PluginError(PluginError::Code::unavailable, where + ": " + e.what());
      if (e.app_code() == "not_allowed" || e.app_code() == "invalid_argument")
        return PluginError(PluginError::Code::invalid_argument, where + ": " + e.what());
      return PluginError(PluginError::Code::internal, where + ": " + e.what());
    default:
      return PluginError(PluginError::Code::internal, where + ": " + e.what());
  }
}

}  // namespace

plugin::TargetStatus StatusFromInstances(const nlohmann::json& reply) {
  plugin::TargetStatus status{true, 0, {}};
  std::vector<std::string> not_ready;
  std::int64_t stopped = 0, deleted = 0;
  for (const auto& i : reply.value("instances", nlohmann::json::array())) {
    std::string state = i.value("state", "unknown");
    std::string name = i.value("name", "");
    if (state == "running" || state == "restarting") {
      ++status.count;
    } else if (state == "starting") {
      ++status.count;
      not_ready.push_back(name + " is starting");
    } else if (state == "deleted") {
      ++deleted;  // deleted but not purged: not capacity
    } else if (state == "stopped" || state == "suspended" || state == "suspending") {
      ++stopped;  // reported, not counted: it runs no jobs
    } else {
      not_ready.push_back(name + " is " + state);
    }
  }
  for (const auto& f : reply.value("in_flight", nlohmann::json::array())) {
    ++status.count;  // a launch the daemon does not list yet is capacity on its way
    not_ready.push_back(f.value("name", "?") + " is being launched");
  }
  status.ready = not_ready.empty();
  std::string reasons;
  for (const auto& r : not_ready) reasons += (reasons.empty() ? "" : "; ") + r;
  if (!reasons.empty()) status.meta["mps.not_ready"] = reasons;
  if (stopped) status.meta["mps.stopped"] = std::to_string(stopped);
  if (deleted) status.meta["mps.deleted"] = std::to_string(deleted);
  return status;
}

BusTargetBackend::BusTargetBackend() = default;

std::shared_ptr<BusTargetBackend::Link> BusTargetBackend::MakeDirectLink(
    const plugin::PluginConfig& config) {
  const auto& direct = std::get<plugin::DirectModeConfig>(config.mode);
  if (!system_) {
    caf_config_ = std::make_unique<caf::actor_system_config>();
    caf_config_->set("scheduler.max-threads", 2);
    system_ = std::make_unique<caf::actor_system>(*caf_config_);
  }
  // Fail at SetConfig, naming the file, rather than at the first Status.
  try {
    multipass::ClientIdentity::FromFiles(direct.client_cert_path, direct.client_key_path);
    multipass::DaemonEndpoint::Parse(direct.multipass_address);
  } catch (const multipass::MultipassError& e) {
    throw PluginError(PluginError::Code::invalid_argument, std::string("direct mode: ") + e.what());
  }
  auto link = std::make_shared<Link>();
  link->config = config;
  link->description = "multipassd at " + direct.multipass_address + " (in-process session)";
  link->context = std::make_unique<bus::BusContext>();
  static std::atomic<int> generation{0};
  bus::ServerOptions server;
  server.endpoint = "inproc://multipass-session-" + std::to_string(generation++);
  server.name = "multipass-session";
  link->session_server = std::make_unique<bus::BusServer>(*link->context, server);

  multipass::SessionOptions session;
  session.client.address = direct.multipass_address;
  session.client.client_cert_file = direct.client_cert_path;
  session.client.client_key_file = direct.client_key_path;
  if (!direct.passphrase.empty()) session.client.passphrase = direct.passphrase;
  if (config.multipass_ca_path) session.client.root_ca_file = *config.multipass_ca_path;
  if (config.multipass_server_name) session.client.server_name = *config.multipass_server_name;
  if (config.state_dir) session.client.state_dir = *config.state_dir;
  session.max_parallel_launches = static_cast<std::size_t>(config.max_parallel_launches);
  try {
    link->system = system_.get();
    link->session =
        multipass::ServeMultipassSession(*system_, *link->session_server, nullptr, session);
    link->session_server->Start();
  } catch (const multipass::MultipassError& e) {
    throw PluginError(PluginError::Code::invalid_argument, std::string("direct mode: ") + e.what());
  }
  bus::ClientOptions client;
  client.endpoint = server.endpoint;
  client.name = "multipass-target";
  link->client = std::make_unique<bus::BusClient>(*link->context, client);
  return link;
}

BusTargetBackend::~BusTargetBackend() {
  std::lock_guard lock(mu_);
  link_.reset();  // bus objects go before the actor system
  system_.reset();
}

void BusTargetBackend::SetConfig(const plugin::ConfigMap& raw) {
  plugin::PluginConfig config = plugin::PluginConfig::Parse(raw);  // throws with every problem
  std::shared_ptr<Link> link;
  if (config.split()) {
    link = MakeSplitLink(config);
  } else {
    link = MakeDirectLink(config);
  }
  spdlog::info("configured: multipass requests go to {}", link->description);
  std::lock_guard lock(mu_);
  link_ = std::move(link);
}

std::shared_ptr<BusTargetBackend::Link> BusTargetBackend::CurrentLink(const char* method) const {
  std::lock_guard lock(mu_);
  if (!link_)
    throw PluginError(PluginError::Code::failed_precondition,
                      std::string(method) + " called before a successful SetConfig");
  return link_;
}

plugin::TargetStatus BusTargetBackend::Status(const plugin::ConfigMap& config,
                                              std::chrono::steady_clock::time_point deadline) {
  auto link = CurrentLink("Status");
  scaling::PoolPolicy policy;
  try {
    policy = scaling::ParsePoolPolicy(config);
  } catch (const scaling::PolicyError& e) {
    throw PluginError(PluginError::Code::invalid_argument,
                      std::string("policy target: ") + e.what());
  }
  // Answer within the autoscaler's deadline (75% of the evaluation interval).
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  // Keep a tenth of it to answer with our own error rather than the host's
  // bare "context deadline exceeded".
  auto timeout = std::min(left * 9 / 10, std::chrono::milliseconds(5000));
  if (timeout.count() <= 0)
    throw PluginError(PluginError::Code::deadline_exceeded, "Status deadline already passed");
  try {
    auto reply = link->client->CallSync(std::string(proto::kList),
                                        {{"prefix", policy.instance_name_prefix}}, {timeout, {}});
    return StatusFromInstances(reply);
  } catch (const bus::BusError& e) {
    throw ToPluginError(
        e, "listing pool '" + policy.instance_name_prefix + "' via " + link->description);
  }
}

void BusTargetBackend::Scale(const plugin::ScaleAction&, const plugin::ConfigMap&) {
  CurrentLink("Scale");
  throw PluginError(PluginError::Code::unimplemented,
                    "Scale is not supported yet by this build of multipass-target: the state cache "
                    "and Nomad drain actors are not wired; nothing was changed");
}

}  // namespace mps::target
