#include "controller/pool_controller.h"

#include <algorithm>
#include <deque>
#include <set>

#include <spdlog/spdlog.h>

#include "bus/async_call.h"
#include "cache/messages.h"
#include "config/go_values.h"
#include "contracts/app_code.h"
#include "controller/launch_payload.h"
#include "scaling/pool_observation.h"
#include "scaling/pool_policy.h"
#include "scaling/pool_state.h"

namespace mps::controller {
namespace {

namespace mp = contracts::multipass;
namespace nm = contracts::nomad;
using bus::Answer;
using cache::OpPhase;
using contracts::AppCode;
using scaling::OperationKind;
using namespace std::chrono_literals;
// A launch slot of a pool came free.
using kick_atom = caf::atom_constant<caf::atom("pckick")>;
// A pool's node watch tries again after a failed query.
using watch_atom = caf::atom_constant<caf::atom("pcwatch")>;

// The peer, not the request, failed: the outcome is unknown.
bool LinkBroke(const bus::BusError& e) {
  using C = bus::ErrorCode;
  return e.code() == C::kUnreachable || e.code() == C::kTimeout || e.code() == C::kRefused ||
         e.code() == C::kShuttingDown || e.code() == C::kDeadlineExpired;
}

// A retry later may succeed.
bool PeerUnavailable(const bus::BusError& e) {
  auto code = contracts::AppCodeOf(e);
  return LinkBroke(e) || code == AppCode::kUnreachable || code == AppCode::kTimeout;
}

std::chrono::milliseconds Ms(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

// One plan being carried out: a Scale's, a reconciliation's, or resumed
// operations. Stages run one after another; the calls of a stage run at once
// (launches at most `parallel` at a time on each host).
struct Run {
  using Stage = std::function<void(Run&)>;

  std::uint64_t id = 0;
  std::string pool;
  std::string request_id;
  scaling::PoolPolicy policy;
  ConfigMap config;
  caf::strong_actor_ptr requester;  // a Scale's waiting gRPC thread; null for background runs
  std::string summary;              // the plan's message
  std::string kind = "scale";       // for metrics: scale, reconcile or resume
  std::string direction;            // a Scale's: out, in or none
  std::chrono::steady_clock::time_point began = std::chrono::steady_clock::now();

  std::deque<Stage> stages;
  std::deque<scaling::LaunchAction> launches;
  // The host of each instance the run acts on (from the plan's actions or
  // the resumed operations): every Multipass call about it goes there.
  std::map<std::string, std::string> hosts;
  int parallel = 1;
  int pending = 0;          // calls in flight (bus and cache)
  int launches_failed = 0;  // answered with a failure (not "outcome unknown")
  int launches_succeeded = 0;
  bool finishing = false;

  std::vector<std::string> errors;
  bool all_unavailable = true;
  bool changed = false;

  void Fail(std::string error, bool unavailable) {
    spdlog::warn("pool {}: request {}: {}", pool, request_id, error);
    errors.push_back(std::move(error));
    all_unavailable = all_unavailable && unavailable;
  }
  std::string Errors() const {
    std::string out;
    for (const auto& e : errors) out += (out.empty() ? "" : "; ") + e;
    return out;
  }
};

// A run waiting for an instance's node to be ready.
struct NodeWaiter {
  std::uint64_t run = 0;
  std::string instance;
  std::chrono::steady_clock::time_point until;
  std::function<void(Run&, const std::string&)> found;
};
struct NodeWatch {
  ConfigMap config;  // the latest waiter's policy
  std::vector<NodeWaiter> waiters;
  bool in_flight = false;  // a query (or its retry timer) is under way
};

struct ControllerState {
  static inline const char* name = "pool-controller";
  ControllerOptions options;
  std::unique_ptr<bus::PendingCalls> calls;
  std::map<std::uint64_t, std::unique_ptr<Run>> runs;
  std::set<std::string> tending;  // pools whose background work is being decided
  // Launches in flight per pool and host, across the pool's runs: a Scale
  // and the warm pool's refill share the pool's max_parallel_launches on
  // each host. The limit is per host because what it spares is a host's
  // multipassd (and its hostd has its own): a pool spread over four hosts
  // launches four times as many at once, not the one host's share of them.
  std::map<std::string, std::map<std::string, int>> launches_in_flight;
  std::uint64_t next_run = 1;
  std::uint64_t next_reconcile = 1;
  bool stopping = false;
  // Steps waiting for a timer (Later), by timer id: the run and the step.
  std::map<std::uint64_t, std::pair<std::uint64_t, std::function<void(Run&)>>> timers;
  std::uint64_t next_timer = 1;
  // Makes this process's stop keys unlike any earlier process's.
  std::string key_nonce = std::to_string(std::chrono::system_clock::now().time_since_epoch() /
                                         std::chrono::microseconds(1));
  std::uint64_t next_stop = 1;
  // Nodes awaited per pool (warm pools), served by one blocking query.
  std::map<std::string, NodeWatch> node_watches;
};

using Self = caf::stateful_actor<ControllerState>;

class Controller {
 public:
  explicit Controller(Self* self) : self_(self), st_(self->state) {}

  // -- Scale ---------------------------------------------------------------

  void Scale(const ScaleCommand& command) {
    auto requester = self_->current_sender();
    auto answer = [this, requester, id = command.request_id](ScaleStatus status,
                                                             std::string message) {
      Reply(requester, {id, status, std::move(message)});
    };
    if (st_.stopping) {
      answer(ScaleStatus::kStopping, "the plugin is stopping");
      return;
    }
    cache::PlanQuery query;
    query.policy = command.policy;
    query.request.request_id = command.request_id;
    query.request.target = command.target;
    query.request.dry_run = command.dry_run;
    query.reason = command.reason;
    auto timeout = st_.options.cache_timeout + st_.options.first_sync_wait;
    self_->request(st_.options.cache, timeout, cache::plan_atom::value, query)
        .then(
            [this, answer, command, requester](cache::PlanAnswer& plan) {
              try {
                OnPlan(command, plan, requester, answer);
              } catch (const std::exception& e) {
                // Before a run exists nothing was started: say so.
                answer(ScaleStatus::kFailed,
                       std::string("internal error before any step ran: ") + e.what());
              }
            },
            [this, answer](caf::error& e) {
              answer(ScaleStatus::kUnavailable, "the state cache did not answer the plan (" +
                                                    self_->system().render(e) +
                                                    "); nothing was changed");
            });
  }

  template <class AnswerFn>
  void OnPlan(const ScaleCommand& command, cache::PlanAnswer& a,
              const caf::strong_actor_ptr& requester, const AnswerFn& answer) {
    if (!a.error.empty()) {
      answer(a.store_failed ? ScaleStatus::kUnavailable : ScaleStatus::kInvalid, a.error);
      return;
    }
    std::string where = "pool " + a.pool + ": ";
    if (!a.synced) {
      answer(
          ScaleStatus::kUnavailable,
          where + "not reconciled with multipassd and Nomad yet, nothing changed: " + a.not_ready);
      return;
    }
    const auto& plan = a.plan;
    if (plan.dry_run) {
      spdlog::info("{}dry run ({}): {}", where, ToString(plan.outcome), plan.message);
      answer(ScaleStatus::kDone, "dry run: " + plan.message);
      return;
    }
    switch (plan.outcome) {
      case scaling::PlanOutcome::kNoop:
        answer(ScaleStatus::kNoop, where + plan.message);
        return;
      case scaling::PlanOutcome::kRefused:
        answer(a.unreachable ? ScaleStatus::kUnavailable : ScaleStatus::kRefused,
               where + plan.message);
        return;
      case scaling::PlanOutcome::kBackingOff:
        answer(ScaleStatus::kUnavailable, where + plan.message);
        return;
      case scaling::PlanOutcome::kExecute:
        break;
    }
    auto& run = NewRun(a.pool, a.request_id, command.policy, requester);
    // The cache recorded the plan; from here on, only Finish answers.
    run.summary = plan.message;
    run.direction = command.target > plan.current_count   ? "out"
                    : command.target < plan.current_count ? "in"
                                                          : "none";
    Execute(run, plan);
  }

  // -- Background work -----------------------------------------------------

  void Tend(const TendRequest& t) {
    if (st_.stopping || st_.tending.contains(t.pool) || HasRun(t.pool, /*scale=*/false)) return;
    st_.tending.insert(t.pool);
    auto release = [this, pool = t.pool] { st_.tending.erase(pool); };
    // While a Scale runs, only the warm pool's refill may be planned next to
    // it (the cache answers a noop for anything else); undriven operations
    // wait for the Scale to end.
    if (HasRun(t.pool, /*scale=*/true)) {
      Reconcile(t, release);
      return;
    }
    self_
        ->request(st_.options.cache, st_.options.cache_timeout, cache::undriven_atom::value, t.pool)
        .then(
            [this, t, release](cache::UndrivenWork& work) {
              if (!work.operations.empty()) {
                Guard("resuming pool " + t.pool, [&] { Resume(t, work); });
                release();
                return;
              }
              Reconcile(t, release);
            },
            [release](caf::error&) { release(); });
  }

  template <class Release>
  void Reconcile(const TendRequest& t, Release release) {
    cache::PlanQuery query;
    query.policy = t.policy;
    query.reconcile = true;
    query.request.request_id = "reconcile-" + std::to_string(st_.next_reconcile++);
    self_->request(st_.options.cache, st_.options.cache_timeout, cache::plan_atom::value, query)
        .then(
            [this, t, release](cache::PlanAnswer& a) {
              if (!a.error.empty() || !a.plan.ShouldExecute()) {
                release();
                return;
              }
              Guard("reconciling pool " + t.pool, [&] {
                auto& run = NewRun(a.pool, a.request_id, t.policy, nullptr);
                run.summary = a.plan.message;
                run.kind = a.plan.background ? "warm_pool" : "reconcile";
                CountActions(run, a.plan);
                Execute(run, a.plan);
              });
              release();
            },
            [release](caf::error&) { release(); });
  }

  void Resume(const TendRequest& t, const cache::UndrivenWork& work) {
    const auto& ops = work.operations;
    auto& run = NewRun(t.pool, ops.front().request_id, t.policy, nullptr);
    run.summary =
        "resumed " + std::to_string(ops.size()) + " operation(s) of request " + run.request_id;
    run.kind = "resume";
    run.parallel = std::max(1, run.policy.max_parallel_launches);
    auto instances = contracts::Encode(t.instances);
    std::vector<std::function<void(Run&)>> first;  // deletes and starts, at once
    std::vector<scaling::LaunchAction> relaunch;
    std::vector<std::pair<std::string, std::string>> drains;  // instance, node id
    std::set<std::string> listed(t.listed_hosts.begin(), t.listed_hosts.end());
    for (const auto& op : ops) {
      spdlog::info("pool {}: resuming {} of {} (request {})", t.pool, ToString(op.kind),
                   op.instance, op.request_id);
      const std::string& name = op.instance;
      run.hosts[name] = op.host;
      // Its host's listing is not in: nothing about it can be decided yet.
      if (!t.listed_hosts.empty() && !listed.contains(HostName(op.host))) {
        Report(run, op.kind, name, OpPhase::kUnresolved,
               "host " + op.host + " has not been listed since it became unreachable");
        continue;
      }
      switch (op.kind) {
        case OperationKind::kLaunch:
          switch (cache::ResolvePendingLaunch(name, instances)) {
            case cache::PendingLaunch::kDone:
              Report(run, op.kind, name, OpPhase::kSucceeded);
              run.changed = true;
              break;
            case cache::PendingLaunch::kWait:
              Report(run, op.kind, name, OpPhase::kUnresolved, "still launching");
              break;
            case cache::PendingLaunch::kRelaunch:
              // Its host was lost while other hosts answered: it stopped
              // counting and the autoscaler has had its share placed
              // elsewhere, so making it now would only overshoot the target.
              if (op.host_lost) {
                auto report = MakeReport(run, op.kind, name, OpPhase::kFailed,
                                         "host " + op.host +
                                             " was lost before its multipassd got this launch; "
                                             "not made again: its share was placed elsewhere");
                report.host_lost = true;
                self_->send(st_.options.cache, cache::report_atom::value, std::move(report));
                break;
              }
              relaunch.push_back(scaling::LaunchActionFor(run.policy, name));
              relaunch.back().host = op.host;
              break;
            case cache::PendingLaunch::kCleanUp:
              first.push_back([this, name](Run& r) {
                Delete(r, name, "left behind by a launch that did not finish");
              });
              break;
          }
          break;
        case OperationKind::kStart:
          // It may be a warm instance taken by a Scale before the crash: its
          // node is ineligible until made eligible, so the start is followed
          // to a ready, eligible node like a warm start (with no reserved
          // name for a cold replacement: a failure lowers the count, and the
          // autoscaler's next Scale restores it).
          first.push_back([this, name](Run& r) {
            WarmStart(r, scaling::StartAction{name, true, {}, {}});
          });
          break;
        case OperationKind::kDelete:
          first.push_back([this, name](Run& r) { Delete(r, name, "resumed after a restart"); });
          break;
        case OperationKind::kStop:  // into the warm pool; stopping twice is harmless
          first.push_back([this, name](Run& r) { StopWarm(r, name, {}); });
          break;
        case OperationKind::kDrain: {
          std::string node_id;
          for (const auto& n : t.nodes.nodes) {
            if (n.instance == name) node_id = n.id;
          }
          if (node_id.empty()) {
            first.push_back([this, name](Run& r) { Delete(r, name, "its node is gone"); });
          } else {
            drains.emplace_back(name, node_id);
          }
          break;
        }
      }
    }
    if (!first.empty()) {
      run.stages.push_back([first](Run& r) {
        for (const auto& step : first) step(r);
      });
    }
    AddLaunchStage(run, std::move(relaunch));
    if (!drains.empty()) {
      run.stages.push_back([this, drains](Run& r) { Drain(r, drains, r.policy.node_purge); });
    }
    Advance(run);
  }

  // -- Execution -----------------------------------------------------------

  Run& NewRun(const std::string& pool, const std::string& request_id, const ConfigMap& config,
              caf::strong_actor_ptr requester) {
    auto run = std::make_unique<Run>();
    run->id = st_.next_run++;
    run->pool = pool;
    run->request_id = request_id;
    run->config = config;
    run->policy = scaling::ParsePoolPolicy(config);  // the cache parsed it already: cannot fail
    run->requester = std::move(requester);
    auto& ref = *run;
    st_.runs.emplace(ref.id, std::move(run));
    return ref;
  }

  void Execute(Run& run, const scaling::ScalePlan& plan) {
    run.parallel = std::max(1, plan.max_parallel_launches);
    for (const auto& action : plan.actions) {
      std::visit(
          [&run](const auto& a) {
            using T = std::decay_t<decltype(a)>;
            if constexpr (std::is_same_v<T, scaling::SelectAndDrainAction>) {
              for (const auto& name : a.candidates) run.hosts[name] = a.host;
            } else if constexpr (std::is_same_v<T, scaling::StartAction>) {
              run.hosts[a.name] = a.host;
              if (!a.replacement.empty()) run.hosts[a.replacement] = a.host;
            } else if constexpr (!std::is_same_v<T, scaling::PurgeNodesAction>) {
              run.hosts[a.name] = a.host;
            }
          },
          action);
    }
    // Deletes and starts first, all at once; then the launches; then each
    // select-and-drain; then node purges.
    std::vector<scaling::ScaleAction> first, last;
    std::vector<scaling::LaunchAction> launches;
    for (const auto& action : plan.actions) {
      if (std::holds_alternative<scaling::DeleteAction>(action) ||
          std::holds_alternative<scaling::StartAction>(action) ||
          std::holds_alternative<scaling::PrepareWarmAction>(action)) {
        first.push_back(action);
      } else if (const auto* l = std::get_if<scaling::LaunchAction>(&action)) {
        launches.push_back(*l);
      } else {
        last.push_back(action);
      }
    }
    // Warm starts wait for their nodes (seconds): the cold launches of the
    // same Scale are not held back behind them.
    bool warm_starts = std::any_of(first.begin(), first.end(), [](const scaling::ScaleAction& a) {
      const auto* s = std::get_if<scaling::StartAction>(&a);
      return s && s->warm;
    });
    std::vector<scaling::LaunchAction> alongside;
    if (warm_starts) alongside.swap(launches);
    if (!first.empty()) {
      run.stages.push_back([this, first, alongside](Run& r) {
        r.launches.insert(r.launches.end(), alongside.begin(), alongside.end());
        for (const auto& action : first) {
          if (const auto* d = std::get_if<scaling::DeleteAction>(&action))
            Delete(r, d->name, d->reason);
          if (const auto* s = std::get_if<scaling::StartAction>(&action)) {
            if (s->warm) {
              WarmStart(r, *s);
            } else {
              Start(r, s->name);
            }
          }
          if (const auto* p = std::get_if<scaling::PrepareWarmAction>(&action)) {
            if (p->stopped) {
              StopWarm(r, p->name, {});
            } else {
              PrepareWarm(r, p->name);
            }
          }
        }
      });
    }
    AddLaunchStage(run, std::move(launches));
    for (const auto& action : last) {
      run.stages.push_back([this, action](Run& r) {
        if (const auto* s = std::get_if<scaling::SelectAndDrainAction>(&action))
          SelectAndDrain(r, *s);
        if (const auto* p = std::get_if<scaling::PurgeNodesAction>(&action)) Purge(r, p->node_ids);
      });
    }
    Advance(run);
  }

  // A stage that queues the launches; Advance keeps `parallel` of them running.
  static void AddLaunchStage(Run& run, std::vector<scaling::LaunchAction> launches) {
    if (launches.empty()) return;
    run.stages.push_back([launches = std::move(launches)](Run& r) {
      r.launches.assign(launches.begin(), launches.end());
    });
  }

  // Whether `pool` has a Scale's run (scale) or a background run (!scale).
  bool HasRun(const std::string& pool, bool scale) const {
    return std::any_of(st_.runs.begin(), st_.runs.end(), [&](const auto& entry) {
      const Run& r = *entry.second;
      return r.pool == pool && !r.finishing && (r.requester != nullptr) == scale;
    });
  }

  // The pool's launch slots on a host are shared by its runs, and a Scale's
  // launches come first: a background run (the warm pool's refill) takes a
  // free slot of a host only while no Scale of the pool has a launch waiting
  // for that host, so a Scale never queues behind a refill's launches (only
  // behind those already running).
  bool MayLaunch(const Run& run, const std::string& host) const {
    if (LaunchesInFlight(run.pool, host) >= run.parallel) return false;
    if (run.requester) return true;
    return !std::any_of(st_.runs.begin(), st_.runs.end(), [&](const auto& entry) {
      const Run& r = *entry.second;
      return r.pool == run.pool && r.requester && !r.finishing &&
             std::any_of(r.launches.begin(), r.launches.end(),
                         [&](const scaling::LaunchAction& l) { return l.host == host; });
    });
  }

  int LaunchesInFlight(const std::string& pool, const std::string& host) const {
    auto pool_it = st_.launches_in_flight.find(pool);
    if (pool_it == st_.launches_in_flight.end()) return 0;
    auto host_it = pool_it->second.find(host);
    return host_it == pool_it->second.end() ? 0 : host_it->second;
  }

 public:
  // A launch slot of `pool` came free: every run of the pool waiting for one
  // tries again, Scales first (a message to self, so it runs after the
  // step that freed the slot has completed).
  void Kick(const std::string& pool) {
    std::vector<std::uint64_t> scales, background;
    for (const auto& [id, run] : st_.runs) {
      if (run->pool != pool || run->finishing || run->launches.empty()) continue;
      (run->requester ? scales : background).push_back(id);
    }
    for (const auto& ids : {scales, background}) {
      for (auto id : ids) {
        auto it = st_.runs.find(id);
        if (it != st_.runs.end()) Advance(*it->second);
      }
    }
  }

 private:
  // A run whose first `parallel` (at least 3) launches all failed stops
  // launching: the rest would fail the same way (bad image, full host) and a
  // large Scale would send thousands of doomed launches to multipassd.
  static bool LaunchesKeepFailing(const Run& run) {
    return run.launches_succeeded == 0 && run.launches_failed >= std::max(3, run.parallel);
  }

  // The queued launches are in the store (write-ahead): each is reported as
  // failed, not attempted, so nothing of them is resumed or counted later.
  void AbandonQueuedLaunches(Run& run) {
    std::string why = "not attempted: the " + std::to_string(run.launches_failed) +
                      " launch(es) before it all failed";
    for (const auto& launch : run.launches) {
      Report(run, OperationKind::kLaunch, launch.name, OpPhase::kFailed, why);
    }
    run.Fail(std::to_string(run.launches.size()) + " queued launch(es) abandoned: " + why, false);
    run.launches.clear();
  }

  // Moves the run on: launches up to the parallelism, else the next stage
  // once nothing is in flight, else the end.
  void Advance(Run& run) {
    for (;;) {
      if (run.finishing) return;
      if (!run.launches.empty() && LaunchesKeepFailing(run)) AbandonQueuedLaunches(run);
      // In the plan's order, each host's launches up to its free slots.
      for (auto it = run.launches.begin(); it != run.launches.end();) {
        if (!MayLaunch(run, it->host)) {
          ++it;
          continue;
        }
        auto launch = std::move(*it);
        it = run.launches.erase(it);
        Launch(run, launch);
      }
      if (run.pending > 0 || !run.launches.empty()) return;
      if (run.stages.empty()) {
        Finish(run);
        return;
      }
      auto stage = std::move(run.stages.front());
      run.stages.pop_front();
      Guard(run, [&] { stage(run); });
    }
  }

  void Finish(Run& run) {
    run.finishing = true;
    CountFinish(run);
    std::string message = run.errors.empty()
                              ? run.summary
                              : std::to_string(run.errors.size()) + " failure(s): " + run.Errors();
    cache::ScaleFinish finish{run.pool, run.request_id, run.errors.empty(), run.changed, message};
    auto id = run.id;
    auto done = [this, id] {
      auto it = st_.runs.find(id);
      if (it == st_.runs.end()) return;
      Run& r = *it->second;
      if (r.requester) {
        ScaleStatus status = r.errors.empty()    ? ScaleStatus::kDone
                             : r.all_unavailable ? ScaleStatus::kUnavailable
                                                 : ScaleStatus::kFailed;
        std::string text = r.errors.empty() ? r.summary : r.Errors();
        Reply(r.requester,
              {r.request_id, status, "pool " + r.pool + ": request " + r.request_id + ": " + text});
      } else if (!r.errors.empty()) {
        spdlog::warn("pool {}: {}: {}", r.pool, r.request_id, r.Errors());
      }
      st_.runs.erase(it);
    };
    self_->request(st_.options.cache, st_.options.cache_timeout, cache::finish_atom::value, finish)
        .then([done](cache::ack_atom) { done(); },
              [this, done, pool = run.pool](caf::error& e) {
                spdlog::error("pool {}: the state cache did not record the outcome: {}", pool,
                              self_->system().render(e));
                done();
              });
  }

  // -- Steps ---------------------------------------------------------------

  // warm_failure: a warm instance that failed to prepare or to start; it
  // counts as a launch failure. `after` runs once the instance is gone.
  void Delete(Run& run, const std::string& instance, const std::string& reason,
              bool warm_failure = false, std::function<void(Run&)> after = {}) {
    auto started = MakeReport(run, OperationKind::kDelete, instance, OpPhase::kStarted, reason);
    started.warm_failure = warm_failure;
    self_->send(st_.options.cache, cache::report_atom::value, started);
    mp::DeleteRequest req;
    req.names = {instance};
    CallHost(
        run, instance, req, {60s, "delete:" + instance},
        [this, instance, reason, after](Run& r, Answer<mp::DeleteReply>& a) {
          // NOT_FOUND: gone already (deleted by a retry or by hand), which is what we wanted.
          if (a.ok() || contracts::AppCodeOf(*a.error) == AppCode::kNotFound) {
            Report(r, OperationKind::kDelete, instance, OpPhase::kSucceeded,
                   a.ok() ? reason : reason + " (already gone)");
            r.changed = true;
            if (after) after(r);
            return;
          }
          Report(r, OperationKind::kDelete, instance,
                 LinkBroke(*a.error) ? OpPhase::kUnresolved : OpPhase::kFailed, a.error->what());
          r.Fail("delete of " + instance + " via " + Where(r, instance) + ": " + a.error->what(),
                 PeerUnavailable(*a.error));
        });
  }

  void Start(Run& run, const std::string& instance) {
    Report(run, OperationKind::kStart, instance, OpPhase::kStarted);
    mp::StartRequest req;
    req.names = {instance};
    CallHost(run, instance, req,
             {Ms(run.policy.startup_timeout) + 30s, "start:" + instance + ":" + run.request_id},
             [this, instance](Run& r, Answer<mp::StartReply>& a) {
               if (a.ok()) {
                 Report(r, OperationKind::kStart, instance, OpPhase::kSucceeded);
                 r.changed = true;
                 return;
               }
               Report(r, OperationKind::kStart, instance,
                      LinkBroke(*a.error) ? OpPhase::kUnresolved : OpPhase::kFailed,
                      a.error->what());
               r.Fail("start of " + instance + ": " + a.error->what(), PeerUnavailable(*a.error));
             });
  }

  // -- Warm pool -------------------------------------------------------------

  // Waits until `name`'s node is ready: then `found(run, node id)`; once
  // `until` has passed, `found(run, "")`. The run waits for it.
  void WaitForNode(Run& run, const std::string& name, std::chrono::steady_clock::time_point until,
                   std::function<void(Run&, const std::string&)> found) {
    run.pending++;
    auto& watch = st_.node_watches[run.pool];
    watch.config = run.config;
    watch.waiters.push_back({run.id, name, until, std::move(found)});
    if (!watch.in_flight) WatchNodes(run.pool, 0);
  }

 public:
  // One blocking query on the pool's node table serves every node awaited
  // in the pool (a warm scale out awaits many at once, and each query costs
  // Nomad a list and a read per node); it runs while anyone waits.
  void WatchNodes(const std::string& pool, std::uint64_t index) {
    auto it = st_.node_watches.find(pool);
    if (it == st_.node_watches.end() || it->second.waiters.empty()) {
      if (it != st_.node_watches.end()) st_.node_watches.erase(it);
      return;
    }
    auto& watch = it->second;
    auto now = std::chrono::steady_clock::now();
    auto earliest = now + 10s;
    for (const auto& w : watch.waiters) earliest = std::min(earliest, w.until);
    auto wait = std::clamp<std::chrono::milliseconds>(
        std::chrono::duration_cast<std::chrono::milliseconds>(earliest - now), 1ms, 10s);
    nm::PoolNodesRequest req;
    req.policy = watch.config;
    // Index 0 too: Nomad answers that at once, with the index the next query
    // blocks on. A query without an index gets no index back, and the watch
    // would poll every 500 ms (watch_atom) instead of blocking.
    req.index = index;
    req.wait_ms = wait.count();
    watch.in_flight = true;
    bus::CallContract<nm::PoolNodesRequest>(
        *st_.calls, *links().nomad, req, {wait + 10s, {}},
        [this, pool](Answer<nm::PoolNodesReply>& a) { OnNodes(pool, a); });
  }

 private:
  void OnNodes(const std::string& pool, Answer<nm::PoolNodesReply>& a) {
    auto it = st_.node_watches.find(pool);
    if (it == st_.node_watches.end()) return;
    auto& watch = it->second;
    watch.in_flight = false;
    auto now = std::chrono::steady_clock::now();
    std::vector<std::pair<NodeWaiter, std::string>> resolved;
    for (auto w = watch.waiters.begin(); w != watch.waiters.end();) {
      std::string ready;
      if (a.ok()) {
        for (const auto& n : a.value.nodes)
          if (n.instance == w->instance && n.status == "ready") ready = n.id;
      }
      if (ready.empty() && now < w->until) {
        ++w;
        continue;
      }
      resolved.emplace_back(std::move(*w), ready);
      w = watch.waiters.erase(w);
    }
    std::uint64_t next = a.ok() ? a.value.index.value_or(0) : 0;
    if (next == 0) {
      // No index to block on (Nomad failed to answer): try again shortly.
      watch.in_flight = true;
      self_->delayed_send(self_, 500ms, watch_atom::value, pool, std::uint64_t{0});
    } else {
      WatchNodes(pool, next);
    }
    for (auto& entry : resolved) {
      WithRun(entry.first.run, [&](Run& r) { entry.first.found(r, entry.second); });
    }
  }

  std::chrono::steady_clock::time_point RegistrationDeadline(const Run& run) const {
    return std::chrono::steady_clock::now() +
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               run.policy.node_registration_timeout);
  }

  // A warming instance runs: once its node has registered (cloud-init has
  // installed and started Nomad, and the node ID exists) the node is made
  // ineligible and the VM stopped; it is then warm. A node that never
  // registers costs the instance: deleted, counted as a launch failure (a
  // warm pool that keeps failing backs off), and the refill launches another.
  void PrepareWarm(Run& run, const std::string& name) {
    WaitForNode(
        run, name, RegistrationDeadline(run), [this, name](Run& r, const std::string& node) {
          if (node.empty()) {
            r.Fail("warm instance " + name + ": its Nomad node did not register within " +
                       config::FormatGoDuration(r.policy.node_registration_timeout) + "; deleted",
                   false);
            Delete(r, name,
                   "warm instance: its Nomad node did not register within " +
                       config::FormatGoDuration(r.policy.node_registration_timeout),
                   /*warm_failure=*/true);
            return;
          }
          nm::MarkEligibleRequest req;
          req.node_ids = {node};
          req.eligible = false;
          Call(r, *links().nomad, req, {30s, {}},
               [this, name, node](Run& r2, Answer<nm::MarkEligibleReply>& a) {
                 if (!a.ok()) {
                   r2.Fail("warm instance " + name + ": marking node " + node + " ineligible via " +
                               links().nomad_where + ": " + a.error->what(),
                           PeerUnavailable(*a.error));
                   return;  // still warming: the next reconciliation tries again
                 }
                 StopWarm(r2, name, node);
               });
        });
  }

  // Stops `name` into the warm pool. Write-ahead: the stop, and for a
  // drained instance its joining the warm pool, are in the store before
  // multipassd is asked, so a crash leaves it warming (finished or deleted
  // by the reconciliation), never counted and stopped, never forgotten.
  void StopWarm(Run& run, const std::string& name, const std::string& node) {
    run.pending++;
    auto id = run.id;
    self_
        ->request(st_.options.cache, st_.options.cache_timeout, cache::report_atom::value,
                  MakeReport(run, OperationKind::kStop, name, OpPhase::kStarted, {}, node))
        .then(
            [this, id, name, node](cache::ack_atom) {
              WithRun(id, [&](Run& r) {
                mp::StopRequest req;
                req.names = {name};
                // A key of its own per stop: an instance is stopped when
                // prepared and again each time a scale in returns it (and
                // reconciliation ids restart with each process), while the
                // session answers a repeated key from its cache. Stopping a
                // stopped VM is harmless, so a resumed stop need not join
                // the one a crash interrupted.
                CallHost(r, name, req,
                         {60s, "stop:" + name + ":" + st_.key_nonce + ":" +
                                   std::to_string(st_.next_stop++)},
                         [this, name, node](Run& r2, Answer<mp::StopReply>& a) {
                           if (a.ok()) {
                             Report(r2, OperationKind::kStop, name, OpPhase::kSucceeded, {}, node);
                             r2.changed = true;
                             return;
                           }
                           Report(r2, OperationKind::kStop, name,
                                  LinkBroke(*a.error) ? OpPhase::kUnresolved : OpPhase::kFailed,
                                  a.error->what(), node);
                           r2.Fail("stop of warm instance " + name + " via " + Where(r2, name) +
                                       ": " + a.error->what(),
                                   PeerUnavailable(*a.error));
                         });
              });
            },
            [this, id, name](caf::error& e) {
              WithRun(id, [&](Run& r) {
                r.Fail("the state cache did not record the stop of " + name + " (" +
                           self_->system().render(e) + "); it was not stopped",
                       true);
              });
            });
  }

  // A warm instance taken by a Scale (or a start resumed after a restart):
  // start it, wait until its node is ready again, mark it eligible. A start
  // that fails, or a node that does not come back within
  // node_registration_timeout, costs the instance: deleted, its node purged,
  // and a cold launch under the plan's reserved name replaces it in this run.
  void WarmStart(Run& run, const scaling::StartAction& action) {
    const std::string name = action.name;
    Report(run, OperationKind::kStart, name, OpPhase::kStarted);
    auto replace = [this, name, replacement = action.replacement, known_node = action.node_id](
                       Run& r, const std::string& why, const std::string& seen_node) {
      spdlog::warn("pool {}: warm instance {}: {}; deleting it{}", r.pool, name, why,
                   replacement.empty() ? "" : " and launching " + replacement + " instead");
      const std::string node = seen_node.empty() ? known_node : seen_node;
      // The node goes only once the VM is gone: a client still running
      // would register it again.
      Delete(r, name, "warm start failed: " + why, /*warm_failure=*/true, [this, node](Run& r2) {
        if (!node.empty()) Purge(r2, {node});
      });
      if (replacement.empty()) {
        r.Fail("warm instance " + name + ": " + why + "; deleted", false);
        return;
      }
      Report(r, OperationKind::kLaunch, replacement, OpPhase::kStarted);
      r.launches.push_back(scaling::LaunchActionFor(r.policy, replacement));
      r.launches.back().host = HostName(r.hosts[name]);
    };
    mp::StartRequest req;
    req.names = {name};
    CallHost(run, name, req,
             {Ms(run.policy.startup_timeout) + 30s, "start:" + name + ":" + run.request_id},
             [this, name, replace](Run& r, Answer<mp::StartReply>& a) {
               if (!a.ok()) {
                 if (LinkBroke(*a.error)) {
                   Report(r, OperationKind::kStart, name, OpPhase::kUnresolved, a.error->what());
                   r.Fail("start of " + name + ": " + a.error->what(), true);
                   return;
                 }
                 replace(r, std::string("start failed: ") + a.error->what(), "");
                 return;
               }
               r.changed = true;
               WaitForNode(
                   r, name, RegistrationDeadline(r),
                   [this, name, replace](Run& r2, const std::string& node) {
                     if (node.empty()) {
                       replace(r2,
                               "its Nomad node did not come back within " +
                                   config::FormatGoDuration(r2.policy.node_registration_timeout),
                               "");
                       return;
                     }
                     nm::MarkEligibleRequest eligible;
                     eligible.node_ids = {node};
                     Call(r2, *links().nomad, eligible, {30s, {}},
                          [this, name](Run& r3, Answer<nm::MarkEligibleReply>& e) {
                            if (!e.ok()) {
                              // Still started: resumed (and made eligible) by the
                              // next process or listing.
                              Report(r3, OperationKind::kStart, name, OpPhase::kUnresolved,
                                     e.error->what());
                              r3.Fail("warm instance " + name + ": marking its node eligible via " +
                                          links().nomad_where + ": " + e.error->what(),
                                      PeerUnavailable(*e.error));
                              return;
                            }
                            Report(r3, OperationKind::kStart, name, OpPhase::kSucceeded);
                          });
                   });
             });
  }

  void Launch(Run& run, const scaling::LaunchAction& launch) {
    mp::LaunchRequest req;
    try {
      req = LaunchRequestFor(launch, run.policy.startup_timeout);
    } catch (const LaunchPayloadError& e) {
      Report(run, OperationKind::kLaunch, launch.name, OpPhase::kFailed, e.what());
      run.Fail("launch of " + launch.name + ": " + e.what(), false);
      return;
    }
    // The daemon's own timeouts come first; ours adds the download and the
    // queue in front of it. The same key on every attempt and after a
    // restart: the session runs it once.
    auto budget = Ms(run.policy.image_download_timeout) + 2 * Ms(run.policy.startup_timeout) +
                  st_.options.launch_grace;
    auto deadline = std::chrono::steady_clock::now() + budget;
    ++st_.launches_in_flight[run.pool][launch.host];
    run.hosts[launch.name] = launch.host;
    CallHost(run, launch.name, req, {budget, "launch:" + launch.name},
             [this, name = launch.name, deadline, warm = launch.warm](Run& r,
                                                                      Answer<mp::LaunchReply>& a) {
               if (a.ok()) {
                 FreeLaunchSlot(r, name);
                 ++r.launches_succeeded;
                 Report(r, OperationKind::kLaunch, name, OpPhase::kSucceeded);
                 r.changed = true;
                 if (warm) PrepareWarm(r, name);
                 return;
               }
               const auto& e = *a.error;
               auto code = contracts::AppCodeOf(e);
               // name_taken: an earlier attempt made it (a retry after hostd restarted; names
               // are fresh per plan), so its launch is followed until the instance runs.
               if (code == AppCode::kNameTaken) {
                 FollowExisting(r, name, deadline, e.what());
                 return;
               }
               // multipassd unreachable or timing out mid-launch (e.g. restarted): the daemon may
               // have gone on with it, so it is no launch failure either (no backoff).
               if (LinkBroke(e) || code == AppCode::kUnreachable || code == AppCode::kTimeout ||
                   code == AppCode::kCancelled) {
                 FreeLaunchSlot(r, name);
                 Report(r, OperationKind::kLaunch, name, OpPhase::kUnresolved, e.what());
                 r.Fail("launch of " + name + ": outcome unknown (" + e.what() +
                            "); it is resolved once " + Where(r, name) + " answers again",
                        true);
                 return;
               }
               CleanUpFailedLaunch(r, name, e.what());
             });
  }

  // The launch of `name` was made by an earlier attempt: look at the
  // instance every second until it runs (a success) or the launch's own
  // deadline passes (outcome unknown, left to the next listing).
  void FollowExisting(Run& run, const std::string& name,
                      std::chrono::steady_clock::time_point deadline, const std::string& why) {
    mp::InfoRequest info;
    info.names = {name};
    CallHost(
        run, name, info, {10s, {}}, [this, name, deadline, why](Run& r, Answer<mp::InfoReply>& a) {
          std::string state = a.ok() && !a.value.instances.empty()
                                  ? a.value.instances.front().state
                                  : std::string(a.ok() ? "gone" : a.error->what());
          if (state == "running") {
            spdlog::info("pool {}: {} was launched by an earlier attempt and runs", r.pool, name);
            FreeLaunchSlot(r, name);
            ++r.launches_succeeded;
            Report(r, OperationKind::kLaunch, name, OpPhase::kSucceeded);
            r.changed = true;
            return;
          }
          if (state == "starting" && std::chrono::steady_clock::now() + 1s < deadline) {
            Later(r, 1s, [this, name, deadline, why](Run& r2) {
              FollowExisting(r2, name, deadline, why);
            });
            return;
          }
          FreeLaunchSlot(r, name);
          Report(r, OperationKind::kLaunch, name, OpPhase::kUnresolved, why + "; " + state);
          r.Fail("launch of " + name + ": outcome unknown (" + why + "; instance " + state +
                     "); it is resolved by the next listing",
                 true);
        });
  }

  // Runs `fn` on the run after `delay`, as one of its steps (the run waits for it).
  void Later(Run& run, std::chrono::milliseconds delay, std::function<void(Run&)> fn) {
    run.pending++;
    auto timer = st_.next_timer++;
    st_.timers.emplace(timer, std::make_pair(run.id, std::move(fn)));
    self_->delayed_send(self_, delay, later_atom::value, timer);
  }

 public:
  void Fire(std::uint64_t timer) {
    auto it = st_.timers.find(timer);
    if (it == st_.timers.end()) return;
    auto [run_id, fn] = std::move(it->second);
    st_.timers.erase(it);
    WithRun(run_id, [&](Run& r) { fn(r); });
  }

 private:
  // A failed launch may leave a half-made instance: remove it, under its name.
  void CleanUpFailedLaunch(Run& run, const std::string& name, const std::string& error) {
    mp::InfoRequest info;
    info.names = {name};
    CallHost(run, name, info, {10s, {}}, [this, name, error](Run& r, Answer<mp::InfoReply>& a) {
      // multipassd answering "no such instance" is an answer: nothing was left behind.
      bool gone = !a.ok() && contracts::AppCodeOf(*a.error) == AppCode::kNotFound;
      if (!a.ok() && !gone) {
        LaunchFailed(
            r, name,
            error + "; its leftover instance could not be looked up yet: " + a.error->what(), true);
        return;
      }
      if (gone) {
        LaunchFailed(r, name, error, false);
        return;
      }
      if (a.value.instances.empty()) {
        LaunchFailed(r, name, error, false);
        return;
      }
      mp::DeleteRequest del;
      del.names = {name};
      CallHost(
          r, name, del, {60s, "cleanup:" + name},
          [this, name, error](Run& r2, Answer<mp::DeleteReply>& d) {
            if (d.ok()) {
              spdlog::info("pool {}: removed {}, left behind by its failed launch", r2.pool, name);
              LaunchFailed(r2, name, error, false);
            } else {
              LaunchFailed(
                  r2, name,
                  error + "; its leftover instance could not be removed yet: " + d.error->what(),
                  true);
            }
          });
    });
  }

  // A launch holds its slot until its outcome is settled (a failed one's
  // leftover looked up and removed), so a run that keeps failing has its
  // failures counted before it sends more.
  void FreeLaunchSlot(Run& run, const std::string& name) {
    auto& hosts = st_.launches_in_flight[run.pool];
    const std::string& host = run.hosts[name];
    if (--hosts[host] <= 0) hosts.erase(host);
    if (hosts.empty()) st_.launches_in_flight.erase(run.pool);
    self_->send(self_, kick_atom::value, run.pool);
  }

  void LaunchFailed(Run& run, const std::string& name, const std::string& detail, bool leftover) {
    FreeLaunchSlot(run, name);
    cache::OpReport report =
        MakeReport(run, OperationKind::kLaunch, name, OpPhase::kFailed, detail);
    report.leftover = leftover;  // reconciliation deletes it later
    self_->send(st_.options.cache, cache::report_atom::value, report);
    ++run.launches_failed;
    run.Fail("launch of " + name + " failed: " + detail, false);
  }

  void SelectAndDrain(Run& run, const scaling::SelectAndDrainAction& action) {
    nm::SelectRequest req;
    req.policy = run.config;
    req.count = action.count;
    req.candidates = action.candidates;
    Call(run, *links().nomad, req, {30s, {}}, [this, action](Run& r, Answer<nm::SelectReply>& a) {
      if (!a.ok()) {
        r.Fail("selecting " + std::to_string(action.count) + " node(s) to drain via " +
                   links().nomad_where + ": " + a.error->what() +
                   "; nothing was drained or deleted",
               PeerUnavailable(*a.error));
        return;
      }
      std::vector<std::pair<std::string, std::string>> nodes;
      for (const auto& s : a.value.selected) nodes.emplace_back(s.instance, s.node_id);
      if (nodes.empty()) {
        r.Fail("no node of pool " + r.pool + " could be selected for scale-in (" +
                   (a.value.note.empty() ? "no candidate passed the filter" : a.value.note) + ")",
               false);
        return;
      }
      Drain(r, nodes, action.purge_nodes, action.reuse);
    });
  }

  void Drain(Run& run, const std::vector<std::pair<std::string, std::string>>& nodes,
             bool purge_nodes, std::int64_t reuse = 0) {
    nm::DrainRequest req;
    req.policy = run.config;
    std::string key = "drain:" + run.request_id;
    for (const auto& [instance, node] : nodes) {
      req.node_ids.push_back(node);
      key += ":" + node;
    }
    auto deadline = run.policy.node_drain_deadline;
    auto wait =
        Ms(deadline > std::chrono::nanoseconds::zero() ? deadline : std::chrono::nanoseconds(1h)) +
        st_.options.drain_grace;
    if (nodes.empty()) return;
    // Write-ahead: the drains are recorded before Nomad is asked.
    run.pending++;
    auto last = nodes.size() - 1;
    for (std::size_t i = 0; i < last; ++i) {
      Report(run, OperationKind::kDrain, nodes[i].first, OpPhase::kStarted, {}, nodes[i].second);
    }
    auto id = run.id;
    self_
        ->request(st_.options.cache, st_.options.cache_timeout, cache::report_atom::value,
                  MakeReport(run, OperationKind::kDrain, nodes[last].first, OpPhase::kStarted, {},
                             nodes[last].second))
        .then(
            [this, id, req, key, wait, nodes, purge_nodes, reuse](cache::ack_atom) {
              WithRun(id, [&](Run& r) {
                Call(r, *links().nomad, req, {wait, key},
                     [this, nodes, purge_nodes, reuse, began = std::chrono::steady_clock::now()](
                         Run& r2, Answer<nm::DrainReply>& a) {
                       metrics::Observe(metrics(), "mps_drain_duration_seconds",
                                        "Drains from the request to Nomad to its answer",
                                        metrics::LongDurationBuckets(), {{"pool", r2.pool}},
                                        metrics::Seconds(std::chrono::steady_clock::now() - began));
                       OnDrained(r2, nodes, purge_nodes, a, reuse);
                     });
              });
            },
            [this, id, nodes](caf::error& e) {
              WithRun(id, [&](Run& r) {
                for (const auto& [instance, node] : nodes)
                  Report(r, OperationKind::kDrain, instance, OpPhase::kFailed,
                         "not recorded, not drained", node);
                r.Fail("the state cache did not record the drains (" + self_->system().render(e) +
                           "); nothing was drained",
                       true);
              });
            });
  }

  void OnDrained(Run& run, const std::vector<std::pair<std::string, std::string>>& nodes,
                 bool purge_nodes, Answer<nm::DrainReply>& a, std::int64_t reuse = 0) {
    CountDrains(run, nodes, a);
    if (!a.ok()) {
      for (const auto& [instance, node] : nodes) {
        Report(run, OperationKind::kDrain, instance,
               LinkBroke(*a.error) ? OpPhase::kUnresolved : OpPhase::kFailed, a.error->what(),
               node);
      }
      run.Fail("draining " + std::to_string(nodes.size()) + " node(s) via " + links().nomad_where +
                   ": " + a.error->what() + "; no instance was deleted",
               PeerUnavailable(*a.error));
      return;
    }
    std::map<std::string, const nm::DrainResult*> results;
    for (const auto& r : a.value.results) results[r.node_id] = &r;
    std::vector<std::string> purge, reenable;
    for (const auto& [instance, node] : nodes) {
      auto it = results.find(node);
      bool drained = it != results.end() && it->second->outcome != nm::DrainOutcome::kDrainFailed;
      if (drained) {
        std::string outcome = it->second->outcome == nm::DrainOutcome::kGone ? "gone" : "drained";
        Report(run, OperationKind::kDrain, instance, OpPhase::kSucceeded, outcome, node);
        if (reuse > 0 && outcome == "drained") {
          // warm_pool_reuse_on_scale_in: a drained node stays ineligible;
          // its VM is stopped and joins the warm pool instead of going.
          --reuse;
          run.changed = true;
          StopWarm(run, instance, node);
          continue;
        }
        Delete(run, instance, "node " + node + " " + outcome);
        if (purge_nodes) purge.push_back(node);
      } else {
        std::string why = it == results.end() ? "no result for this node" : it->second->reason;
        Report(run, OperationKind::kDrain, instance, OpPhase::kFailed, why, node);
        run.Fail("instance " + instance + " was not deleted: its node " + node +
                     " did not drain: " + why,
                 false);
        reenable.push_back(node);
      }
    }
    if (!reenable.empty()) {
      // A node that could not drain keeps running its jobs: let it take new ones too.
      nm::MarkEligibleRequest req;
      req.node_ids = reenable;
      Call(run, *links().nomad, req, {30s, {}}, [](Run& r, Answer<nm::MarkEligibleReply>& e) {
        if (!e.ok())
          spdlog::warn("pool {}: could not mark nodes eligible again: {}", r.pool, e.error->what());
      });
    }
    // Purged once the deletes are done, as a stage of its own.
    if (!purge.empty()) run.stages.push_front([this, purge](Run& r) { Purge(r, purge); });
  }

  void Purge(Run& run, const std::vector<std::string>& node_ids) {
    nm::PurgeRequest req;
    req.node_ids = node_ids;
    Call(run, *links().nomad, req, {60s, {}}, [this](Run& r, Answer<nm::PurgeReply>& a) {
      if (!a.ok()) {
        r.Fail("purging node(s) via " + links().nomad_where + ": " + a.error->what(),
               PeerUnavailable(*a.error));
        return;
      }
      metrics::Inc(metrics(), "mps_node_purges_total", "Nomad nodes purged after their drain",
                   {{"pool", r.pool}}, static_cast<double>(a.value.purged.size()));
      cache::NodesPurged purged{r.pool, a.value.purged};
      purged.node_ids.insert(purged.node_ids.end(), a.value.already_gone.begin(),
                             a.value.already_gone.end());
      self_->send(st_.options.cache, cache::purged_atom::value, purged);
    });
  }

  // -- Metrics -------------------------------------------------------------

  metrics::Registry* metrics() const { return st_.options.metrics.get(); }

  void CountFinish(const Run& run) const {
    std::string outcome = run.errors.empty()    ? "done"
                          : run.all_unavailable ? "unavailable"
                                                : "failed";
    metrics::Inc(metrics(), "mps_scale_runs_total",
                 "Plans carried out, by kind (scale, reconcile, resume) and outcome",
                 {{"pool", run.pool}, {"kind", run.kind}, {"outcome", outcome}});
    if (run.kind == "scale")
      metrics::Observe(metrics(), "mps_scale_duration_seconds",
                       "Scale calls carried out, from the plan to the recorded outcome",
                       metrics::LongDurationBuckets(),
                       {{"pool", run.pool}, {"direction", run.direction}},
                       metrics::Seconds(std::chrono::steady_clock::now() - run.began));
  }

  void CountActions(const Run& run, const scaling::ScalePlan& plan) const {
    for (const auto& action : plan.actions) {
      std::string kind = std::visit(
          [](const auto& a) -> std::string {
            using T = std::decay_t<decltype(a)>;
            if constexpr (std::is_same_v<T, scaling::LaunchAction>) return "launch";
            if constexpr (std::is_same_v<T, scaling::StartAction>) return "start";
            if constexpr (std::is_same_v<T, scaling::DeleteAction>) return "delete";
            if constexpr (std::is_same_v<T, scaling::SelectAndDrainAction>) return "drain";
            if constexpr (std::is_same_v<T, scaling::PrepareWarmAction>) return "prepare_warm";
            return "purge";
          },
          action);
      metrics::Inc(metrics(), "mps_reconciliation_actions_total",
                   "Actions the background reconciliation took, by kind",
                   {{"pool", run.pool}, {"kind", kind}});
    }
  }

  void CountDrains(const Run& run, const std::vector<std::pair<std::string, std::string>>& nodes,
                   const Answer<nm::DrainReply>& a) const {
    if (!metrics()) return;
    std::map<std::string, std::string> outcome;
    for (const auto& r : a.value.results)
      outcome[r.node_id] = r.outcome == nm::DrainOutcome::kDrainFailed ? "failed"
                           : r.outcome == nm::DrainOutcome::kGone      ? "gone"
                                                                       : "drained";
    for (const auto& [instance, node] : nodes) {
      std::string o = !a.ok() ? "error" : outcome.contains(node) ? outcome[node] : "failed";
      metrics::Inc(metrics(), "mps_drains_total", "Node drains, by outcome",
                   {{"pool", run.pool}, {"outcome", o}});
    }
  }

  // -- Plumbing ------------------------------------------------------------

  // A typed bus call on behalf of `run`: counted in run.pending until its
  // continuation has run; a continuation that throws fails the run instead
  // of the actor.
  template <class Request, class Fn>
  void Call(Run& run, bus::BusClient& client, const Request& request, bus::CallOptions options,
            Fn fn) {
    run.pending++;
    auto id = run.id;
    bus::CallContract<Request>(
        *st_.calls, client, request, std::move(options),
        [this, id, fn = std::move(fn)](Answer<typename Request::Reply>& answer) {
          WithRun(id, [&](Run& r) { fn(r, answer); });
        });
  }

  // The same on the Multipass host `instance` is on. Without a link to that
  // host (a name the plugin's hosts file no longer has), `fn` gets an
  // unreachable error: the operation stays unresolved until the host is
  // configured again, and nothing is sent to another host in its place.
  template <class Request, class Fn>
  void CallHost(Run& run, const std::string& instance, const Request& request,
                bus::CallOptions options, Fn fn) {
    if (const HostLink* host = links().Host(run.hosts[instance])) {
      Call(run, *host->client, request, std::move(options), std::move(fn));
      return;
    }
    bus::BusError error(bus::ErrorCode::kUnreachable, "no link to Multipass host '" +
                                                          run.hosts[instance] + "' of " + instance +
                                                          ": it is not among the plugin's hosts");
    Later(run, 0ms, [fn, error](Run& r) {
      Answer<typename Request::Reply> answer;
      answer.error = error;
      fn(r, answer);
    });
  }

  // Where the Multipass calls about `instance` go, for messages.
  std::string Where(Run& run, const std::string& instance) const {
    const HostLink* host = links().Host(run.hosts[instance]);
    return host ? host->where : "Multipass host '" + run.hosts[instance] + "'";
  }

  // The host an operation names, as the plugin's links call it.
  std::string HostName(const std::string& host) const {
    const HostLink* link = links().Host(host);
    return link ? link->name : host;
  }

  // Runs `fn` on run `id` (if it still exists) as one completed step.
  template <class Fn>
  void WithRun(std::uint64_t id, Fn&& fn) {
    auto it = st_.runs.find(id);
    if (it == st_.runs.end()) return;
    Run& run = *it->second;
    Guard(run, [&] { fn(run); });
    run.pending--;
    Advance(run);
  }

  template <class Fn>
  void Guard(Run& run, Fn&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      run.Fail(std::string("internal error: ") + e.what(), false);
    }
  }

  template <class Fn>
  bool Guard(const std::string& what, Fn&& fn) {
    try {
      fn();
      return true;
    } catch (const std::exception& e) {
      spdlog::error("pool controller: {}: {}", what, e.what());
      return false;
    }
  }

  cache::OpReport MakeReport(const Run& run, OperationKind kind, const std::string& instance,
                             OpPhase phase, std::string detail = {}, std::string node_id = {}) {
    cache::OpReport r;
    r.pool = run.pool;
    r.kind = kind;
    r.instance = instance;
    r.request_id = run.request_id;
    r.phase = phase;
    r.detail = std::move(detail);
    r.node_id = std::move(node_id);
    if (auto it = run.hosts.find(instance); it != run.hosts.end()) r.host = HostName(it->second);
    return r;
  }

  void Report(const Run& run, OperationKind kind, const std::string& instance, OpPhase phase,
              std::string detail = {}, std::string node_id = {}) {
    self_->send(st_.options.cache, cache::report_atom::value,
                MakeReport(run, kind, instance, phase, std::move(detail), std::move(node_id)));
  }

  void Reply(const caf::strong_actor_ptr& to, ScaleOutcome outcome) {
    if (!to) return;
    self_->send(caf::actor_cast<caf::actor>(to), scale_done_atom::value, std::move(outcome));
  }

  const BusLinks& links() const { return st_.options.links; }

 public:
  // Answers every waiting Scale: the process is going away. The operations
  // in flight are recorded (write-ahead), so the next process resumes them.
  void Stop() {
    st_.stopping = true;
    for (auto& [id, run] : st_.runs) {
      Reply(run->requester,
            {run->request_id, ScaleStatus::kStopping,
             "pool " + run->pool + ": request " + run->request_id +
                 ": the plugin is stopping; the operations in flight are recorded and the next "
                 "plugin process resumes them"});
    }
    st_.runs.clear();
    st_.tending.clear();
    st_.launches_in_flight.clear();
    st_.node_watches.clear();
    st_.timers.clear();
    st_.calls->Forget();
  }

 private:
  Self* self_;
  ControllerState& st_;
};

}  // namespace

std::vector<HostLink> BusLinks::MultipassHosts() const {
  if (!hosts.empty()) return hosts;
  return {HostLink{std::string(scaling::kDefaultHost), {}, multipass, multipass_where}};
}

const HostLink* BusLinks::Host(std::string_view host) const {
  if (hosts.size() == 1) return &hosts.front();
  for (const auto& link : hosts) {
    if (link.name == host) return &link;
  }
  return nullptr;
}

caf::behavior PoolController(Self* self, ControllerOptions options) {
  self->state.options = std::move(options);
  auto& links = self->state.options.links;
  links.hosts = links.MultipassHosts();
  self->state.calls = std::make_unique<bus::PendingCalls>(self->address());
  auto controller = std::make_shared<Controller>(self);
  return {
      [controller](scale_atom, const ScaleCommand& command) { controller->Scale(command); },
      [controller](tend_atom, const TendRequest& tend) { controller->Tend(tend); },
      [controller](later_atom, std::uint64_t timer) { controller->Fire(timer); },
      [controller](kick_atom, const std::string& pool) { controller->Kick(pool); },
      [controller](watch_atom, const std::string& pool, std::uint64_t index) {
        controller->WatchNodes(pool, index);
      },
      [self](bus::bus_done_atom, std::uint64_t id, bus::CallResult& result) {
        self->state.calls->Complete(id, result);
      },
      [](cache::ack_atom) {},  // acknowledgements of reports sent without waiting
      [self, controller](stop_atom) {
        controller->Stop();
        self->quit();
        return caf::unit;
      },
  };
}

caf::actor SpawnPoolController(caf::actor_system& system, ControllerOptions options) {
  return system.spawn(PoolController, std::move(options));
}

ScaleOutcome RunScale(caf::actor_system& system, const caf::actor& controller,
                      const ScaleCommand& command) {
  caf::scoped_actor self{system};
  self->monitor(controller);
  self->send(controller, scale_atom::value, command);
  std::optional<ScaleOutcome> outcome;
  while (!outcome) {
    self->receive(
        [&](scale_done_atom, ScaleOutcome& o) {
          if (o.request_id == command.request_id) outcome = std::move(o);
        },
        [&](const caf::down_msg& down) {
          outcome = ScaleOutcome{command.request_id, ScaleStatus::kStopping,
                                 "the pool controller stopped (" + system.render(down.reason) +
                                     ") before request " + command.request_id + " ended"};
        });
  }
  return std::move(*outcome);
}

void StopPoolController(caf::actor_system& system, const caf::actor& controller,
                        std::chrono::milliseconds grace) {
  if (!controller) return;
  caf::scoped_actor self{system};
  self->monitor(controller);
  self->send(controller, stop_atom::value);
  bool down = false;
  self->receive([&](const caf::down_msg&) { down = true; }, caf::after(grace) >> [] {});
  if (!down) self->send_exit(controller, caf::exit_reason::kill);
}

}  // namespace mps::controller
