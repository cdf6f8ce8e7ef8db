#include "nomad_actor/nomad_actor.h"

#include <functional>
#include <mutex>
#include <set>
#include <vector>

#include <spdlog/spdlog.h>

#include "bus/caf_bridge.h"
#include "contracts/app_code.h"
#include "contracts/codec.h"
#include "contracts/nomad.h"
#include "nomad/acl_check.h"
#include "nomad/drain_coordinator.h"
#include "nomad/known_nodes.h"
#include "nomad/node_instance_mapper.h"
#include "nomad/node_pool_filter.h"
#include "nomad/node_selector.h"
#include "nomad/nomad_api.h"
#include "nomad/nomad_error.h"

namespace mps::nomad {
namespace {

namespace nm = contracts::nomad;
using bus::BusAnswer;
using bus::BusError;
using bus::Envelope;
using bus::ErrorCode;
using contracts::AppCode;
using contracts::AppError;
using contracts::ContractError;
using nlohmann::json;

// What every request handler shares: one NomadApi (thread-safe, one curl
// handle per call, all cancelled by one Cancellation) and the event publisher.
struct NomadContext {
  NomadApi api;
  bus::EventPublisher* events;
  EnvLookup env;
  std::chrono::milliseconds drain_grace;
  std::chrono::milliseconds drain_no_deadline_limit;
  // pool_nodes: the nodes' mapping attributes, so a node is read once, not
  // at every answer (shared by the workers; it locks itself).
  std::shared_ptr<KnownNodes> known_nodes;
};
using ContextPtr = std::shared_ptr<const NomadContext>;
// Decodes the request, runs it and encodes its reply (see Route).
using Work = std::function<json(const NomadContext&, const Envelope&)>;

// The one place a NomadError kind becomes the bus error's app code.
AppCode AppCodeOf(NomadError::Kind kind) {
  using K = NomadError::Kind;
  switch (kind) {
    case K::unreachable:
      return AppCode::kUnreachable;
    case K::forbidden:
      return AppCode::kForbidden;
    case K::not_found:
      return AppCode::kNotFound;
    case K::node_gone:
      return AppCode::kNodeGone;
    case K::bad_request:
      return AppCode::kBadRequest;
    case K::server_error:
      return AppCode::kServerError;
    case K::bad_response:
      return AppCode::kBadResponse;
    case K::timeout:
      return AppCode::kTimeout;
    case K::cancelled:  // answered kShuttingDown before this is asked (Run)
      return AppCode::kCancelled;
  }
  return AppCode::kInternal;
}

// Node ids and candidate names: an empty one is never meant.
void RequireNonEmpty(std::string_view type, const char* field,
                     const std::vector<std::string>& values) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (values[i].empty())
      throw ContractError(type, std::string(field) + "[" + std::to_string(i) + "]",
                          "must not be empty");
}

// The DrainCoordinator reports node.* events as (type, node id, fields); each
// leaves the actor as its contract type, so a field the coordinator renames is
// caught here, not by a subscriber.
template <class Event>
bool PublishAs(bus::EventPublisher& events, std::string_view type, const json& fields) {
  if (type != Event::kType) return false;
  events.Publish(std::string(type),
                 contracts::Encode(contracts::Decode<Event>(fields, Event::kType)));
  return true;
}

DrainEventSink PublishTo(bus::EventPublisher* events) {
  return [events](std::string type, std::string node_id, json fields) {
    if (!events) return;
    if (!fields.is_object()) fields = json::object();
    fields["node_id"] = std::move(node_id);
    try {
      bool known = PublishAs<nm::NodeDraining>(*events, type, fields) ||
                   PublishAs<nm::NodeDrained>(*events, type, fields) ||
                   PublishAs<nm::NodeDrainFailed>(*events, type, fields) ||
                   PublishAs<nm::NodePurged>(*events, type, fields);
      if (!known) spdlog::error("event {} has no contract; not published", type);
    } catch (const ContractError& e) {
      spdlog::error("event {} does not match its contract; not published: {}", type, e.what());
    }
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

nm::PoolNodesReply PoolNodes(const NomadContext& c, const nm::PoolNodesRequest& r,
                             const Envelope&) {
  const auto filter = NodePoolFilter::FromPolicyConfig(r.policy);
  const auto mapper = NodeInstanceMapper::FromPolicyConfig(r.policy);
  // With `index`: a blocking query on the node table (the pool watcher's
  // loop); the reply's index is where the next one starts.
  std::optional<BlockingQuery> block;
  if (r.index) {
    BlockingQuery q;
    q.index = *r.index;
    if (r.wait_ms) {
      if (*r.wait_ms < 0)
        throw ContractError(r.kType, "wait_ms", "must be >= 0, got " + std::to_string(*r.wait_ms));
      q.wait = std::chrono::milliseconds(*r.wait_ms);
    }
    block = q;
  }
  std::vector<NodeStub> stubs;
  nm::PoolNodesReply reply;
  if (block) {
    auto watched = c.api.WatchNodes(*block);
    stubs = std::move(watched.value);
    reply.index = watched.index;
  } else {
    stubs = c.api.ListNodes(false);
  }
  // Only nodes not read before (or changed otherwise than in status,
  // eligibility or drain) are read: see KnownNodes.
  c.known_nodes->KeepOnly(stubs);
  for (const auto& stub : stubs) {
    if (!filter.InPool(stub)) continue;
    auto instance = c.known_nodes->Lookup(stub, mapper.attribute());
    if (!instance) {
      auto node = NodeIfPresent(c, stub.id);
      if (!node) continue;  // vanished between list and read
      instance = mapper.InstanceOf(*node);
      c.known_nodes->Remember(stub, *node, mapper.attribute());
    }
    if (!instance) reply.unmapped.push_back(stub.id);
    reply.nodes.push_back({stub.id, stub.name, instance, stub.status, stub.drain,
                           stub.scheduling_eligibility == "eligible", stub.create_index});
  }
  reply.own_node_id = OwnNode(c);
  return reply;
}

nm::SelectReply Select(const NomadContext& c, const nm::SelectRequest& r, const Envelope&) {
  if (r.count < 0)
    throw ContractError(r.kType, "count", "must be >= 0, got " + std::to_string(r.count));
  RequireNonEmpty(r.kType, "candidates", r.candidates);
  const std::set<std::string> candidates(r.candidates.begin(), r.candidates.end());

  const auto filter = NodePoolFilter::FromPolicyConfig(r.policy).ForScaleIn();
  const auto mapper = NodeInstanceMapper::FromPolicyConfig(r.policy);
  auto strategy_it = r.policy.find("node_selector_strategy");
  const auto strategy =
      ParseNodeSelectorStrategy(strategy_it == r.policy.end() ? "" : strategy_it->second);

  const auto stubs = c.api.ListNodes(true);
  const auto own = OwnNode(c);
  auto filtered = filter.Filter(stubs, own.value_or(""));
  if (!filtered.ok()) {
    std::string all;
    for (const auto& err : filtered.errors) all += (all.empty() ? "" : "; ") + err;
    throw AppError(AppCode::kFilter,
                   "node filter refused the pool " + filter.Describe() + ": " + all);
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
  // Allocation lists leave out the namespaces the token cannot read: the
  // strategies that trust an empty list check the token first.
  std::string gap;
  if (TrustsEmptyAllocationLists(strategy)) gap = ReadTokenCapabilities(c.api).JobReadGap();
  auto selection = SelectNodes(strategy, pool, static_cast<std::size_t>(r.count), gap);
  nm::SelectReply reply;
  for (const auto& id : selection.node_ids) reply.selected.push_back({id, instance_of[id]});
  reply.note = selection.note;
  return reply;
}

nm::DrainOutcome OutcomeOf(DrainOutcome outcome) {
  switch (outcome) {
    case DrainOutcome::drained:
      return nm::DrainOutcome::kDrained;
    case DrainOutcome::drain_failed:
      return nm::DrainOutcome::kDrainFailed;
    case DrainOutcome::gone:
      return nm::DrainOutcome::kGone;
  }
  return nm::DrainOutcome::kDrainFailed;
}

nm::DrainReply Drain(const NomadContext& c, const nm::DrainRequest& r, const Envelope& e) {
  if (e.idempotency_key.empty())
    throw BusError(ErrorCode::kBadPayload,
                   e.type + ": needs an idempotency key (draining changes the cluster)");
  RequireNonEmpty(r.kType, "node_ids", r.node_ids);
  auto options = DrainOptions::FromPolicyConfig(r.policy);
  options.grace = c.drain_grace;
  options.no_deadline_limit = c.drain_no_deadline_limit;
  DrainCoordinator drains(c.api, options, PublishTo(c.events));
  nm::DrainReply reply;
  for (const auto& d : drains.DrainAll(r.node_ids)) {
    reply.results.push_back(
        {d.node_id, OutcomeOf(d.outcome), d.reason, d.deadline_reached, d.elapsed.count()});
  }
  return reply;
}

nm::PurgeReply Purge(const NomadContext& c, const nm::PurgeRequest& r, const Envelope&) {
  RequireNonEmpty(r.kType, "node_ids", r.node_ids);
  DrainCoordinator nodes(c.api, DrainOptions{}, PublishTo(c.events));
  nm::PurgeReply reply;
  for (const auto& id : r.node_ids)
    (nodes.Purge(id) ? reply.purged : reply.already_gone).push_back(id);
  return reply;
}

nm::MarkEligibleReply MarkEligible(const NomadContext& c, const nm::MarkEligibleRequest& r,
                                   const Envelope&) {
  RequireNonEmpty(r.kType, "node_ids", r.node_ids);
  DrainCoordinator nodes(c.api, DrainOptions{}, PublishTo(c.events));
  nm::MarkEligibleReply reply;
  for (const auto& id : r.node_ids) {
    bool found = true;
    if (r.eligible) {
      found = nodes.MarkEligible(id);
    } else {
      try {
        c.api.SetEligibility(id, false);
      } catch (const NomadError& e) {
        if (e.kind != NomadError::Kind::node_gone) throw;
        found = false;
      }
    }
    (found ? reply.ok : reply.gone).push_back(id);
  }
  return reply;
}

// A request type with its handler: the payload is decoded by the contract
// (missing, mistyped and unknown fields are refused, naming the field), the
// reply encoded by it.
template <class Request>
std::pair<std::string_view, Work> Route(typename Request::Reply (*handler)(const NomadContext&,
                                                                           const Request&,
                                                                           const Envelope&)) {
  return {Request::kType, [handler](const NomadContext& c, const Envelope& e) {
            return contracts::Encode(
                handler(c, contracts::Decode<Request>(e.payload, Request::kType), e));
          }};
}

BusError ShuttingDown(const std::string& type) {
  return BusError(ErrorCode::kShuttingDown, type + ": the Nomad actor is stopping");
}

// One error type leaves this boundary: BusError, with an AppCode for domain failures.
BusAnswer Run(const NomadContext& c, const Work& work, const Envelope& e) {
  try {
    return BusAnswer::Ok(work(c, e));
  } catch (const BusError& err) {
    return BusAnswer::Fail(err);
  } catch (const NomadConfigError& err) {
    return BusAnswer::Fail(AppError(AppCode::kInvalidConfig, err.what()));
  } catch (const NomadError& err) {
    if (err.kind == NomadError::Kind::cancelled) return BusAnswer::Fail(ShuttingDown(e.type));
    spdlog::warn("{} failed: {}", e.type, err.message);
    return BusAnswer::Fail(AppError(AppCodeOf(err.kind), err.message));
  } catch (const std::exception& err) {
    spdlog::error("{} failed unexpectedly: {}", e.type, err.what());
    return BusAnswer::Fail(AppError(AppCode::kInternal, e.type + " failed: " + err.what()));
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

// Never blocks: claims each request's Responder and hands both to a fresh worker.
caf::behavior RequestFront(caf::event_based_actor* self, ContextPtr context, Work work,
                           std::shared_ptr<bus::ResponderTable> table) {
  return {
      [=](bus::bus_serve_atom, std::uint64_t ticket, const Envelope& e) {
        if (auto responder = table->Claim(ticket)) {
          self->spawn(RequestWorker, context, work, e, std::move(*responder));
        }
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
  ~Owner() { Stop(); }
  void Stop() {
    cancel->Cancel();
    table->Close(BusError(ErrorCode::kShuttingDown, "the Nomad actor is stopping"));
  }
  std::shared_ptr<Cancellation> cancel;
  // Requests waiting for their worker; answered kShuttingDown at a stop.
  std::shared_ptr<bus::ResponderTable> table = std::make_shared<bus::ResponderTable>();
};

void NomadService::Stop() {
  if (owner_) owner_->Stop();
}

bool NomadService::stopped() const {
  return owner_ && owner_->cancel->cancelled();
}

NomadService ServeNomad(caf::actor_system& system, bus::BusServer& server,
                        bus::EventPublisher* events, NomadConnectionConfig config,
                        NomadActorOptions options) {
  spdlog::info("serving nomad.* for {}", config.Describe());
  auto cancel = std::make_shared<Cancellation>();
  auto context = std::make_shared<const NomadContext>(NomadContext{
      NomadApi(std::move(config), options.request_timeout, cancel), events, std::move(options.env),
      options.drain_grace, options.drain_no_deadline_limit, std::make_shared<KnownNodes>()});
  NomadService service;
  service.owner_ = std::make_shared<NomadService::Owner>(cancel);
  Register(cancel);
  const std::pair<std::string_view, Work> types[] = {
      Route(PoolNodes), Route(Select), Route(Drain), Route(Purge), Route(MarkEligible),
  };
  for (const auto& [type, work] : types) {
    auto front = system.spawn(RequestFront, context, work, service.owner_->table);
    // Not ServeWithActor: a stop must answer at once. The owner held here
    // stops the service when the server is destroyed.
    server.Handle(std::string(type), [front, owner = service.owner_](const bus::Request& request,
                                                                     bus::Responder responder) {
      if (owner->cancel->cancelled()) {
        responder.Fail(ShuttingDown(request.envelope.type));
        return;
      }
      if (auto ticket = owner->table->Park(std::move(responder))) {
        caf::anon_send(front, bus::bus_serve_atom::value, *ticket, request.envelope);
      }
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
