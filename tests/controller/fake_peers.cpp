#include "fake_peers.h"

#include "bus/client.h"

#include "contracts/codec.h"
#include "contracts/multipass.h"
#include "contracts/nomad.h"

namespace mps::testing {

namespace mp = contracts::multipass;
namespace nm = contracts::nomad;
using json = nlohmann::json;

namespace {
bus::ServerOptions Options(const std::string& endpoint) {
  bus::ServerOptions o;
  o.endpoint = endpoint;
  o.name = "fake";
  return o;
}
bus::ClientOptions ClientOf(const std::string& endpoint) {
  bus::ClientOptions o;
  o.endpoint = endpoint;
  o.name = "test";
  o.max_attempts = 1;
  return o;
}
}  // namespace

FakePeer::FakePeer(bus::BusContext& context, std::string endpoint)
    : endpoint_(std::move(endpoint)), server_(context, Options(endpoint_)) {}

std::shared_ptr<bus::BusClient> FakePeer::Client(bus::BusContext& context) const {
  return std::make_shared<bus::BusClient>(context, ClientOf(endpoint_));
}

FakePeer::~FakePeer() {
  server_.Stop();
}

void FakePeer::Serve(const std::string& type, Work work) {
  work_[type] = std::move(work);
  server_.Handle(type, [this, type](const bus::Request& request, bus::Responder responder) {
    std::unique_lock lock(mutex_);
    ++counts_[type];
    auto how = how_.contains(type) ? how_[type] : Answering::kNormally;
    if (how == Answering::kNever) {
      never_.push_back(responder);
      return;
    }
    if (how == Answering::kHold) {
      held_[type].push_back({request.envelope, responder});
      max_in_flight_[type] = std::max<int>(max_in_flight_[type], held_[type].size());
      changed_.notify_all();
      return;
    }
    lock.unlock();
    Answer(type, request.envelope, responder);
  });
}

void FakePeer::ServeRaw(const std::string& type, bus::Handler handler) {
  server_.Handle(type, std::move(handler));
}

void FakePeer::Start() {
  server_.Start();
}

void FakePeer::StopServing() {
  server_.Stop();
}

void FakePeer::Answer(const std::string& type, const bus::Envelope& request,
                      const bus::Responder& responder) {
  std::unique_lock lock(mutex_);
  if (auto f = failures_.find(type); f != failures_.end()) {
    auto error = f->second;
    lock.unlock();
    BeforeFailing(type, request);
    responder.Fail(error);
    return;
  }
  auto& work = work_.at(type);
  lock.unlock();
  try {
    responder.Reply(work(request));
  } catch (const bus::BusError& e) {
    responder.Fail(e);
  }
}

void FakeMultipass::BeforeFailing(const std::string& type, const bus::Envelope& request) {
  if (type != mp::LaunchRequest::kType) return;
  auto req = contracts::Decode<mp::LaunchRequest>(request.payload, request.type);
  std::lock_guard lock(mutex_);
  if (!leftover_state.empty()) instances_[req.name] = leftover_state;
}

void FakePeer::Set(const std::string& type, Answering how) {
  std::lock_guard lock(mutex_);
  how_[type] = how;
}

void FakePeer::FailWith(const std::string& type, contracts::AppCode code, std::string message) {
  std::lock_guard lock(mutex_);
  failures_.insert_or_assign(type, contracts::AppError(code, std::move(message)));
}

void FakePeer::ClearFailure(const std::string& type) {
  std::lock_guard lock(mutex_);
  failures_.erase(type);
}

bool FakePeer::WaitHeld(const std::string& type, std::size_t n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return held_[type].size() >= n; });
}

void FakePeer::Release(const std::string& type, bool keep_holding) {
  std::vector<Held> held;
  {
    std::lock_guard lock(mutex_);
    held.swap(held_[type]);
    if (!keep_holding) how_[type] = Answering::kNormally;
  }
  for (auto& h : held) Answer(type, h.request, h.responder);
}

int FakePeer::count(const std::string& type) const {
  std::lock_guard lock(mutex_);
  auto it = counts_.find(type);
  return it == counts_.end() ? 0 : it->second;
}

std::vector<bus::Envelope> FakePeer::held(const std::string& type) const {
  std::lock_guard lock(mutex_);
  std::vector<bus::Envelope> out;
  if (auto it = held_.find(type); it != held_.end())
    for (const auto& h : it->second) out.push_back(h.request);
  return out;
}

int FakePeer::max_in_flight(const std::string& type) const {
  std::lock_guard lock(mutex_);
  auto it = max_in_flight_.find(type);
  return it == max_in_flight_.end() ? 0 : it->second;
}

FakeMultipass::FakeMultipass(bus::BusContext& context, std::string endpoint)
    : FakePeer(context, std::move(endpoint)) {
  Serve(std::string(mp::ListRequest::kType), [this](const bus::Envelope& e) {
    auto req = contracts::Decode<mp::ListRequest>(e.payload, e.type);
    std::lock_guard lock(mutex_);
    mp::ListReply reply;
    for (const auto& [name, state] : instances_) {
      if (name.rfind(req.prefix + "-", 0) == 0) reply.instances.push_back({name, state, {}, {}});
    }
    return contracts::Encode(reply);
  });
  Serve(std::string(mp::LaunchRequest::kType), [this](const bus::Envelope& e) {
    auto req = contracts::Decode<mp::LaunchRequest>(e.payload, e.type);
    {
      std::lock_guard lock(mutex_);
      instances_[req.name] = "running";
    }
    Changed(e.type, {req.name});
    return contracts::Encode(mp::LaunchReply{req.name});
  });
  Serve(std::string(mp::DeleteRequest::kType), [this](const bus::Envelope& e) {
    auto req = contracts::Decode<mp::DeleteRequest>(e.payload, e.type);
    mp::DeleteReply reply;
    {
      std::lock_guard lock(mutex_);
      for (const auto& n : req.names)
        if (instances_.erase(n)) reply.deleted.push_back(n);
    }
    Changed(e.type, reply.deleted);
    return contracts::Encode(reply);
  });
  Serve(std::string(mp::StartRequest::kType), [this](const bus::Envelope& e) {
    auto req = contracts::Decode<mp::StartRequest>(e.payload, e.type);
    {
      std::lock_guard lock(mutex_);
      for (const auto& n : req.names) instances_[n] = "running";
    }
    Changed(e.type, req.names);
    return contracts::Encode(mp::StartReply{req.names});
  });
  Serve(std::string(mp::StopRequest::kType), [this](const bus::Envelope& e) {
    auto req = contracts::Decode<mp::StopRequest>(e.payload, e.type);
    {
      std::lock_guard lock(mutex_);
      for (const auto& n : req.names) instances_[n] = "stopped";
    }
    Changed(e.type, req.names);
    return contracts::Encode(mp::StopReply{req.names});
  });
  Serve(std::string(mp::InfoRequest::kType), [this](const bus::Envelope& e) {
    auto req = contracts::Decode<mp::InfoRequest>(e.payload, e.type);
    std::lock_guard lock(mutex_);
    mp::InfoReply reply;
    for (const auto& n : req.names) {
      if (auto it = instances_.find(n); it != instances_.end())
        reply.instances.push_back({n, it->second, {}, {}});
    }
    return contracts::Encode(reply);
  });
  Start();
}

void FakeMultipass::OnChange(ChangeHook hook) {
  std::lock_guard lock(mutex_);
  on_change_ = std::move(hook);
}

void FakeMultipass::Changed(const std::string& type, const std::vector<std::string>& names) {
  ChangeHook hook;
  {
    std::lock_guard lock(mutex_);
    hook = on_change_;
  }
  if (!hook) return;
  for (const auto& n : names) hook(type, n);
}

void FakeMultipass::Put(const std::string& name, const std::string& state) {
  std::lock_guard lock(mutex_);
  instances_[name] = state;
}

std::map<std::string, std::string> FakeMultipass::instances() const {
  std::lock_guard lock(mutex_);
  return instances_;
}

mp::ListReply FakeMultipass::Listing() const {
  mp::ListReply list;
  for (const auto& [name, state] : instances()) list.instances.push_back({name, state, {}, {}});
  return list;
}

nm::PoolNodesReply FakeMultipass::ReadyNodesOf(const mp::ListReply& list) {
  nm::PoolNodesReply nodes;
  for (const auto& instance : list.instances) {
    nm::PoolNode node;
    node.id = "node-" + instance.name;
    node.instance = instance.name;
    node.status = "ready";
    nodes.nodes.push_back(node);
  }
  return nodes;
}

FakeNomad::FakeNomad(bus::BusContext& context, std::string endpoint)
    : FakePeer(context, std::move(endpoint)) {
  // A blocking query: answered at once when Nomad's index moved past the
  // caller's, else when a node changes.
  ServeRaw(std::string(nm::PoolNodesRequest::kType),
           [this](const bus::Request& request, bus::Responder responder) {
             nm::PoolNodesRequest req;
             try {
               req = contracts::Decode<nm::PoolNodesRequest>(request.envelope.payload,
                                                             request.envelope.type);
             } catch (const bus::BusError& e) {
               responder.Fail(e);
               return;
             }
             std::lock_guard lock(mutex_);
             if (!req.index) ++unindexed_queries_;
             if (req.index && *req.index >= index_) {
               auto wait = std::chrono::milliseconds(req.wait_ms.value_or(300000));
               waiting_.push_back({responder, std::chrono::steady_clock::now() + wait});
               waits_changed_.notify_all();
               return;
             }
             // Without an index, no index back: the Nomad actor lists
             // without a blocking query then.
             auto reply = PoolNodes();
             if (!req.index) reply.erase("index");
             responder.Reply(reply);
           });
  waits_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      auto now = std::chrono::steady_clock::now();
      auto next = now + std::chrono::hours(1);
      std::vector<bus::Responder> due;
      std::erase_if(waiting_, [&](const Waiting& w) {
        if (w.until > now) {
          next = std::min(next, w.until);
          return false;
        }
        due.push_back(w.responder);
        return true;
      });
      if (!due.empty()) {
        auto reply = PoolNodes();
        for (auto& r : due) r.Reply(reply);
        continue;
      }
      waits_changed_.wait_until(lock, next);
    }
  });
  Serve(std::string(nm::SelectRequest::kType), [this](const bus::Envelope& e) {
    auto req = contracts::Decode<nm::SelectRequest>(e.payload, e.type);
    std::lock_guard lock(mutex_);
    nm::SelectReply reply;
    for (const auto& c : req.candidates) {
      if (static_cast<std::int64_t>(reply.selected.size()) == req.count) break;
      if (nodes_.contains(c)) reply.selected.push_back({"node-" + c, c});
    }
    return contracts::Encode(reply);
  });
  Serve(std::string(nm::DrainRequest::kType), [this](const bus::Envelope& e) {
    auto req = contracts::Decode<nm::DrainRequest>(e.payload, e.type);
    std::lock_guard lock(mutex_);
    nm::DrainReply reply;
    for (const auto& id : req.node_ids) {
      nm::DrainResult r;
      r.node_id = id;
      if (undrainable.contains(id)) {
        r.outcome = nm::DrainOutcome::kDrainFailed;
        r.reason = "allocations did not migrate";
      } else {
        r.outcome = nm::DrainOutcome::kDrained;
        drained_.insert(id);
      }
      reply.results.push_back(r);
    }
    return contracts::Encode(reply);
  });
  Serve(std::string(nm::PurgeRequest::kType), [this](const bus::Envelope& e) {
    auto req = contracts::Decode<nm::PurgeRequest>(e.payload, e.type);
    std::lock_guard lock(mutex_);
    nm::PurgeReply reply;
    for (const auto& id : req.node_ids) {
      purged_.insert(id);
      reply.purged.push_back(id);
    }
    Changed();
    return contracts::Encode(reply);
  });
  Serve(std::string(nm::MarkEligibleRequest::kType), [this](const bus::Envelope& e) {
    auto req = contracts::Decode<nm::MarkEligibleRequest>(e.payload, e.type);
    std::lock_guard lock(mutex_);
    for (const auto& id : req.node_ids) eligible_[id] = req.eligible;
    return contracts::Encode(nm::MarkEligibleReply{req.node_ids, {}});
  });
  Start();
}

FakeNomad::~FakeNomad() {
  StopServing();
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  waits_changed_.notify_all();
  waits_.join();
}

void FakeNomad::PutNode(const std::string& instance, const std::string& status) {
  std::lock_guard lock(mutex_);
  nodes_[instance] = status;
  Changed();
}

json FakeNomad::PoolNodes() const {
  nm::PoolNodesReply reply;
  for (const auto& [instance, status] : nodes_) {
    nm::PoolNode node;
    node.id = "node-" + instance;
    node.name = instance;
    node.instance = instance;
    node.status = status;
    reply.nodes.push_back(node);
  }
  reply.index = index_;
  return contracts::Encode(reply);
}

void FakeNomad::Changed() {
  ++index_;
  auto reply = PoolNodes();
  for (auto& w : waiting_) w.responder.Reply(reply);
  waiting_.clear();
}

int FakeNomad::unindexed_queries() const {
  std::lock_guard lock(mutex_);
  return unindexed_queries_;
}

std::optional<bool> FakeNomad::eligible(const std::string& instance) const {
  std::lock_guard lock(mutex_);
  auto it = eligible_.find("node-" + instance);
  if (it == eligible_.end()) return std::nullopt;
  return it->second;
}

std::set<std::string> FakeNomad::purged() const {
  std::lock_guard lock(mutex_);
  return purged_;
}

std::set<std::string> FakeNomad::drained() const {
  std::lock_guard lock(mutex_);
  return drained_;
}

}  // namespace mps::testing
