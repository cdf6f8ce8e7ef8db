#include "nomad_actor/nomad_actor.h"

#include <functional>
#include <mutex>
#include <set>
#include <vector>

#include <spdlog/spdlog.h>

#include "bus/caf_bridge.h"
#include "contracts/nomad.h"
#include "nomad/drain_coordinator.h"
#include "nomad/node_instance_mapper.h"
#include "nomad/node_pool_filter.h"
#include "nomad/node_selector.h"
#include "nomad/nomad_api.h"
#include "nomad/nomad_error.h"

namespace mps::nomad {
namespace {

using bus::BusAnswer;
using bus::BusError;
using bus::Envelope;
using bus::ErrorCode;
using nlohmann::json;
using Policy = std::map<std::string, std::string>;

// What every request handler shares: one NomadApi (thread-safe, one curl
// handle per call, all cancelled by one Cancellation) and the event publisher.
struct NomadContext {
  NomadApi api;
  bus::EventPublisher* events;
  EnvLookup env;
  std::chrono::milliseconds drain_grace;
  std::chrono::milliseconds drain_no_deadline_limit;
};
using ContextPtr = std::shared_ptr<const NomadContext>;
using Work = std::function<json(const NomadContext&, const Envelope&)>;

BusError BadPayload(const std::string& type, const std::string& problem) {
  return BusError(ErrorCode::kBadPayload, type + ": " + problem);
}

Policy PolicyOf(const Envelope& e) {
  const auto& p = e.payload;
  if (!p.contains("policy") || !p["policy"].is_object())
    throw BadPayload(e.type,
                     "field 'policy' must be a map of strings (the policy's target config)");
  Policy policy;
  for (const auto& [key, value] : p["policy"].items()) {
    if (!value.is_string())
      throw BadPayload(e.type, "field 'policy." + key + "' must be a string, got " +
                                   std::string(value.type_name()));
    policy.emplace(key, value.get<std::string>());
  }
  return policy;
}

std::vector<std::string> StringList(const Envelope& e, const std::string& field) {
  const auto& p = e.payload;
  if (!p.contains(field) || !p[field].is_array())
    throw BadPayload(e.type, "field '" + field + "' must be a list of strings");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < p[field].size(); ++i) {
    const auto& v = p[field][i];
    if (!v.is_string() || v.get<std::string>().empty())
      throw BadPayload(
          e.type, "field '" + field + "[" + std::to_string(i) + "]' must be a non-empty string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

DrainEventSink PublishTo(bus::EventPublisher* events) {
  return [events](std::string type, std::string node_id, json fields) {
    if (!events) return;
    if (!fields.is_object()) fields = json::object();
    fields["node_id"] = std::move(node_id);
    events->Publish(type, std::move(fields));
  };
}

// The SDK only logs a failed own-node lookup; so do we.
std::optional<std::string> OwnNode(const NomadContext& c) {
  try {
    return FindOwnNodeId(c.api, c.env);
  } catch (const NomadError& e) {
    if (e.kind == NomadError::Kind::cancelled) throw;
    spdlog::warn("cannot find the autoscaler's own node (NOMAD_ALLOC_ID): {}", e.message);
    return std::nullopt;
  }
}

std::optional<Node> NodeIfPresent(const NomadContext& c, const std::string& id) {
  try {
    return c.api.GetNode(id).value;
  } catch (const NomadError& e) {
    if (e.kind == NomadError::Kind::node_gone) return std::nullopt;
    throw;
  }
}

json PoolNodes(const NomadContext& c, const Envelope& e) {
  const Policy policy = PolicyOf(e);
  const auto filter = NodePoolFilter::FromPolicyConfig(policy);
  const auto mapper = NodeInstanceMapper::FromPolicyConfig(policy);
  json nodes = json::array();
  json unmapped = json::array();
  // With `index`: a blocking query on the node table (the pool watcher's
  // loop); the reply's index is where the next one starts.
  const auto& p = e.payload;
  std::optional<BlockingQuery> block;
  if (p.contains("index")) {
    if (!p["index"].is_number_unsigned() && !(p["index"].is_number_integer() && p["index"] >= 0))
      throw BadPayload(e.type, "field 'index' must be a non-negative integer");
    BlockingQuery q;
    q.index = p["index"].get<std::uint64_t>();
    if (p.contains("wait_ms")) {
      if (!p["wait_ms"].is_number_integer() || p["wait_ms"] < 0)
        throw BadPayload(e.type, "field 'wait_ms' must be a non-negative integer");
      q.wait = std::chrono::milliseconds(p["wait_ms"].get<std::int64_t>());
    }
    block = q;
  }
  std::vector<NodeStub> stubs;
  std::uint64_t index = 0;
  if (block) {
    auto watched = c.api.WatchNodes(*block);
    stubs = std::move(watched.value);
    index = watched.index;
  } else {
    stubs = c.api.ListNodes(false);
  }
  for (const auto& stub : stubs) {
    if (!filter.InPool(stub)) continue;
    auto node = NodeIfPresent(c, stub.id);
    if (!node) continue;  // vanished between list and read
    auto instance = mapper.InstanceOf(*node);
    if (!instance) unmapped.push_back(stub.id);
    nodes.push_back({{"id", stub.id},
                     {"name", stub.name},
                     {"instance", instance ? json(*instance) : json(nullptr)},
                     {"status", stub.status},
                     {"drain", stub.drain},
                     {"eligible", stub.scheduling_eligibility == "eligible"},
                     {"create_index", stub.create_index}});
  }
  json reply = {{"nodes", std::move(nodes)}, {"unmapped", std::move(unmapped)}};
  if (block) reply["index"] = index;
  if (auto own = OwnNode(c)) reply["own_node_id"] = *own;
  return reply;
}

json Select(const NomadContext& c, const Envelope& e) {
  const Policy policy = PolicyOf(e);
  const auto& p = e.payload;
  if (!p.contains("count") || !p["count"].is_number_integer() || p["count"].get<long long>() < 0)
    throw BadPayload(e.type, "field 'count' must be an integer >= 0");
  const auto count = static_cast<std::size_t>(p["count"].get<long long>());
  const auto wanted = StringList(e, "candidates");
  const std::set<std::string> candidates(wanted.begin(), wanted.end());

  const auto filter = NodePoolFilter::FromPolicyConfig(policy).ForScaleIn();
  const auto mapper = NodeInstanceMapper::FromPolicyConfig(policy);
  auto strategy_it = policy.find("node_selector_strategy");
  const auto strategy =
      ParseNodeSelectorStrategy(strategy_it == policy.end() ? "" : strategy_it->second);

  const auto stubs = c.api.ListNodes(true);
  const auto own = OwnNode(c);
  auto filtered = filter.Filter(stubs, own.value_or(""));
  if (!filtered.ok()) {
    std::string all;
    for (const auto& err : filtered.errors) all += (all.empty() ? "" : "; ") + err;
    throw BusError(ErrorCode::kHandlerFailed,
                   "node filter refused the pool " + filter.Describe() + ": " + all,
                   std::string(bus_protocol::kAppCodeFilter));
  }

  std::vector<SelectionCandidate> pool;
  std::map<std::string, std::string> instance_of;
  for (const auto& stub : filtered.kept) {
    auto node = NodeIfPresent(c, stub.id);
    if (!node) continue;
    auto instance = mapper.InstanceOf(*node);
    if (!instance || !candidates.count(*instance)) continue;
    SelectionCandidate candidate{stub, std::nullopt};
    try {
      candidate.allocations = c.api.GetNodeAllocations(stub.id).value;
    } catch (const NomadError& err) {
      if (err.kind == NomadError::Kind::cancelled) throw;
      if (err.kind == NomadError::Kind::node_gone) continue;
      spdlog::warn("allocations of node {}: {}", stub.id, err.message);
    }
    instance_of[stub.id] = *instance;
    pool.push_back(std::move(candidate));
  }
  auto selection = SelectNodes(strategy, pool, count);
  json selected = json::array();
  for (const auto& id : selection.node_ids)
    selected.push_back({{"node_id", id}, {"instance", instance_of[id]}});
  return {{"selected", std::move(selected)}, {"note", selection.note}};
}

json Drain(const NomadContext& c, const Envelope& e) {
  if (e.idempotency_key.empty())
    throw BadPayload(e.type, "needs an idempotency key (draining changes the cluster)");
  const Policy policy = PolicyOf(e);
  const auto ids = StringList(e, "node_ids");
  auto options = DrainOptions::FromPolicyConfig(policy);
  options.grace = c.drain_grace;
  options.no_deadline_limit = c.drain_no_deadline_limit;
  DrainCoordinator drains(c.api, options, PublishTo(c.events));
  json results = json::array();
  for (const auto& r : drains.DrainAll(ids)) {
    results.push_back({{"node_id", r.node_id},
                       {"outcome", OutcomeName(r.outcome)},
                       {"reason", r.reason},
                       {"deadline_reached", r.deadline_reached},
                       {"elapsed_ms", r.elapsed.count()}});
  }
  return {{"results", std::move(results)}};
}

json Purge(const NomadContext& c, const Envelope& e) {
  const auto ids = StringList(e, "node_ids");
  DrainCoordinator nodes(c.api, DrainOptions{}, PublishTo(c.events));
  json purged = json::array();
  json gone = json::array();
  for (const auto& id : ids) (nodes.Purge(id) ? purged : gone).push_back(id);
  return {{"purged", std::move(purged)}, {"already_gone", std::move(gone)}};
}

json MarkEligible(const NomadContext& c, const Envelope& e) {
  const auto ids = StringList(e, "node_ids");
  DrainCoordinator nodes(c.api, DrainOptions{}, PublishTo(c.events));
  json ok = json::array();
  json gone = json::array();
  for (const auto& id : ids) (nodes.MarkEligible(id) ? ok : gone).push_back(id);
  return {{"ok", std::move(ok)}, {"gone", std::move(gone)}};
}

BusError ShuttingDown(const std::string& type) {
  return BusError(ErrorCode::kShuttingDown, type + ": the Nomad actor is stopping");
}

// One error type leaves this boundary: BusError, with the Nomad kind as app_code.
BusAnswer Run(const NomadContext& c, const Work& work, const Envelope& e) {
  try {
    return BusAnswer::Ok(work(c, e));
  } catch (const BusError& err) {
    return BusAnswer::Fail(err);
  } catch (const NomadConfigError& err) {
    return BusAnswer::Fail(BusError(ErrorCode::kHandlerFailed, err.what(),
                                    std::string(bus_protocol::kAppCodeInvalidConfig)));
  } catch (const NomadError& err) {
    if (err.kind == NomadError::Kind::cancelled) return BusAnswer::Fail(ShuttingDown(e.type));
    spdlog::warn("{} failed: {}", e.type, err.message);
    return BusAnswer::Fail(
        BusError(ErrorCode::kHandlerFailed, err.message, std::string(KindName(err.kind))));
  } catch (const std::exception& err) {
    spdlog::error("{} failed unexpectedly: {}", e.type, err.what());
    return BusAnswer::Fail(
        BusError(ErrorCode::kHandlerFailed, e.type + " failed: " + err.what(), "internal"));
  }
}

// One request on its own thread (CAF 0.17 runs every blocking actor detached):
// answers it through the bus Responder and ends, so a drain of minutes holds
// no scheduler thread, and no CAF request timeout outlives the answer.
void RequestWorker(caf::blocking_actor*, ContextPtr context, Work work, Envelope e,
                   bus::Responder responder) {
  if (responder.remaining().count() <= 0) {
    responder.Fail(BusError(ErrorCode::kDeadlineExpired,
                            "'" + e.type + "' expired before its Nomad worker could start"));
    return;
  }
  auto answer = Run(*context, work, e);
  if (answer.error) {
    responder.Fail(*answer.error);
  } else {
    responder.Reply(std::move(answer.payload));
  }
}

// Never blocks: hands each request, with its Responder, to a fresh worker.
caf::behavior RequestFront(caf::event_based_actor* self, ContextPtr context, Work work) {
  return {
      [=](const Envelope& e, const bus::Responder& responder) {
        self->spawn(RequestWorker, context, work, e, responder);
      },
  };
}

// Every service of the process, for StopAllNomadServices.
std::mutex registry_mutex;
std::vector<std::weak_ptr<Cancellation>> registry;

void Register(const std::shared_ptr<Cancellation>& cancel) {
  std::lock_guard lock(registry_mutex);
  std::erase_if(registry, [](const auto& w) { return w.expired(); });
  registry.push_back(cancel);
}

}  // namespace

// Shared by the handle's copies and the server's handlers: the last one gone stops.
struct NomadService::Owner {
  explicit Owner(std::shared_ptr<Cancellation> c) : cancel(std::move(c)) {}
  Owner(const Owner&) = delete;
  Owner& operator=(const Owner&) = delete;
  ~Owner() { cancel->Cancel(); }
  std::shared_ptr<Cancellation> cancel;
};

void NomadService::Stop() {
  if (owner_) owner_->cancel->Cancel();
}

bool NomadService::stopped() const {
  return owner_ && owner_->cancel->cancelled();
}

NomadService ServeNomad(caf::actor_system& system, bus::BusServer& server,
                        bus::EventPublisher* events, NomadConnectionConfig config,
                        NomadActorOptions options) {
  spdlog::info("serving nomad.* for {}", config.Describe());
  auto cancel = std::make_shared<Cancellation>();
  auto context = std::make_shared<const NomadContext>(
      NomadContext{NomadApi(std::move(config), options.request_timeout, cancel), events,
                   std::move(options.env), options.drain_grace, options.drain_no_deadline_limit});
  NomadService service;
  service.owner_ = std::make_shared<NomadService::Owner>(cancel);
  Register(cancel);
  const std::pair<std::string_view, Work> types[] = {
      {bus_protocol::kPoolNodes, PoolNodes},
      {bus_protocol::kSelect, Select},
      {bus_protocol::kDrain, Drain},
      {bus_protocol::kPurge, Purge},
      {bus_protocol::kMarkEligible, MarkEligible},
  };
  for (const auto& [type, work] : types) {
    auto front = system.spawn(RequestFront, context, work);
    // The Responder path, not ServeWithActor: a stop must answer at once, and
    // the owner held here stops the service when the server is destroyed.
    server.Handle(std::string(type), [front, owner = service.owner_](const bus::Request& request,
                                                                     bus::Responder responder) {
      if (owner->cancel->cancelled()) {
        responder.Fail(ShuttingDown(request.envelope.type));
        return;
      }
      caf::anon_send(front, request.envelope, std::move(responder));
    });
  }
  return service;
}

void StopAllNomadServices() {
  std::vector<std::shared_ptr<Cancellation>> live;
  {
    std::lock_guard lock(registry_mutex);
    for (const auto& w : registry)
      if (auto c = w.lock()) live.push_back(std::move(c));
  }
  for (const auto& c : live) c->Cancel();
}

}  // namespace mps::nomad
