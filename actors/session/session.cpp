#include "session/session.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "bus/caf_bridge.h"
#include "contracts/multipass.h"
#include "multipass/launch_scheduler.h"

namespace mps::multipass {
namespace {

namespace proto = bus_protocol;
using bus::BusAnswer;
using bus::BusError;
using bus::ErrorCode;
using launch_done_atom = caf::atom_constant<caf::atom("mplaunched")>;

}  // namespace

InstanceNameFilter::InstanceNameFilter(std::vector<std::string> prefixes)
    : prefixes_(std::move(prefixes)) {}

bool InstanceNameFilter::MatchesPrefix(std::string_view name, std::string_view prefix) {
  return name.size() > prefix.size() + 1 && name.substr(0, prefix.size()) == prefix &&
         name[prefix.size()] == '-';
}

bool InstanceNameFilter::Allows(std::string_view name) const {
  if (prefixes_.empty()) return true;
  for (const auto& p : prefixes_)
    if (MatchesPrefix(name, p)) return true;
  return false;
}

std::string InstanceNameFilter::Describe() const {
  if (prefixes_.empty()) return "any name";
  std::string out;
  for (const auto& p : prefixes_) out += (out.empty() ? "" : ", ") + p + "-*";
  return out;
}

namespace {

BusError FromMultipass(const MultipassError& e) {
  // Cancelled = we are stopping; the caller's pending operation stays pending.
  if (e.kind == MultipassError::Kind::cancelled)
    return BusError(ErrorCode::kShuttingDown, e.message);
  return BusError(ErrorCode::kHandlerFailed, e.message, std::string(KindName(e.kind)));
}

BusError BadPayload(const std::string& type, const std::string& what) {
  return BusError(ErrorCode::kBadPayload, "'" + type + "': " + what);
}

std::string StringField(const bus::Envelope& r, const char* key, bool required) {
  const auto& p = r.payload;
  if (!p.is_object() || !p.contains(key) || p[key].is_null()) {
    if (required) throw BadPayload(r.type, std::string("field '") + key + "' is required (string)");
    return {};
  }
  if (!p[key].is_string())
    throw BadPayload(r.type, std::string("field '") + key + "' must be a string");
  return p[key].get<std::string>();
}

int IntField(const bus::Envelope& r, const char* key, int fallback) {
  const auto& p = r.payload;
  if (!p.is_object() || !p.contains(key) || p[key].is_null()) return fallback;
  if (!p[key].is_number_integer() || p[key].get<long long>() < 0 ||
      p[key].get<long long>() > 1'000'000)
    throw BadPayload(r.type, std::string("field '") + key + "' must be a non-negative integer");
  return p[key].get<int>();
}

std::vector<std::string> NamesField(const bus::Envelope& r) {
  const auto& p = r.payload;
  if (!p.is_object() || !p.contains("names") || p["names"].is_null()) return {};
  if (!p["names"].is_array()) throw BadPayload(r.type, "field 'names' must be an array of strings");
  std::vector<std::string> names;
  for (const auto& n : p["names"]) {
    if (!n.is_string() || n.get<std::string>().empty())
      throw BadPayload(r.type, "field 'names' must hold non-empty strings");
    names.push_back(n.get<std::string>());
  }
  return names;
}

nlohmann::json InstanceJson(const std::string& name, InstanceState state,
                            const std::vector<std::string>& ipv4, const std::string& release) {
  return {{"name", name},
          {"state", std::string(StateName(state))},
          {"ipv4", ipv4},
          {"release", release}};
}

std::int64_t UnixMsOf(LaunchScheduler::Clock::time_point t) {
  auto age = LaunchScheduler::Clock::now() - t;
  auto wall = std::chrono::system_clock::now() - age;
  return std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count();
}

// What a stop needs while the actor's own thread may sit in a blocking call
// to multipassd: reached from StopMultipassSession's thread, not by message.
struct SessionControl {
  std::shared_ptr<MultipassClient> client;
  std::shared_ptr<LaunchScheduler> scheduler;
  std::atomic<bool> stopping{false};

  // Refuses new requests, cancels queued launches, gives the running ones up
  // to `grace`, then cancels every call still in flight. Returns the launches
  // that were interrupted. Idempotent (later calls find nothing running).
  std::vector<std::string> Cancel(std::chrono::milliseconds grace) {
    stopping = true;
    auto in_flight = scheduler->InFlightLaunches();
    if (!in_flight.empty()) {
      std::string names;
      for (const auto& f : in_flight)
        names += (names.empty() ? "" : ", ") + f.name + " (" +
                 (f.started_at ? "running" : "queued, cancelled") + ")";
      spdlog::warn(
          "multipass session stopping with {} launch(es) in flight: {}; waiting up to {} ms for "
          "the running ones",
          in_flight.size(), names, grace.count());
    }
    auto interrupted = scheduler->Stop(grace);
    if (!interrupted.empty()) {
      std::string names;
      for (const auto& n : interrupted) names += (names.empty() ? "" : ", ") + n;
      spdlog::warn("cancelling the launch(es) still running: {}", names);
    }
    client->CancelAll();
    return interrupted;
  }
};

// Every session of the process, by actor, for StopMultipassSession and
// CancelAllMultipassSessions.
std::mutex registry_mutex;
std::map<caf::actor_addr, std::weak_ptr<SessionControl>> registry;

std::shared_ptr<SessionControl> ControlOf(const caf::actor_addr& session) {
  std::lock_guard lock(registry_mutex);
  auto it = registry.find(session);
  return it == registry.end() ? nullptr : it->second.lock();
}

struct SessionState {
  std::shared_ptr<SessionControl> control;
  caf::actor_addr key;  // in the registry
  std::shared_ptr<MultipassClient> client;
  std::shared_ptr<LaunchScheduler> scheduler;
  std::unique_ptr<InstanceNameFilter> filter;
  bus::EventPublisher* events = nullptr;
  std::uint64_t next_launch = 1;
  std::map<std::uint64_t, caf::typed_response_promise<BusAnswer>> launches;

  ~SessionState() {
    {
      std::lock_guard lock(registry_mutex);
      registry.erase(key);
    }
    // Launches still running here were not cancelled (the actor was not
    // stopped through StopMultipassSession): they report their real outcome.
    if (scheduler) scheduler->Shutdown();
  }

  void Publish(std::string_view type, nlohmann::json fields) const {
    if (events != nullptr) events->Publish(std::string(type), std::move(fields));
  }

  void CheckAllowed(const std::string& name) const {
    if (!filter->Allows(name))
      throw BusError(ErrorCode::kHandlerFailed,
                     "instance '" + name + "' is outside this host's allowed names (" +
                         filter->Describe() + ")",
                     "not_allowed");
  }

  nlohmann::json List(const bus::Envelope& r) const {
    auto prefix = StringField(r, "prefix", false);
    auto matches = [&](const std::string& name) {
      return filter->Allows(name) &&
             (prefix.empty() || InstanceNameFilter::MatchesPrefix(name, prefix));
    };
    nlohmann::json instances = nlohmann::json::array();
    for (const auto& i : client->List(prefix.empty() ? std::string() : prefix + "-"))
      if (matches(i.name)) instances.push_back(InstanceJson(i.name, i.state, i.ipv4, i.release));
    nlohmann::json in_flight = nlohmann::json::array();
    for (const auto& f : scheduler->InFlightLaunches())
      if (matches(f.name))
        in_flight.push_back(
            {{"name", f.name}, {"image", f.image}, {"submitted_ms", UnixMsOf(f.submitted_at)}});
    return {{"instances", instances}, {"in_flight", in_flight}};
  }

  nlohmann::json Info(const bus::Envelope& r) const {
    auto names = NamesField(r);
    for (const auto& n : names) CheckAllowed(n);
    nlohmann::json instances = nlohmann::json::array();
    for (const auto& d : client->Info(names, /*runtime_information=*/true))
      if (filter->Allows(d.name))
        instances.push_back(InstanceJson(d.name, d.state, d.ipv4, d.image_release));
    return {{"instances", instances}};
  }

  nlohmann::json Delete(const bus::Envelope& r) const {
    auto names = NamesField(r);
    if (names.empty())
      throw BusError(ErrorCode::kHandlerFailed,
                     "'multipass.delete' needs a non-empty 'names' list (an empty delete "
                     "would remove every instance on the host)",
                     "invalid_argument");
    if (r.idempotency_key.empty()) throw BadPayload(r.type, "an idempotency key is required");
    for (const auto& n : names) CheckAllowed(n);
    auto deleted = client->Delete(names);
    for (const auto& n : deleted) Publish(proto::kInstanceDeleted, {{"name", n}});
    return {{"deleted", deleted}};
  }

  nlohmann::json Start(const bus::Envelope& r) const {
    auto names = NamesField(r);
    if (names.empty())
      throw BusError(ErrorCode::kHandlerFailed, "'multipass.start' needs a non-empty 'names' list",
                     "invalid_argument");
    if (r.idempotency_key.empty()) throw BadPayload(r.type, "an idempotency key is required");
    for (const auto& n : names) CheckAllowed(n);
    client->Start(names);
    for (const auto& n : names) Publish(proto::kInstanceRunning, {{"name", n}});
    return {{"started", names}};
  }

  nlohmann::json Version() const {
    return {{"version", client->Version()}, {"address", client->endpoint().address}};
  }

  LaunchSpec LaunchSpecOf(const bus::Envelope& r) const {
    if (r.idempotency_key.empty()) throw BadPayload(r.type, "an idempotency key is required");
    LaunchSpec spec;
    spec.name = StringField(r, "name", true);
    CheckAllowed(spec.name);
    spec.image = StringField(r, "image", false);
    spec.cpus = IntField(r, "cpus", 0);
    spec.memory = StringField(r, "memory", false);
    spec.disk = StringField(r, "disk", false);
    spec.cloud_init_user_data = StringField(r, "cloud_init", false);
    if (int t = IntField(r, "timeout_s", 0); t > 0) spec.timeout = std::chrono::seconds(t);
    return spec;
  }
};

// Where a deferred (launch) answer goes; callable from any thread, once.
using DeferredReply = std::function<void(BusAnswer)>;

// Answers `r` now, or returns nullopt after handing `make_deferred()` to the
// launch scheduler. make_deferred is only called when the answer is deferred.
std::optional<BusAnswer> HandleRequest(SessionState& s, const bus::Envelope& r,
                                       const std::function<DeferredReply()>& make_deferred) {
  if (s.control->stopping) {
    return BusAnswer::Fail(
        BusError(ErrorCode::kShuttingDown, "'" + r.type + "': the multipass session is stopping"));
  }
  try {
    if (r.type == proto::kList) return BusAnswer::Ok(s.List(r));
    if (r.type == proto::kInfo) return BusAnswer::Ok(s.Info(r));
    if (r.type == proto::kDelete) return BusAnswer::Ok(s.Delete(r));
    if (r.type == proto::kVersion) return BusAnswer::Ok(s.Version());
    if (r.type == proto::kStart) return BusAnswer::Ok(s.Start(r));
    if (r.type != proto::kLaunch)
      return BusAnswer::Fail(BusError(ErrorCode::kUnknownType,
                                      "the multipass session does not serve '" + r.type + "'"));
    auto spec = s.LaunchSpecOf(r);
    bus::EventPublisher* pub = s.events;
    // Published before Submit: a fast failure's event must not overtake it.
    s.Publish(proto::kInstanceLaunching, {{"name", spec.name}, {"image", spec.image}});
    auto reply = std::make_shared<DeferredReply>();
    auto completion = [pub, reply](const LaunchSpec& done,
                                   const std::optional<MultipassError>& error) {
      if (error) {
        nlohmann::json fields{{"name", done.name},
                              {"error", error->message},
                              {"kind", std::string(KindName(error->kind))}};
        if (error->leftover_instance) fields["leftover"] = *error->leftover_instance;
        if (pub != nullptr) pub->Publish(std::string(proto::kInstanceFailed), fields);
        spdlog::warn("launch of {} failed ({}): {}", done.name, KindName(error->kind),
                     error->message);
        (*reply)(BusAnswer::Fail(FromMultipass(*error)));
      } else {
        if (pub != nullptr)
          pub->Publish(std::string(proto::kInstanceRunning), {{"name", done.name}});
        spdlog::info("launched {}", done.name);
        (*reply)(BusAnswer::Ok({{"name", done.name}}));
      }
    };
    try {
      // Validate before taking over the answer: Submit throws for a bad or queued name.
      *reply = make_deferred();
      s.scheduler->Submit(spec, completion);
    } catch (const MultipassError& e) {
      s.Publish(
          proto::kInstanceFailed,
          {{"name", spec.name}, {"error", e.message}, {"kind", std::string(KindName(e.kind))}});
      (*reply)(BusAnswer::Fail(FromMultipass(e)));
      return std::nullopt;
    }
    return std::nullopt;
  } catch (const MultipassError& e) {
    return BusAnswer::Fail(FromMultipass(e));
  } catch (const BusError& e) {
    return BusAnswer::Fail(e);
  } catch (const std::exception& e) {
    return BusAnswer::Fail(
        BusError(ErrorCode::kHandlerFailed, "'" + r.type + "': " + e.what(), "internal"));
  }
}

void AnswerOnBus(const bus::Responder& responder, const BusAnswer& answer) {
  if (answer.error) {
    responder.Fail(*answer.error);
  } else {
    responder.Reply(answer.payload);
  }
}

caf::behavior Session(caf::stateful_actor<SessionState>* self, bus::EventPublisher* events,
                      std::shared_ptr<MultipassClient> client, SessionOptions options) {
  auto& st = self->state;
  st.events = events;
  st.filter = std::make_unique<InstanceNameFilter>(options.allowed_prefixes);
  st.client = std::move(client);
  st.scheduler = std::make_shared<LaunchScheduler>(*st.client, options.max_parallel_launches);
  st.control = std::make_shared<SessionControl>();
  st.control->client = st.client;
  st.control->scheduler = st.scheduler;
  st.key = self->address();
  {
    std::lock_guard lock(registry_mutex);
    registry[st.key] = st.control;
  }
  spdlog::info("multipass session for {} (parallel launches {}, allowed names: {})",
               st.client->endpoint().address, options.max_parallel_launches, st.filter->Describe());
  return {
      // CAF callers (and caf_bridge's ServeWithActor).
      [=](bus::bus_request_atom, const bus::Envelope& r) -> caf::result<BusAnswer> {
        auto& s = self->state;
        std::uint64_t id = 0;
        auto answer = HandleRequest(s, r, [&]() -> DeferredReply {
          id = s.next_launch++;
          s.launches.emplace(id, self->make_response_promise<BusAnswer>());
          // Weak: the scheduler lives in our state, a strong handle would keep us alive.
          caf::actor_addr me = self->address();
          return [me, id](BusAnswer a) {
            if (auto target = caf::actor_cast<caf::actor>(me))
              caf::anon_send(target, launch_done_atom::value, id, std::move(a));
          };
        });
        if (answer) return std::move(*answer);
        return s.launches.at(id);
      },
      // Straight from the bus server: the Responder is thread-safe, so a launch
      // answers from the scheduler's thread, and no CAF request timeout keeps
      // anything alive past shutdown.
      [=](const bus::Envelope& r, const bus::Responder& responder) {
        if (responder.remaining().count() <= 0) {
          responder.Fail(BusError(ErrorCode::kDeadlineExpired,
                                  "'" + r.type + "' expired before the session could start it"));
          return;
        }
        auto answer = HandleRequest(self->state, r, [responder]() -> DeferredReply {
          return [responder](BusAnswer a) { AnswerOnBus(responder, a); };
        });
        if (answer) AnswerOnBus(responder, *answer);
      },
      [=](launch_done_atom, std::uint64_t id, BusAnswer& answer) {
        auto& launches = self->state.launches;
        auto it = launches.find(id);
        if (it == launches.end()) return;
        it->second.deliver(std::move(answer));
        launches.erase(it);
      },
  };
}

}  // namespace

caf::actor SpawnMultipassSession(caf::actor_system& system, bus::EventPublisher* events,
                                 SessionOptions options) {
  // Made here so that a bad address or credentials file is thrown to the
  // caller instead of killing a freshly spawned actor.
  auto client = std::make_shared<MultipassClient>(options.client);
  return system.spawn<caf::detached>(Session, events, std::move(client), std::move(options));
}

caf::actor ServeMultipassSession(caf::actor_system& system, bus::BusServer& server,
                                 bus::EventPublisher* events, SessionOptions options) {
  auto session = SpawnMultipassSession(system, events, std::move(options));
  // Not ServeWithActor: its dispatcher's CAF request timeouts hold the actors
  // for the full bus deadline after shutdown (hostd took 10 s to exit).
  for (auto type :
       {proto::kList, proto::kLaunch, proto::kDelete, proto::kInfo, proto::kVersion, proto::kStart})
    server.Handle(std::string(type),
                  [session](const bus::Request& request, bus::Responder responder) {
                    caf::anon_send(session, request.envelope, std::move(responder));
                  });
  return session;
}

SessionStop StopMultipassSession(caf::actor_system& system, caf::actor& session,
                                 std::chrono::milliseconds grace) {
  SessionStop result;
  if (!session) {
    result.stopped = true;
    return result;
  }
  if (auto control = ControlOf(session.address())) result.interrupted = control->Cancel(grace);
  // Every call has been cancelled: the actor's thread is free within
  // milliseconds, unless gRPC ignores the cancel.
  constexpr auto kExitWait = std::chrono::seconds(5);
  {
    caf::scoped_actor self{system};
    self->monitor(session);
    self->send_exit(session, caf::exit_reason::user_shutdown);
    self->receive([&](const caf::down_msg&) { result.stopped = true; },
                  caf::after(kExitWait) >> [] {});
  }
  if (result.stopped) {
    session = nullptr;
  } else {
    spdlog::error("multipass session still busy {} s after its calls were cancelled",
                  std::chrono::duration_cast<std::chrono::seconds>(kExitWait).count());
  }
  return result;
}

void CancelMultipassSession(const caf::actor& session) {
  if (!session) return;
  if (auto control = ControlOf(session.address())) control->Cancel(std::chrono::milliseconds(0));
}

void CancelAllMultipassSessions() {
  std::vector<std::shared_ptr<SessionControl>> live;
  {
    std::lock_guard lock(registry_mutex);
    for (const auto& [addr, weak] : registry)
      if (auto c = weak.lock()) live.push_back(std::move(c));
  }
  for (const auto& c : live) c->Cancel(std::chrono::milliseconds(0));
}

}  // namespace mps::multipass
