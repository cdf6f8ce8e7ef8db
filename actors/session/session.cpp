#include "session/session.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "bus/caf_bridge.h"
#include "contracts/app_code.h"
#include "contracts/codec.h"
#include "contracts/host.h"
#include "contracts/multipass.h"
#include "multipass/daemon_version.h"
#include "multipass/host_capacity.h"
#include "multipass/launch_scheduler.h"

namespace mps::multipass {
namespace {

using bus::BusAnswer;
using bus::BusError;
using bus::ErrorCode;
using launch_done_atom = caf::atom_constant<caf::atom("mplaunched")>;
using probe_atom = caf::atom_constant<caf::atom("mpprobe")>;
using capacity_atom = caf::atom_constant<caf::atom("mpcapacity")>;

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

namespace mp = contracts::multipass;
namespace ch = contracts::host;
using contracts::AppCode;
using contracts::AppError;

// The one place a MultipassError kind becomes the bus error's app code.
AppCode AppCodeOf(MultipassError::Kind kind) {
  using K = MultipassError::Kind;
  switch (kind) {
    case K::unreachable:
      return AppCode::kUnreachable;
    case K::unauthenticated:
      return AppCode::kUnauthenticated;
    case K::wrong_passphrase:
      return AppCode::kWrongPassphrase;
    case K::passphrase_not_set:
      return AppCode::kPassphraseNotSet;
    case K::image_not_found:
      return AppCode::kImageNotFound;
    case K::invalid_name:
      return AppCode::kInvalidName;
    case K::name_taken:
      return AppCode::kNameTaken;
    case K::invalid_argument:
      return AppCode::kInvalidArgument;
    case K::out_of_resources:
      return AppCode::kOutOfResources;
    case K::launch_timeout:
      return AppCode::kLaunchTimeout;
    case K::start_failed:
      return AppCode::kStartFailed;
    case K::start_timeout:
      return AppCode::kStartTimeout;
    case K::unsupported_version:
      return AppCode::kUnsupportedVersion;
    case K::not_found:
      return AppCode::kNotFound;
    case K::aborted:
      return AppCode::kAborted;
    case K::timeout:
      return AppCode::kTimeout;
    case K::cancelled:
      return AppCode::kCancelled;
    case K::invalid_config:
      return AppCode::kInvalidConfig;
    case K::internal:
      return AppCode::kInternal;
  }
  return AppCode::kInternal;
}

BusError FromMultipass(const MultipassError& e) {
  // Cancelled = we are stopping; the caller's pending operation stays pending.
  if (e.kind == MultipassError::Kind::cancelled)
    return BusError(ErrorCode::kShuttingDown, e.message);
  return AppError(AppCodeOf(e.kind), e.message);
}

mp::InstanceFailed FailedEvent(const std::string& name, const MultipassError& e) {
  return {name, e.message, std::string(contracts::AppCodeName(AppCodeOf(e.kind))),
          e.leftover_instance};
}

template <class Request>
Request DecodeRequest(const bus::Envelope& r) {
  return contracts::Decode<Request>(r.payload, Request::kType);
}

template <class Reply>
BusAnswer Answer(const Reply& reply) {
  return BusAnswer::Ok(contracts::Encode(reply));
}

void RequireIdempotencyKey(const bus::Envelope& r) {
  if (r.idempotency_key.empty())
    throw BusError(ErrorCode::kBadPayload, r.type + ": an idempotency key is required");
}

void RequireNoEmptyName(std::string_view type, const std::vector<std::string>& names) {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i].empty())
      throw contracts::ContractError(type, "names[" + std::to_string(i) + "]", "must not be empty");
}

// A delete or start names at least one instance: the daemon reads an empty
// list as every instance on the host.
void RequireNames(std::string_view type, const std::vector<std::string>& names) {
  if (names.empty())
    throw AppError(AppCode::kInvalidArgument,
                   "'" + std::string(type) +
                       "' needs a non-empty 'names' list (an empty one would act on every "
                       "instance on the host)");
  RequireNoEmptyName(type, names);
}

// cpus and timeout_s: absent = the daemon's default (0).
int Bounded(const std::optional<int>& value, const char* field) {
  constexpr int kMax = 1'000'000;
  if (value && (*value < 0 || *value > kMax))
    throw contracts::ContractError(
        mp::LaunchRequest::kType, field,
        "must be between 0 and " + std::to_string(kMax) + ", got " + std::to_string(*value));
  return value.value_or(0);
}

mp::Instance InstanceOf(const std::string& name, InstanceState state,
                        const std::vector<std::string>& ipv4, const std::string& release) {
  return {name, std::string(StateName(state)), ipv4, release};
}

std::int64_t UnixMsOf(LaunchScheduler::Clock::time_point t) {
  auto age = LaunchScheduler::Clock::now() - t;
  auto wall = std::chrono::system_clock::now() - age;
  return std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count();
}

template <class Event>
void Publish(bus::EventPublisher* events, const Event& event) {
  if (events != nullptr) events->Publish(std::string(Event::kType), contracts::Encode(event));
}

// How each answer from multipassd is counted: errors by RPC and kind, and
// whether multipassd is reachable and knows us. Thread-safe (launches
// complete on the scheduler's threads).
struct SessionMetrics {
  std::shared_ptr<metrics::Registry> registry;
  std::shared_ptr<SessionHealth> health;

  void Ok() const {
    if (health) {
      health->reachable = true;
      health->authenticated = true;
      health->SetError({});
    }
    metrics::Set(registry.get(), "mps_multipassd_reachable",
                 "1 while multipassd answers (and knows our certificate)", {}, 1);
  }
  void Failed(std::string_view rpc, const MultipassError& e) const {
    using K = MultipassError::Kind;
    metrics::Inc(registry.get(), "mps_multipassd_rpc_errors_total",
                 "Failed calls to multipassd, by RPC and error kind",
                 {{"rpc", std::string(rpc)}, {"code", std::string(KindName(e.kind))}});
    bool unreachable = e.kind == K::unreachable;
    bool unknown_to_it = e.kind == K::unauthenticated || e.kind == K::wrong_passphrase ||
                         e.kind == K::passphrase_not_set;
    if (!unreachable && !unknown_to_it) {
      Ok();  // multipassd answered: the request itself was wrong
      return;
    }
    if (health) {
      health->reachable = !unreachable;
      health->authenticated = false;
      health->SetError(std::string(KindName(e.kind)) + ": " + e.message);
    }
    metrics::Set(registry.get(), "mps_multipassd_reachable",
                 "1 while multipassd answers (and knows our certificate)", {}, 0);
  }
};

std::string_view RpcOf(std::string_view type) {
  auto dot = type.find('.');
  return dot == std::string_view::npos ? type : type.substr(dot + 1);
}

// What a stop needs while the actor's own thread may sit in a blocking call
// to multipassd: reached from StopMultipassSession's thread, not by message.
struct SessionControl {
  std::shared_ptr<MultipassClient> client;
  std::shared_ptr<LaunchScheduler> scheduler;
  std::shared_ptr<LaunchScheduler> starts;
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
    // Starts are not waited for: a stopped VM left starting is resumed by
    // whoever asked (its start is recorded on their side).
    starts->Stop(std::chrono::milliseconds(0));
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
  SessionMetrics metrics;
  std::shared_ptr<MultipassClient> client;
  std::shared_ptr<LaunchScheduler> scheduler;
  // Starts wait for the VMs to boot (seconds): on threads of their own, so
  // a warm pool's starts run in parallel and the session keeps answering.
  std::shared_ptr<LaunchScheduler> starts;
  std::unique_ptr<InstanceNameFilter> filter;
  std::vector<std::string> prefixes;  // the allowed ones, for the pool label
  bus::EventPublisher* events = nullptr;
  // Where the bus server parks the Responders of requests for us (null when
  // the session is not served on a bus).
  std::shared_ptr<bus::ResponderTable> responders;
  std::uint64_t next_launch = 1;
  std::map<std::uint64_t, caf::typed_response_promise<BusAnswer>> launches;
  // The daemon's version passed the check (reset never: a downgrade to an
  // unsupported version shows up as garbage, not as a different answer).
  mutable bool version_checked = false;
  mutable std::string daemon_version;
  // host.capacity: the rules, the sizes of what we launched and our
  // launches' outcomes, what the last listing held (kept while multipassd
  // does not answer), the last capacity published.
  ch::Headroom headroom;
  std::string storage_path;
  std::shared_ptr<LaunchLedger> ledger = std::make_shared<LaunchLedger>();
  ch::Allocation last_allocation;
  std::optional<contracts::json> last_published_capacity;
  // Asks the actor, from any thread, to look at the capacity again (and
  // publish it when it changed); coalesced while one is pending.
  std::function<void()> capacity_may_have_changed = [] {};
  std::shared_ptr<std::atomic<bool>> capacity_check_pending =
      std::make_shared<std::atomic<bool>>(false);

  ~SessionState() {
    // First, so that requests arriving while running launches finish are
    // refused at once instead of waiting for an actor that is going away.
    if (responders)
      responders->Close(BusError(ErrorCode::kShuttingDown, "the multipass session is stopping"));
    {
      std::lock_guard lock(registry_mutex);
      registry.erase(key);
    }
    // Launches still running here were not cancelled (the actor was not
    // stopped through StopMultipassSession): they report their real outcome.
    if (scheduler) scheduler->Shutdown();
    if (starts) starts->Shutdown();
  }

  void CheckAllowed(const std::string& name) const {
    if (!filter->Allows(name))
      throw AppError(AppCode::kNotAllowed, "instance '" + name +
                                               "' is outside this host's allowed names (" +
                                               filter->Describe() + ")");
  }

  mp::ListReply List(const mp::ListRequest& request) const {
    const auto& prefix = request.prefix;
    auto matches = [&](const std::string& name) {
      return filter->Allows(name) &&
             (prefix.empty() || InstanceNameFilter::MatchesPrefix(name, prefix));
    };
    CheckVersion();
    mp::ListReply reply;
    for (const auto& i :
         client->List(prefix.empty() ? std::string() : prefix + "-", request.addresses))
      if (matches(i.name))
        reply.instances.push_back(InstanceOf(i.name, i.state, i.ipv4, i.release));
    for (const auto& f : scheduler->InFlightLaunches())
      if (matches(f.name)) reply.in_flight.push_back({f.name, f.image, UnixMsOf(f.submitted_at)});
    return reply;
  }

  mp::InfoReply Info(const mp::InfoRequest& request) const {
    RequireNoEmptyName(mp::InfoRequest::kType, request.names);
    for (const auto& n : request.names) CheckAllowed(n);
    CheckVersion();
    mp::InfoReply reply;
    // Only state is needed: no runtime information, so multipassd does not
    // SSH into the VMs (and one unreachable VM cannot fail the call).
    try {
      for (const auto& d : client->Info(request.names, /*runtime_information=*/false))
        if (filter->Allows(d.name))
          reply.instances.push_back(InstanceOf(d.name, d.state, d.ipv4, d.image_release));
    } catch (const MultipassError& e) {
      if (e.kind != MultipassError::Kind::not_found || request.names.empty()) throw;
      // One unknown name fails the whole call: answer for the ones that exist.
      std::set<std::string> wanted(request.names.begin(), request.names.end());
      for (const auto& i : client->List({}, /*addresses=*/false))
        if (wanted.count(i.name) > 0 && filter->Allows(i.name))
          reply.instances.push_back(InstanceOf(i.name, i.state, {}, i.release));
    }
    return reply;
  }

  mp::DeleteReply Delete(const bus::Envelope& r) const {
    auto request = DecodeRequest<mp::DeleteRequest>(r);
    RequireNames(r.type, request.names);
    RequireIdempotencyKey(r);
    for (const auto& n : request.names) CheckAllowed(n);
    CheckVersion();
    mp::DeleteReply reply{client->Delete(request.names)};
    for (const auto& n : reply.deleted) Publish(events, mp::InstanceDeleted{n});
    ledger->Deleted(reply.deleted);
    capacity_may_have_changed();
    return reply;
  }

  // The names a start may go ahead with (checked, version known).
  std::vector<std::string> StartNames(const bus::Envelope& r) const {
    auto request = DecodeRequest<mp::StartRequest>(r);
    RequireNames(r.type, request.names);
    RequireIdempotencyKey(r);
    for (const auto& n : request.names) CheckAllowed(n);
    CheckVersion();
    return request.names;
  }

  mp::StopReply Stop(const bus::Envelope& r) const {
    auto request = DecodeRequest<mp::StopRequest>(r);
    RequireNames(r.type, request.names);
    RequireIdempotencyKey(r);
    for (const auto& n : request.names) CheckAllowed(n);
    CheckVersion();
    client->Stop(request.names);
    return {request.names};
  }

  mp::VersionReply Version() const {
    auto version = client->Version();
    if (!version_checked) Judge(version);
    return {std::move(version), client->endpoint().address};
  }

  // Before the first call that reaches multipassd: refuse a daemon older than
  // we speak (its list/info/delete would decode as garbage), warn once for
  // one newer than tested. Until it passes, every request checks again.
  void CheckVersion() const {
    if (!version_checked) Judge(client->Version());
  }

  void Judge(const std::string& version) const {
    const auto verdict = JudgeDaemonVersion(version, client->endpoint().address);
    if (!verdict.supported) {
      spdlog::error("{}", verdict.message);
      throw MultipassError(MultipassError::Kind::unsupported_version, verdict.message);
    }
    if (verdict.newer_than_tested) {
      static std::once_flag warned;
      std::call_once(warned, [&] { spdlog::warn("{}", verdict.message); });
    }
    spdlog::info("multipassd at {} is version {}", client->endpoint().address, version);
    version_checked = true;
    daemon_version = version;
  }

  // What host.capacity answers, from one listing without addresses and one
  // daemon_info; with the listing, for the probe's gauges. multipassd not
  // answering is part of the answer (health), not a failure of it.
  struct Observation {
    ch::CapacityReply capacity;
    std::optional<std::vector<InstanceInfo>> listed;
  };
  Observation Observe() {
    Observation o;
    auto& c = o.capacity;
    c.headroom = headroom;
    std::optional<DaemonTotals> daemon;
    try {
      CheckVersion();
      o.listed = client->List({}, /*addresses=*/false);
      auto version = ParseDaemonVersion(daemon_version);
      if (!version || *version >= DaemonVersion{1, 15, 0}) daemon = client->DaemonInfo();
      c.health.daemon_reachable = true;
      metrics.Ok();
    } catch (const MultipassError& e) {
      if (e.kind == MultipassError::Kind::cancelled) throw;
      metrics.Failed("list", e);
      c.health.daemon_error = std::string(KindName(e.kind)) + ": " + e.message;
    }
    c.health.daemon_version = daemon_version;
    c.health.consecutive_launch_failures = ledger->consecutive_failures();
    c.health.last_launch_failure = ledger->last_failure();
    if (o.listed) last_allocation = AllocationOf(*o.listed, ledger->Sizes());
    c.allocated = last_allocation;
    if (daemon) {
      c.totals.source = "daemon_info";
      c.totals.cpus = daemon->cpus;
      c.totals.memory_bytes = daemon->memory_bytes;
      c.totals.disk_bytes = daemon->disk_bytes;
    } else {
      c.totals = ReadHostTotals(storage_path);
    }
    return o;
  }

  void PublishIfChanged(const ch::CapacityReply& capacity) {
    if (events == nullptr) return;
    ch::CapacityChanged event;
    static_cast<ch::CapacityReply&>(event) = capacity;
    auto payload = contracts::Encode(event);
    if (last_published_capacity == payload) return;
    events->Publish(std::string(ch::CapacityChanged::kType), payload);
    last_published_capacity = std::move(payload);
  }

  LaunchSpec LaunchSpecOf(const bus::Envelope& r) const {
    auto request = DecodeRequest<mp::LaunchRequest>(r);
    RequireIdempotencyKey(r);
    CheckAllowed(request.name);
    LaunchSpec spec;
    spec.name = request.name;
    spec.image = request.image;
    spec.cpus = Bounded(request.cpus, "cpus");
    spec.memory = request.memory;
    spec.disk = request.disk;
    spec.cloud_init_user_data = request.cloud_init;
    if (int t = Bounded(request.timeout_s, "timeout_s"); t > 0)
      spec.timeout = std::chrono::seconds(t);
    CheckVersion();
    return spec;
  }
};

// Where a deferred (launch) answer goes; callable from any thread, once.
using DeferredReply = std::function<void(BusAnswer)>;

// Answers `r` now, or returns nullopt after handing `make_deferred()` to the
// launch scheduler. make_deferred is only called when the answer is deferred.
std::optional<BusAnswer> HandleRequest(SessionState& s, const bus::Envelope& r,
                                       const std::function<DeferredReply()>& make_deferred);

// HandleRequest, with multipassd's answer counted.
std::optional<BusAnswer> HandleCounted(SessionState& s, const bus::Envelope& r,
                                       const std::function<DeferredReply()>& make_deferred) {
  if (s.control->stopping) {
    return BusAnswer::Fail(
        BusError(ErrorCode::kShuttingDown, "'" + r.type + "': the multipass session is stopping"));
  }
  try {
    return HandleRequest(s, r, make_deferred);
  } catch (const MultipassError& e) {
    s.metrics.Failed(RpcOf(r.type), e);
    return BusAnswer::Fail(FromMultipass(e));
  }
}

// Starts every name on the start scheduler's threads and answers once all
// have ended: the reply, or the first error.
void StartOnWorkers(SessionState& s, const std::vector<std::string>& names, DeferredReply reply) {
  struct Pending {
    std::mutex mutex;
    std::size_t left = 0;
    std::optional<MultipassError> error;
  };
  std::set<std::string> unique(names.begin(), names.end());
  auto pending = std::make_shared<Pending>();
  pending->left = unique.size();
  auto done = [pending, reply, names, pub = s.events, counted = s.metrics](
                  const LaunchSpec& started, const std::optional<MultipassError>& error) {
    if (!error) Publish(pub, mp::InstanceRunning{started.name});
    std::unique_lock lock(pending->mutex);
    if (error && !pending->error) pending->error = error;
    if (--pending->left > 0) return;
    auto failed = pending->error;
    lock.unlock();
    if (failed) {
      counted.Failed("start", *failed);
      reply(BusAnswer::Fail(FromMultipass(*failed)));
    } else {
      counted.Ok();
      reply(Answer(mp::StartReply{names}));
    }
  };
  for (const auto& name : unique) {
    LaunchSpec spec;
    spec.name = name;
    try {
      s.starts->Submit(spec, done);
    } catch (const MultipassError& e) {
      done(spec, e);  // a start of that name already runs, or the session stops
    }
  }
}

std::optional<BusAnswer> HandleRequest(SessionState& s, const bus::Envelope& r,
                                       const std::function<DeferredReply()>& make_deferred) {
  try {
    if (r.type == mp::ListRequest::kType) {
      auto reply = s.List(DecodeRequest<mp::ListRequest>(r));
      s.metrics.Ok();
      return Answer(reply);
    }
    auto ok = [&s](const auto& reply) {
      s.metrics.Ok();
      return Answer(reply);
    };
    if (r.type == mp::InfoRequest::kType) return ok(s.Info(DecodeRequest<mp::InfoRequest>(r)));
    if (r.type == mp::DeleteRequest::kType) return ok(s.Delete(r));
    if (r.type == mp::VersionRequest::kType) {
      DecodeRequest<mp::VersionRequest>(r);  // no fields: refuses unknown ones
      return ok(s.Version());
    }
    if (r.type == mp::StartRequest::kType) {
      StartOnWorkers(s, s.StartNames(r), make_deferred());
      return std::nullopt;
    }
    if (r.type == mp::StopRequest::kType) return ok(s.Stop(r));
    if (r.type == ch::CapacityRequest::kType) {
      DecodeRequest<ch::CapacityRequest>(r);  // no fields: refuses unknown ones
      auto observed = s.Observe();
      s.PublishIfChanged(observed.capacity);
      return Answer(observed.capacity);  // not ok(): multipassd may be the one not answering
    }
    if (r.type != mp::LaunchRequest::kType)
      return BusAnswer::Fail(BusError(ErrorCode::kUnknownType,
                                      "the multipass session does not serve '" + r.type + "'"));
    auto spec = s.LaunchSpecOf(r);
    bus::EventPublisher* pub = s.events;
    // Published before Submit: a fast failure's event must not overtake it.
    Publish(pub, mp::InstanceLaunching{spec.name, spec.image});
    auto reply = std::make_shared<DeferredReply>();
    auto completion = [pub, reply, counted = s.metrics, began = std::chrono::steady_clock::now(),
                       ledger = s.ledger, notify = s.capacity_may_have_changed](
                          const LaunchSpec& done, const std::optional<MultipassError>& error) {
      if (error) {
        ledger->Failed(*error);
        if (error->leftover_instance)
          ledger->Launched(*error->leftover_instance, SizeOfLaunch(done));
      } else {
        ledger->Launched(done.name, SizeOfLaunch(done));
        ledger->Succeeded();
      }
      if (auto e = ledger->save_error(); !e.empty())
        spdlog::warn("launched sizes: {} (after a restart they count as estimated)", e);
      notify();
      metrics::Observe(counted.registry.get(), "mps_launch_duration_seconds",
                       "Launches from submission to their end, by result",
                       metrics::LongDurationBuckets(),
                       {{"result", error ? std::string(KindName(error->kind)) : "ok"}},
                       metrics::Seconds(std::chrono::steady_clock::now() - began));
      if (error) {
        counted.Failed("launch", *error);
      } else {
        counted.Ok();
      }
      if (error) {
        Publish(pub, FailedEvent(done.name, *error));
        spdlog::warn("launch of {} failed ({}): {}", done.name, KindName(error->kind),
                     error->message);
        (*reply)(BusAnswer::Fail(FromMultipass(*error)));
      } else {
        Publish(pub, mp::InstanceRunning{done.name});
        spdlog::info("launched {}", done.name);
        (*reply)(Answer(mp::LaunchReply{done.name}));
      }
    };
    try {
      // Validate before taking over the answer: Submit throws for a bad or queued name.
      *reply = make_deferred();
      s.scheduler->Submit(spec, completion);
    } catch (const MultipassError& e) {
      Publish(pub, FailedEvent(spec.name, e));
      (*reply)(BusAnswer::Fail(FromMultipass(e)));
      return std::nullopt;
    }
    return std::nullopt;
  } catch (const MultipassError&) {
    throw;  // counted by HandleCounted
  } catch (const BusError& e) {
    return BusAnswer::Fail(e);
  } catch (const std::exception& e) {
    return BusAnswer::Fail(AppError(AppCode::kInternal, "'" + r.type + "': " + e.what()));
  }
}

void AnswerOnBus(const bus::Responder& responder, const BusAnswer& answer) {
  if (answer.error) {
    responder.Fail(*answer.error);
  } else {
    responder.Reply(answer.payload);
  }
}

// The pool of an instance: the allowed prefix it matches, else its name up to the last '-'.
std::string PoolOf(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (InstanceNameFilter::MatchesPrefix(name, p)) return p;
  auto dash = name.rfind('-');
  return dash == std::string::npos ? name : name.substr(0, dash);
}

void Probe(SessionState& s) {
  const auto* registry = s.metrics.registry.get();
  try {
    auto observed = s.Observe();
    s.PublishIfChanged(observed.capacity);
    if (registry && observed.listed) {
      std::map<std::pair<std::string, std::string>, double> counts;  // pool, state
      for (const auto& i : *observed.listed) {
        if (!s.filter->Allows(i.name) || i.state == InstanceState::deleted) continue;
        counts[{PoolOf(i.name, s.prefixes), std::string(StateName(i.state))}]++;
      }
      const auto& allocated = observed.capacity.allocated;
      auto& r = *s.metrics.registry;
      std::vector<std::pair<metrics::Labels, double>> values;
      for (const auto& [key, n] : counts)
        values.push_back({{{"pool", key.first}, {"state", key.second}}, n});
      r.ReplaceGauges("mps_hostd_instances", "Instances multipassd has, by pool and state", {},
                      values);
      r.Gauge("mps_host_allocated_cpus",
              "CPUs given to the instances on this host (as launched; Multipass defaults for "
              "those hostd did not launch)")
          .Set(static_cast<double>(allocated.cpus));
      r.Gauge("mps_host_allocated_memory_bytes",
              "Memory given to the instances on this host (as launched; Multipass defaults for "
              "those hostd did not launch)")
          .Set(static_cast<double>(allocated.memory_bytes));
      r.Gauge("mps_host_allocated_disk_bytes",
              "Disk given to the instances on this host (as launched; Multipass defaults for "
              "those hostd did not launch)")
          .Set(static_cast<double>(allocated.disk_bytes));
    }
  } catch (const MultipassError& e) {
    s.metrics.Failed("list", e);
  } catch (const std::exception& e) {
    spdlog::warn("multipass session: probe failed: {}", e.what());
  }
  if (s.metrics.health) s.metrics.health->probed = true;
}

caf::behavior Session(caf::stateful_actor<SessionState>* self, bus::EventPublisher* events,
                      std::shared_ptr<MultipassClient> client, SessionOptions options,
                      std::shared_ptr<bus::ResponderTable> responders) {
  auto& st = self->state;
  st.events = events;
  st.responders = std::move(responders);
  st.filter = std::make_unique<InstanceNameFilter>(options.allowed_prefixes);
  st.prefixes = options.allowed_prefixes;
  st.client = std::move(client);
  st.scheduler = std::make_shared<LaunchScheduler>(*st.client, options.max_parallel_launches);
  st.control = std::make_shared<SessionControl>();
  st.control->client = st.client;
  st.control->scheduler = st.scheduler;
  st.starts = std::make_shared<LaunchScheduler>(
      [client = st.client](const LaunchSpec& spec) {
        client->Start({spec.name});
        return spec.name;
      },
      options.max_parallel_launches, /*first_of_an_image_alone=*/false);
  st.control->starts = st.starts;
  st.key = self->address();
  {
    std::lock_guard lock(registry_mutex);
    registry[st.key] = st.control;
  }
  spdlog::info("multipass session for {} (parallel launches {}, allowed names: {})",
               st.client->endpoint().address, options.max_parallel_launches, st.filter->Describe());
  st.metrics = {options.metrics, options.health};
  st.headroom = options.headroom;
  st.storage_path = options.storage_path;
  if (!options.client.state_dir.empty()) {
    // The sizes it launched, kept across restarts for host.capacity.
    st.ledger = std::make_shared<LaunchLedger>(std::filesystem::path(options.client.state_dir) /
                                               "launched-sizes.json");
    if (!st.ledger->load_error().empty())
      spdlog::warn("launched sizes not read ({}): instances count as estimated until relaunched",
                   st.ledger->load_error());
  }
  st.capacity_may_have_changed = [me = self->address(), pending = st.capacity_check_pending] {
    if (pending->exchange(true)) return;
    if (auto target = caf::actor_cast<caf::actor>(me)) {
      caf::anon_send(target, capacity_atom::value);
    } else {
      *pending = false;
    }
  };
  auto interval = options.probe_interval;
  if (interval.count() > 0) self->send(self, probe_atom::value);
  return {
      // Lists every instance on this actor's thread: multipassd reachable and
      // knowing us, instances by pool and state, the resources they hold.
      [=](probe_atom) {
        Probe(self->state);
        self->delayed_send(self, interval, probe_atom::value);
      },
      // CAF callers (and caf_bridge's ServeWithActor).
      [=](bus::bus_request_atom, const bus::Envelope& r) -> caf::result<BusAnswer> {
        auto& s = self->state;
        std::uint64_t id = 0;
        auto answer = HandleCounted(s, r, [&]() -> DeferredReply {
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
      // From the bus server (ServeWithResponders): the Responder is
      // thread-safe, so a launch answers from the scheduler's thread, and no
      // CAF request timeout keeps anything alive past shutdown.
      [=](bus::bus_serve_atom, std::uint64_t ticket, const bus::Envelope& r) {
        auto& s = self->state;
        auto responder = s.responders ? s.responders->Claim(ticket) : std::nullopt;
        if (!responder) return;
        if (responder->remaining().count() <= 0) {
          responder->Fail(BusError(ErrorCode::kDeadlineExpired,
                                   "'" + r.type + "' expired before the session could start it"));
          return;
        }
        auto answer = HandleCounted(s, r, [responder]() -> DeferredReply {
          return [responder](BusAnswer a) { AnswerOnBus(*responder, a); };
        });
        if (answer) AnswerOnBus(*responder, *answer);
      },
      // A launch ended or an instance was deleted: capacity to publish.
      [=](capacity_atom) {
        auto& s = self->state;
        *s.capacity_check_pending = false;
        if (s.events == nullptr || s.control->stopping) return;
        try {
          s.PublishIfChanged(s.Observe().capacity);
        } catch (const std::exception& e) {
          spdlog::warn("multipass session: capacity not published: {}", e.what());
        }
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

caf::actor Spawn(caf::actor_system& system, bus::EventPublisher* events, SessionOptions options,
                 std::shared_ptr<bus::ResponderTable> responders) {
  // Made here so that a bad address or credentials file is thrown to the
  // caller instead of killing a freshly spawned actor.
  auto client = std::make_shared<MultipassClient>(options.client);
  return system.spawn<caf::detached>(Session, events, std::move(client), std::move(options),
                                     std::move(responders));
}

}  // namespace

caf::actor SpawnMultipassSession(caf::actor_system& system, bus::EventPublisher* events,
                                 SessionOptions options) {
  return Spawn(system, events, std::move(options), nullptr);
}

caf::actor ServeMultipassSession(caf::actor_system& system, bus::BusServer& server,
                                 bus::EventPublisher* events, SessionOptions options) {
  auto responders = std::make_shared<bus::ResponderTable>();
  auto session = Spawn(system, events, std::move(options), responders);
  // Not ServeWithActor: its relay actors' CAF request timeouts would keep the
  // actor system busy for the full bus deadline after shutdown (hostd took
  // 10 s to exit); the session answers through the Responders itself.
  for (auto type : {mp::ListRequest::kType, mp::LaunchRequest::kType, mp::DeleteRequest::kType,
                    mp::InfoRequest::kType, mp::VersionRequest::kType, mp::StartRequest::kType,
                    mp::StopRequest::kType, ch::CapacityRequest::kType})
    bus::ServeWithResponders(server, std::string(type), session, responders);
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

DaemonCheck CheckDaemonAtStart(caf::actor_system& system, const caf::actor& session,
                               std::chrono::milliseconds timeout) {
  DaemonCheck check;
  bus::Envelope probe;
  probe.type = std::string(mp::VersionRequest::kType);
  probe.payload = contracts::Encode(mp::VersionRequest{});
  caf::scoped_actor self{system};
  self->request(session, timeout, bus::bus_request_atom::value, probe)
      .receive(
          [&](const BusAnswer& answer) {
            if (!answer.error) {
              auto reply = contracts::DecodeReply<mp::VersionRequest>(answer.payload);
              check.ok = true;
              check.message = "multipassd at " + reply.address + " is version " + reply.version;
              return;
            }
            const auto& e = *answer.error;
            check.message = e.what();
            switch (contracts::AppCodeOf(e)) {
              case AppCode::kUnsupportedVersion:
                check.fatal = true;
                break;
              case AppCode::kUnauthenticated:
                check.fatal = true;
                check.message +=
                    "; give multipassd's passphrase (set on the host with `multipass set "
                    "local.passphrase`) with --multipass-passphrase-file";
                break;
              case AppCode::kWrongPassphrase:
                check.fatal = true;
                check.message += "; fix the file given with --multipass-passphrase-file";
                break;
              case AppCode::kPassphraseNotSet:
                check.fatal = true;
                check.message +=
                    "; set one on the host with `multipass set local.passphrase` and give it "
                    "with --multipass-passphrase-file";
                break;
              default:
                break;
            }
          },
          [&](const caf::error& e) { check.message = system.render(e); });
  return check;
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
