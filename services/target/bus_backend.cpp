#include "target/bus_backend.h"

#include <unistd.h>

#include <random>
#include <thread>

#include <spdlog/spdlog.h>

#include "bus/caf_bridge.h"
#include "bus/client.h"
#include "bus/context.h"
#include "bus/keys.h"
#include "bus/server.h"
#include "bus/sqlite_event_log.h"
#include "cache/state_cache.h"
#include "contracts/app_code.h"
#include "contracts/codec.h"
#include "contracts/host.h"
#include "contracts/status.h"
#include "controller/pool_controller.h"
#include "metrics/http_endpoint.h"
#include "multipass/client_identity.h"
#include "multipass/daemon_endpoint.h"
#include "multipass/multipass_error.h"
#include "nomad/nomad_error.h"
#include "nomad_actor/nomad_actor.h"
#include "plugin/plugin_error.h"
#include "scaling/pool_policy.h"
#include "scaling/state_dir_lock.h"
#include "scaling/state_store.h"
#include "session/session.h"

namespace mps::target {

namespace fs = std::filesystem;
using plugin::PluginError;
using namespace std::chrono_literals;

struct BusTargetBackend::Link {
  // First in, last out: released only once everything that writes the state is gone.
  std::unique_ptr<scaling::StateDirLock> state_lock;
  plugin::PluginConfig config;
  caf::actor_system* system = nullptr;
  // Declared in construction order; ~Link tears down in the order that lets
  // blocked calls return first (see below).
  std::unique_ptr<bus::BusContext> context;
  std::unique_ptr<bus::BusServer> session_server;  // direct mode
  caf::actor session;
  std::unique_ptr<bus::BusServer> nomad_server;
  nomad::NomadService nomad_service;
  std::unique_ptr<bus::EventPublisher> publisher;  // with status_address
  std::unique_ptr<bus::BusServer> status_server;
  controller::BusLinks links;
  caf::actor cache_actor;
  std::unique_ptr<cache::StatusReader> status;
  caf::actor controller;
  caf::actor watcher;
  // Split mode: one subscriber per host, to its hostd's events.
  std::vector<std::unique_ptr<bus::EventSubscriber>> hostd_events;
  std::shared_ptr<metrics::Registry> metrics;   // with metrics_address
  std::unique_ptr<metrics::HttpEndpoint> http;  // with metrics_address

  // Every step is bounded: the whole teardown takes well under a second
  // whatever is in flight (go-plugin kills a plugin 2 s after Shutdown).
  // The first, non-waiting half of a stop: every call in flight ends now
  // (Nomad's blocking queries and drains, direct mode's gRPC calls to
  // multipassd, bus calls to hostd), and every waiting Scale is answered.
  void Interrupt() {
    nomad_service.Stop();
    if (session) multipass::CancelMultipassSession(session);
    for (auto& host : links.hosts) host.client->Shutdown();
    if (links.nomad) links.nomad->Shutdown();
  }

  ~Link() {
    Interrupt();
    http.reset();
    for (auto& events : hostd_events) events->Stop();
    hostd_events.clear();
    // Waiting Scales are answered; their operations are in the store already.
    controller::StopPoolController(*system, controller, std::chrono::milliseconds(300));
    if (watcher) caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
    // Calls in flight complete with kShuttingDown; their answers find no actor.
    for (auto& host : links.hosts) host.client->Shutdown();
    if (links.nomad) links.nomad->Shutdown();
    status_server.reset();
    if (cache_actor) {
      // The cache publishes events: it must be gone before the publisher.
      caf::scoped_actor self{*system};
      self->monitor(cache_actor);
      self->send_exit(cache_actor, caf::exit_reason::user_shutdown);
      self->receive([](const caf::down_msg&) {},
                    caf::after(std::chrono::milliseconds(300)) >> [] {});
    }
    if (publisher) publisher->Stop();
    publisher.reset();
    links = {};
    nomad_server.reset();
    session_server.reset();
    if (session) multipass::StopMultipassSession(*system, session, std::chrono::milliseconds(0));
  }
};

namespace {

std::atomic<int> generation{0};

PluginError Invalid(const std::string& message) {
  return PluginError(PluginError::Code::invalid_argument, message);
}

// One Curve client per host of the hosts list, each to its own hostd.
std::vector<controller::HostLink> SplitLinks(const plugin::PluginConfig& config,
                                             bus::BusContext& context,
                                             std::shared_ptr<metrics::Registry> metrics) {
  const auto& split = std::get<plugin::SplitModeConfig>(config.mode);
  std::vector<controller::HostLink> links;
  for (const auto& host : split.hosts) {
    bus::ClientOptions options;
    options.endpoint = host.hostd_address;
    options.name = "multipass-target";
    options.curve = bus::CurveClientConfig{split.bus_secret_key, host.hostd_server_public_key};
    options.metrics = metrics;
    try {
      links.push_back({host.name, host.zone, std::make_shared<bus::BusClient>(context, options),
                       "multipass-hostd " + host.name + " at " + host.hostd_address});
    } catch (const bus::BusError& e) {
      throw Invalid((split.hosts_file ? "hosts_file: host " + host.name + ": hostd_address: "
                                      : std::string("hostd_address: ")) +
                    e.what());
    }
  }
  if (split.hosts.size() == 1) links.front().where = "multipass-hostd at " + split.hostd_address;
  return links;
}

// A policy's `hosts` and `zones` against the configured hosts (direct mode
// and the single-host keys: one host, plugin::kSingleHostName), refused here
// because only the plugin config knows the hosts. Other problems of the
// policy are the cache's to report, all at once.
void CheckPlacementScope(const plugin::PluginConfig& config, const plugin::ConfigMap& target) {
  auto set = [&](const char* key) {
    auto it = target.find(key);
    return it != target.end() && !it->second.empty();
  };
  if (!set("hosts") && !set("zones")) return;
  scaling::PoolPolicy policy;
  try {
    policy = scaling::ParsePoolPolicy(target);
  } catch (const scaling::PolicyError&) {
    return;
  }
  std::vector<config::HostEntry> hosts;
  if (config.split()) {
    hosts = std::get<plugin::SplitModeConfig>(config.mode).hosts;
  } else {
    hosts.emplace_back().name = std::string(plugin::kSingleHostName);
  }
  auto problems = scaling::CheckPlacementScope(policy, hosts);
  if (!problems.empty()) throw Invalid(scaling::PolicyError(std::move(problems)).what());
}

// What SetConfig reads from files before it starts anything, so that a bad
// reload is refused while the running configuration keeps running.
struct CheckedConfig {
  nomad::NomadConnectionConfig nomad;
  std::optional<bus::CurveServerConfig> status_curve;  // tcp/keyed status endpoint
};

CheckedConfig Check(const plugin::PluginConfig& config) {
  CheckedConfig checked;
  if (!config.split()) {
    const auto& direct = std::get<plugin::DirectModeConfig>(config.mode);
    try {
      multipass::ClientIdentity::FromFiles(direct.client_cert_path, direct.client_key_path);
      multipass::DaemonEndpoint::Parse(direct.multipass_address);
    } catch (const multipass::MultipassError& e) {
      throw Invalid(std::string("direct mode: ") + e.what());
    }
  }
  if (config.status && !config.status->server_secret_key.empty()) {
    try {
      checked.status_curve = bus::MakeCurveServerConfig(config.status->server_secret_key,
                                                        config.status->authorized_keys_dir);
    } catch (const std::exception& e) {
      throw Invalid(std::string("status_authorized_keys_path: ") + e.what());
    }
  }
  try {
    checked.nomad = nomad::FromConfigMap(config.nomad, nomad::ProcessEnv());
  } catch (const nomad::NomadConfigError& e) {
    throw Invalid(std::string("Nomad connection: ") + e.what());
  }
  return checked;
}

// Direct mode: the Multipass session in this process, behind inproc://.
std::shared_ptr<bus::BusClient> DirectClient(BusTargetBackend::Link& link) {
  const auto& config = link.config;
  const auto& direct = std::get<plugin::DirectModeConfig>(config.mode);
  bus::ServerOptions server;
  server.endpoint = "inproc://multipass-session-" + std::to_string(generation++);
  server.name = "multipass-session";
  server.retry_app_codes = contracts::RetryableAppCodeNames();
  link.session_server = std::make_unique<bus::BusServer>(*link.context, server);
  multipass::SessionOptions session;
  session.client.address = direct.multipass_address;
  session.client.client_cert_file = direct.client_cert_path;
  session.client.client_key_file = direct.client_key_path;
  if (!direct.passphrase.empty()) session.client.passphrase = direct.passphrase;
  if (config.multipass_ca_path) session.client.root_ca_file = *config.multipass_ca_path;
  if (config.multipass_server_name) session.client.server_name = *config.multipass_server_name;
  if (config.state_dir) session.client.state_dir = *config.state_dir;
  session.max_parallel_launches = static_cast<std::size_t>(config.max_parallel_launches);
  session.metrics = link.metrics;
  try {
    link.session =
        multipass::ServeMultipassSession(*link.system, *link.session_server, nullptr, session);
    link.session_server->Start();
  } catch (const multipass::MultipassError& e) {
    throw Invalid(std::string("direct mode: ") + e.what());
  }
  bus::ClientOptions client;
  client.endpoint = server.endpoint;
  client.name = "multipass-target";
  client.metrics = link.metrics;
  return std::make_shared<bus::BusClient>(*link.context, client);
}

std::shared_ptr<bus::BusClient> NomadClient(BusTargetBackend::Link& link,
                                            const nomad::NomadConnectionConfig& nomad) {
  link.links.nomad_where = "Nomad at " + nomad.address;
  bus::ServerOptions server;
  server.endpoint = "inproc://nomad-" + std::to_string(generation++);
  server.name = "nomad";
  server.retry_app_codes = contracts::RetryableAppCodeNames();
  link.nomad_server = std::make_unique<bus::BusServer>(*link.context, server);
  link.nomad_service = nomad::ServeNomad(*link.system, *link.nomad_server, nullptr, nomad);
  link.nomad_server->Start();
  bus::ClientOptions client;
  client.endpoint = server.endpoint;
  client.name = "multipass-target";
  client.metrics = link.metrics;
  return std::make_shared<bus::BusClient>(*link.context, client);
}

fs::path StateDir(const plugin::PluginConfig& config) {
  if (config.state_dir) {
    // Made here so that the error says why (read-only, not a directory...),
    // not only that it does not exist.
    std::error_code ec;
    fs::create_directories(*config.state_dir, ec);
    if (ec) {
      throw Invalid("state_dir: cannot create " + config.state_dir->string() + ": " + ec.message());
    }
    return *config.state_dir;
  }
  fs::path dir = fs::temp_directory_path() / ("multipass-target-" + std::to_string(::getuid()));
  std::error_code ec;
  fs::create_directories(dir, ec);
  spdlog::warn(
      "state_dir not set: keeping state in {} (set state_dir to a persistent directory "
      "so pending operations survive a reboot)",
      dir.string());
  return dir;
}

// The status endpoint (`mpscale status` / `mpscale events`): reads only.
void ServeStatus(BusTargetBackend::Link& link, const fs::path& state_dir,
                 const std::optional<bus::CurveServerConfig>& curve) {
  const auto& status = *link.config.status;
  bus::PublisherOptions po;
  po.endpoint = bus::EventsEndpointFor(status.address);
  po.name = "multipass-target";
  po.curve = curve;
  po.metrics = link.metrics;
  std::shared_ptr<bus::EventLog> log;
  try {
    log = std::make_shared<bus::SqliteEventLog>(state_dir / "events.db");
  } catch (const std::exception& e) {
    throw Invalid(std::string("state_dir: ") + e.what());
  }
  link.publisher = std::make_unique<bus::EventPublisher>(*link.context, po, log);
  bus::ServerOptions so;
  so.endpoint = status.address;
  so.name = "multipass-target-status";
  so.curve = curve;
  so.metrics = link.metrics;
  link.status_server = std::make_unique<bus::BusServer>(*link.context, so);
  link.publisher->ServeReplay(*link.status_server);
}

std::string ScaleOutcomeName(controller::ScaleStatus status) {
  for (const auto& [value, name] : EnumNames(status))
    if (value == status) return std::string(name);
  return "unknown";
}

std::string NewRequestId() {
  static std::mt19937_64 random{std::random_device{}()};
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "scale-%012llx",
                static_cast<unsigned long long>(random() & 0xffffffffffffULL));
  return buffer;
}

}  // namespace

BusTargetBackend::BusTargetBackend(BackendOptions options) : options_(options) {}

BusTargetBackend::~BusTargetBackend() {
  std::lock_guard lock(mu_);
  link_.reset();  // bus objects and actors go before the actor system
  system_.reset();
}

void BusTargetBackend::SetConfig(const plugin::ConfigMap& raw) {
  plugin::PluginConfig config = plugin::PluginConfig::Parse(raw);  // throws with every problem
  auto checked = Check(config);
  if (!system_) {
    caf_config_ = std::make_unique<caf::actor_system_config>();
    caf_config_->set("scheduler.max-threads", 2);
    system_ = std::make_unique<caf::actor_system>(*caf_config_);
  }
  // One configuration runs at a time: the old one (its watcher, its SQLite
  // writer) is stopped before the new one opens the same state.
  {
    std::lock_guard lock(mu_);
    link_.reset();
  }
  auto link = std::make_shared<Link>();
  link->config = config;
  link->system = system_.get();
  link->context = std::make_unique<bus::BusContext>();
  if (config.metrics_address) {
    if (!metrics_) metrics_ = std::make_shared<metrics::Registry>();
    link->metrics = metrics_;
    link->context->SetMetrics(metrics_);
  }
  fs::path state_dir = StateDir(config);
  try {
    link->state_lock = std::make_unique<scaling::StateDirLock>(state_dir);
  } catch (const scaling::StateStoreError& e) {
    throw Invalid(e.what());
  }
  if (config.split()) {
    link->links.hosts = SplitLinks(config, *link->context, link->metrics);
    link->links.multipass = link->links.hosts.front().client;
    link->links.multipass_where = link->links.hosts.front().where;
  } else {
    link->links.multipass = DirectClient(*link);
    link->links.multipass_where =
        "multipassd at " + std::get<plugin::DirectModeConfig>(config.mode).multipass_address;
    link->links.hosts = link->links.MultipassHosts();
  }
  link->links.nomad = NomadClient(*link, checked.nomad);
  if (config.status) ServeStatus(*link, state_dir, checked.status_curve);
  cache::CacheOptions cache_options;
  cache_options.state_dir = state_dir;
  cache_options.events = link->publisher.get();
  cache_options.board = std::make_shared<cache::StatusBoard>();
  cache_options.first_sync_wait = options_.first_sync_wait;
  cache_options.metrics = link->metrics;
  if (config.split()) cache_options.hosts = std::get<plugin::SplitModeConfig>(config.mode).hosts;
  try {
    link->cache_actor = cache::SpawnStateCache(*system_, cache_options);
  } catch (const scaling::StateStoreError& e) {
    throw Invalid(std::string("state_dir: ") + e.what());
  }
  link->status =
      std::make_unique<cache::StatusReader>(*system_, link->cache_actor, cache_options.board);
  if (link->status_server) {
    bus::ServeWithActor(*link->status_server, *system_,
                        std::string(contracts::status::PoolsRequest::kType), link->cache_actor);
    try {
      link->status_server->Start();
      link->publisher->Start();
    } catch (const bus::BusError& e) {
      throw Invalid(std::string("status_address: ") + e.what());
    }
  }
  controller::ControllerOptions co;
  co.links = link->links;
  co.cache = link->cache_actor;
  co.first_sync_wait = options_.first_sync_wait;
  co.metrics = link->metrics;
  link->controller = controller::SpawnPoolController(*system_, co);
  link->watcher = watcher::SpawnPoolWatcher(*system_, options_.watcher, link->links,
                                            link->cache_actor, link->controller);
  if (config.split()) {
    // Each hostd's instance events (every launch, start and delete that goes
    // through it, ours or another client's) make the watcher list at once
    // instead of within a second. Changes made around hostd (the multipass
    // CLI) are still found by the once-a-second listing. Its host.capacity
    // events go to placement as they come (with several hosts).
    const auto& split = std::get<plugin::SplitModeConfig>(config.mode);
    for (const auto& host : split.hosts) {
      bus::SubscriberOptions so;
      so.events_endpoint = bus::EventsEndpointFor(host.hostd_address);
      so.replay_endpoint = host.hostd_address;
      so.name = "multipass-target";
      so.curve = bus::CurveClientConfig{split.bus_secret_key, host.hostd_server_public_key};
      bool several = split.hosts.size() > 1;
      auto events = std::make_unique<bus::EventSubscriber>(
          *link->context, so,
          [watcher = link->watcher, cache = link->cache_actor, name = host.name,
           several](const bus::Envelope& e) {
            if (e.type.rfind("instance.", 0) == 0) {
              caf::anon_send(watcher, watcher::wake_atom::value);
            } else if (several && e.type == contracts::host::CapacityRequest::kType) {
              cache::HostCapacityReport report;
              report.host = name;
              try {
                report.capacity =
                    contracts::Decode<contracts::host::CapacityReply>(e.payload, e.type);
              } catch (const bus::BusError& error) {
                spdlog::warn("host {}: a host.capacity event was not understood: {}", name,
                             error.what());
                return;
              }
              caf::anon_send(cache, cache::capacity_atom::value, std::move(report));
            }
          });
      events->Start();
      link->hostd_events.push_back(std::move(events));
    }
  }
  if (config.metrics_address) {
    try {
      link->http =
          std::make_unique<metrics::HttpEndpoint>(*config.metrics_address, link->metrics, [] {
            return metrics::Readiness{true, {}};
          });
    } catch (const std::exception& e) {
      throw Invalid(std::string("metrics_address: ") + e.what());
    }
  }
  std::string multipass_where;
  for (const auto& host : link->links.hosts)
    multipass_where += (multipass_where.empty() ? "" : ", ") + host.where;
  spdlog::info("configured: multipass requests go to {}, Nomad requests to {}{}{}", multipass_where,
               link->links.nomad_where,
               config.status ? ", status served on " + config.status->address : "",
               link->http ? ", metrics on http://" + link->http->address() : "");
  std::lock_guard lock(mu_);
  link_ = std::move(link);
}

void BusTargetBackend::Stop() {
  std::shared_ptr<Link> link;
  {
    std::lock_guard lock(mu_);
    link = link_;
  }
  if (!link) return;
  link->Interrupt();
  // Scales waiting for their outcome are answered now, not when the
  // process is torn down after the gRPC server has drained.
  controller::StopPoolController(*system_, link->controller, std::chrono::milliseconds(300));
}

std::shared_ptr<BusTargetBackend::Link> BusTargetBackend::CurrentLink(const char* method) const {
  std::lock_guard lock(mu_);
  if (!link_) {
    throw PluginError(PluginError::Code::failed_precondition,
                      std::string(method) + " called before a successful SetConfig");
  }
  return link_;
}

plugin::TargetStatus BusTargetBackend::Status(const plugin::ConfigMap& config,
                                              std::chrono::steady_clock::time_point) {
  auto link = CurrentLink("Status");
  CheckPlacementScope(link->config, config);
  auto count = [&link](const char* outcome) {
    metrics::Inc(link->metrics.get(), "mps_status_calls_total",
                 "The autoscaler's Status calls, by outcome", {{"outcome", outcome}});
  };
  cache::StatusAnswer answer;
  try {
    answer = link->status->Status(config);
  } catch (const std::runtime_error& e) {
    count("error");
    throw PluginError(PluginError::Code::internal, e.what());
  }
  if (!answer.error.empty()) {
    count("invalid");
    throw Invalid(answer.error);
  }
  count(answer.ready ? "ready" : "not_ready");
  if (!answer.synced) caf::anon_send(link->watcher, watcher::wake_atom::value);
  return {answer.ready, answer.count, std::move(answer.meta)};
}

void BusTargetBackend::Scale(const plugin::ScaleAction& action, const plugin::ConfigMap& config) {
  auto link = CurrentLink("Scale");
  CheckPlacementScope(link->config, config);
  controller::ScaleCommand command;
  command.policy = config;
  command.request_id = NewRequestId();
  command.target = action.count;
  command.dry_run = action.count < 0;
  command.reason = action.reason;
  // A pool seen for the first time is listed at once, not at the next tick.
  caf::anon_send(link->watcher, watcher::wake_atom::value);
  auto outcome = controller::RunScale(*system_, link->controller, command);
  metrics::Inc(link->metrics.get(), "mps_scale_calls_total",
               "The autoscaler's Scale calls, by outcome",
               {{"outcome", ScaleOutcomeName(outcome.status)}});
  using S = controller::ScaleStatus;
  using C = PluginError::Code;
  switch (outcome.status) {
    case S::kDone:
      spdlog::info("{}", outcome.message);
      return;
    case S::kNoop:
      throw PluginError(C::aborted, outcome.message);
    case S::kInvalid:
      throw Invalid(outcome.message);
    case S::kRefused:
      throw PluginError(C::failed_precondition, outcome.message);
    case S::kUnavailable:
    case S::kStopping:
      throw PluginError(C::unavailable, outcome.message);
    case S::kFailed:
      throw PluginError(C::internal, outcome.message);
  }
  throw PluginError(C::internal, outcome.message);
}

}  // namespace mps::target
