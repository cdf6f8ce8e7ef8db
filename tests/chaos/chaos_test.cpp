// The chaos test: random Scale out/in requests against three pools while
// random faults hit the world (kill -9 of hostd and of the plugin with their
// restarts, multipassd restarts, Nomad outages and 403s, launch failures,
// slow drains, a full disk under state_dir); after each round the faults
// stop, the test waits for quiet and checks the invariants:
//   - every Scale is answered within its bound (the policy's startup and
//     registration timeouts, the drain deadline and slack);
//   - Status is answered, within its deadline, throughout (except while the
//     plugin process is down);
//   - every pool converges to its last accepted target within a bound, the
//     autoscaler's way: it asks again while Status shows another count;
//   - a Scale answered OK left the pool at its target;
//   - no instance outside the pools' records, all of them running, one live
//     Nomad node per instance (no duplicate names), ready and eligible;
//   - no node of a deleted instance left unpurged (node_purge = true);
//   - no instance deleted while its node was not drained (cluster-sim keeps
//     the list); one deleted as "not registered with Nomad yet" less than
//     1 s after its node registered is reported as a race, not a failure,
//     unless MPS_CHAOS_STRICT=1;
//   - no operation and no Scale left in flight.
// A failing round prints its seed, its schedule, every Scale with its
// answer, the violations and the plugin's event log (`mpscale events`).
//
// Deterministic given the seed: each round's schedule (Scale requests, the
// faults, their parameters and times) comes from (seed, round) alone. The
// timing of the processes is not deterministic.
//
// Environment: MPS_CHAOS_SEED (default 22), MPS_CHAOS_ROUNDS (default 5),
// MPS_CHAOS_ROUND_MS (the faulty part of a round, default 5000),
// MPS_CHAOS_VERBOSE=1 (print every round's schedule and Scale answers),
// MPS_CHAOS_STRICT=1 (the registration race below fails the round too),
// MPS_CHAOS_FAULTS (comma-separated kinds of kill_hostd, kill_plugin,
// restart_multipassd, nomad_outage, nomad_403, launch_failures,
// slow_drains, disk_full, or "all"; default: all but disk_full, see
// FaultsFromEnv). `make chaos SEED=.. ROUNDS=.. [FAULTS=..]` runs "all".
#include <algorithm>
#include <cstdlib>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include "chaos_world.h"

namespace mps::chaos {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

constexpr int kMaxInstances = 5;
// Status's deadline (the autoscaler's gRPC context) and what we allow on top
// for the go-plugin host and two pipes on a loaded machine.
constexpr int kStatusDeadlineMs = 2000;
constexpr int kStatusSlackMs = 1000;
// A Scale's bound: startup_timeout + node_registration_timeout +
// node_drain_deadline of the policy (10 + 10 + 3 s) and 12 s of slack.
constexpr milliseconds kScaleBound = 35s;
// From the end of the faults until every pool is at its target: a Scale
// bound and the plugin's first launch backoffs (10 s, then 20 s).
constexpr milliseconds kConvergeBound = 75s;
// An undrained deletion this soon after the node registered is the race of
// a "not registered with Nomad yet" delete with the registration.
constexpr int kRaceMs = 1000;

enum class Kind {
  kScale,
  kKillHostd,
  kKillPlugin,
  kRestartMultipassd,
  kNomadOutage,
  kNomad403,
  kLaunchFailures,
  kSlowDrains,
  kDiskFull,
};
const std::vector<std::pair<Kind, std::string>> kFaultNames = {
    {Kind::kKillHostd, "kill_hostd"},
    {Kind::kKillPlugin, "kill_plugin"},
    {Kind::kRestartMultipassd, "restart_multipassd"},
    {Kind::kNomadOutage, "nomad_outage"},
    {Kind::kNomad403, "nomad_403"},
    {Kind::kLaunchFailures, "launch_failures"},
    {Kind::kSlowDrains, "slow_drains"},
    {Kind::kDiskFull, "disk_full"}};

std::string NameOf(Kind k) {
  if (k == Kind::kScale) return "scale";
  for (const auto& [kind, name] : kFaultNames)
    if (kind == k) return name;
  return "?";
}

// One entry of a round's schedule. Window faults have an on and an off entry.
struct Event {
  int at_ms = 0;
  Kind kind = Kind::kScale;
  bool on = true;    // window faults: start or end
  std::string pool;  // scale
  int value = 0;     // scale: target; kills: restart delay ms; launch: every nth; drains: ms
  std::string Describe() const { return "+" + std::to_string(at_ms) + "ms " + What(); }
  std::string What() const {
    std::ostringstream out;
    out << NameOf(kind);
    switch (kind) {
      case Kind::kScale:
        out << " " << pool << " -> " << value;
        break;
      case Kind::kKillHostd:
      case Kind::kKillPlugin:
        out << " (restart after " << value << " ms)";
        break;
      case Kind::kRestartMultipassd:
        break;
      case Kind::kLaunchFailures:
        out << (on ? " on (every " + std::to_string(value) + ")" : " off");
        break;
      case Kind::kSlowDrains:
        out << (on ? " on (" + std::to_string(value) + " ms)" : " off");
        break;
      default:
        out << (on ? " on" : " off");
    }
    return out.str();
  }
};

std::vector<Event> MakeSchedule(std::uint64_t seed, int round, int round_ms,
                                const std::vector<std::string>& pools,
                                const std::vector<Kind>& faults) {
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(round)};
  std::mt19937_64 rng(seq);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<Event> events;
  for (const auto& pool : pools) {
    int scales = uniform(1, 3);
    for (int i = 0; i < scales; ++i) {
      // Now and then above max_instances: refused, and not an accepted target.
      int target = uniform(0, 19) == 0 ? kMaxInstances + 1 : uniform(0, kMaxInstances);
      events.push_back({uniform(0, round_ms - 1), Kind::kScale, true, pool, target});
    }
  }
  int count = faults.empty() ? 0 : uniform(1, 4);
  for (int i = 0; i < count; ++i) {
    Kind k = faults[static_cast<std::size_t>(uniform(0, static_cast<int>(faults.size()) - 1))];
    int at = uniform(0, round_ms * 4 / 5);
    int length = uniform(300, 2500);
    switch (k) {
      case Kind::kKillHostd:
      case Kind::kKillPlugin:
        events.push_back({at, k, true, "", uniform(0, 1000)});
        break;
      case Kind::kRestartMultipassd:
        events.push_back({at, k, true, "", 0});
        break;
      case Kind::kLaunchFailures:
        events.push_back({at, k, true, "", uniform(2, 3)});
        events.push_back({std::min(at + length, round_ms), k, false, "", 0});
        break;
      case Kind::kSlowDrains:
        events.push_back({at, k, true, "", uniform(1000, 5000)});
        events.push_back({std::min(at + length, round_ms), k, false, "", 0});
        break;
      default:
        events.push_back({at, k, true, "", 0});
        events.push_back({std::min(at + length, round_ms), k, false, "", 0});
    }
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const Event& a, const Event& b) { return a.at_ms < b.at_ms; });
  return events;
}

struct ScaleCall {
  std::string pool;
  int target = 0;
  int id = -1;
  std::shared_ptr<PluginDriver> driver;
  Clock::time_point sent;
  std::optional<json> result;
  double elapsed_ms = 0;
  bool in_quiet = false;  // sent by the convergence phase
  std::string Describe(Clock::time_point t0) const {
    std::ostringstream out;
    out << "+" << static_cast<int>(std::chrono::duration<double, std::milli>(sent - t0).count())
        << "ms Scale " << pool << " -> " << target << (in_quiet ? " (quiet phase)" : "") << ": ";
    if (!result) {
      out << "no answer";
    } else if (result->value("ok", false)) {
      out << "OK";
    } else {
      out << result->value("code", "?") << " " << result->value("message", "");
    }
    out << " after " << static_cast<int>(elapsed_ms) << " ms";
    return out.str();
  }
};

// Refused by the planner (max_instances, a Scale of the pool in flight):
// not an accepted target.
bool Refused(const json& r) {
  return !r.value("ok", false) && r.value("code", "") == "FailedPrecondition";
}

// Status calls every 250 ms for every pool, from their own thread.
class StatusProber {
 public:
  explicit StatusProber(ChaosWorld& world) : world_(world), thread_([this] { Loop(); }) {}
  ~StatusProber() {
    stop_ = true;
    thread_.join();
  }
  void MarkRound(Clock::time_point t0) {
    std::lock_guard lock(mu_);
    round_start_ = t0;
  }
  std::vector<std::string> TakeViolations() {
    std::lock_guard lock(mu_);
    return std::exchange(violations_, {});
  }
  int calls() const { return calls_; }

 private:
  void Loop() {
    while (!stop_) {
      int epoch = 0;
      auto driver = world_.plugin(&epoch);
      if (!driver) {
        std::this_thread::sleep_for(50ms);
        continue;
      }
      std::vector<std::pair<std::string, int>> sent;
      auto t0 = Clock::now();
      for (const auto& pool : world_.pools()) {
        sent.emplace_back(pool, driver->Send({{"op", "Status"},
                                              {"config", world_.Policy(pool)},
                                              {"timeout_ms", kStatusDeadlineMs}}));
      }
      for (const auto& [pool, id] : sent) {
        auto left = milliseconds(kStatusDeadlineMs + kStatusSlackMs) -
                    std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
        auto r = driver->Await(id, std::max(left, milliseconds(0)));
        double took = MsSince(t0);
        ++calls_;
        // The plugin was killed meanwhile: not answering is what is expected.
        if (world_.epoch() != epoch) continue;
        std::string problem;
        if (!r) {
          problem =
              "no answer within " + std::to_string(kStatusDeadlineMs + kStatusSlackMs) + " ms";
        } else if (!r->value("ok", false)) {
          problem = "answered " + r->value("code", "?") + ": " + r->value("message", "");
        }
        if (!problem.empty()) {
          std::lock_guard lock(mu_);
          if (violations_.size() < 20) {
            violations_.push_back(
                "Status " + pool + " at +" +
                std::to_string(static_cast<int>(
                    std::chrono::duration<double, std::milli>(t0 - round_start_).count())) +
                "ms: " + problem + " (" + std::to_string(static_cast<int>(took)) + " ms)");
          }
        }
      }
      std::this_thread::sleep_for(250ms);
    }
  }

  ChaosWorld& world_;
  std::atomic<bool> stop_{false};
  std::atomic<int> calls_{0};
  std::mutex mu_;
  Clock::time_point round_start_ = Clock::now();
  std::vector<std::string> violations_;
  std::thread thread_;
};

std::string Tail(const std::string& text, std::size_t bytes) {
  if (text.size() <= bytes) return text;
  auto cut = text.find('\n', text.size() - bytes);
  return "...\n" + text.substr(cut == std::string::npos ? text.size() - bytes : cut + 1);
}

// The go-plugin host's log without its TRACE/DEBUG lines (a Status call
// every 250 ms per pool is logged at TRACE).
std::string WithoutChatter(const std::string& log) {
  std::string out;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find("[TRACE]") != std::string::npos || line.find("[DEBUG]") != std::string::npos) {
      continue;
    }
    out += line + "\n";
  }
  return out;
}

class ChaosRun {
 public:
  ChaosRun(std::uint64_t seed, int round_ms, std::vector<Kind> faults, bool verbose, bool strict)
      : verbose_(verbose),
        strict_(strict),
        seed_(seed),
        round_ms_(round_ms),
        faults_(std::move(faults)),
        world_({"alpha", "beta", "gamma"}) {
    world_.StartHostd();
    world_.StartPlugin();
    prober_ = std::make_unique<StatusProber>(world_);
  }

  // Runs one round; returns its report when an invariant was broken.
  std::optional<std::string> Round(int round) {
    auto schedule = MakeSchedule(seed_, round, round_ms_, world_.pools(), faults_);
    t0_ = Clock::now();
    prober_->MarkRound(t0_);
    calls_.clear();
    log_.clear();
    violations_.clear();
    notes_.clear();
    for (const auto& e : schedule) {
      std::this_thread::sleep_until(t0_ + milliseconds(e.at_ms));
      Apply(e);
    }
    std::this_thread::sleep_until(t0_ + milliseconds(round_ms_));
    Quiet();
    auto status_problems = prober_->TakeViolations();
    violations_.insert(violations_.end(), status_problems.begin(), status_problems.end());
    if (violations_.empty()) {
      summary_ = Summary(schedule);
      if (verbose_) summary_ += "\n" + Story(schedule);
      return std::nullopt;
    }
    return Report(round, schedule);
  }

  // One line for a round that passed: its faults and how the Scales were answered.
  const std::string& summary() const { return summary_; }

  int status_calls() const { return prober_->calls(); }

 private:
  void Note(const std::string& what) {
    log_.push_back("+" + std::to_string(static_cast<int>(MsSince(t0_))) + "ms " + what);
  }

  void Apply(const Event& e) {
    Note(e.What());
    try {
      switch (e.kind) {
        case Kind::kScale:
          SendScale(e.pool, e.value, false);
          break;
        case Kind::kKillHostd:
          world_.KillHostd();
          std::this_thread::sleep_for(milliseconds(e.value));
          world_.StartHostd();
          Note("hostd restarted");
          break;
        case Kind::kKillPlugin:
          world_.KillPlugin();
          std::this_thread::sleep_for(milliseconds(e.value));
          world_.StartPlugin();
          Note("plugin restarted (SetConfig OK)");
          break;
        case Kind::kRestartMultipassd:
          world_.RestartMultipassd();
          break;
        case Kind::kNomadOutage:
          Window(e, "outage", e.on);
          break;
        case Kind::kNomad403:
          Window(e, "forbidden", e.on);
          break;
        case Kind::kLaunchFailures:
          Window(e, "fail_every_nth_launch", e.on ? e.value : 0);
          break;
        case Kind::kSlowDrains:
          Window(e, "migration_delay_ms", e.on ? e.value : 200);
          break;
        case Kind::kDiskFull:
          if (Count(e)) world_.SetDiskFull(e.on);
          break;
      }
    } catch (const std::exception& ex) {
      violations_.push_back("applying " + e.Describe() + " failed: " + ex.what());
      Note(std::string("failed: ") + ex.what());
    }
  }

  // Overlapping windows of one kind: the fault is on while any is open.
  bool Count(const Event& e) {
    int& open = open_[e.kind];
    bool changes = e.on ? open++ == 0 : --open == 0;
    return changes;
  }
  void Window(const Event& e, const std::string& key, json value) {
    if (Count(e)) world_.SetSimFaults({{key, value}});
  }

  void SendScale(const std::string& pool, int target, bool quiet) {
    auto driver = world_.plugin();
    if (!driver) {
      Note("Scale " + pool + " skipped: the plugin is down");
      return;
    }
    ScaleCall call{pool, target, -1, driver, Clock::now(), std::nullopt, 0, quiet};
    call.id =
        driver->Send({{"op", "Scale"},
                      {"config", world_.Policy(pool)},
                      {"action", {{"count", target}, {"reason", "chaos"}, {"direction", "up"}}}});
    calls_.push_back(std::move(call));
  }

  // Collects answers that came; with `wait`, waits for each up to its bound.
  void Collect(bool wait) {
    for (auto& c : calls_) {
      if (c.result) continue;
      auto bound = kScaleBound - std::chrono::duration_cast<milliseconds>(Clock::now() - c.sent);
      auto r = c.driver->Await(c.id, wait ? std::max(bound, milliseconds(0)) : 0ms);
      c.elapsed_ms = MsSince(c.sent);
      if (r) {
        c.result = *r;
        if (r->contains("arrived_ns")) {
          Clock::time_point arrived{Clock::duration((*r)["arrived_ns"].get<std::int64_t>())};
          c.elapsed_ms = std::chrono::duration<double, std::milli>(arrived - c.sent).count();
        }
        if (c.elapsed_ms > static_cast<double>(kScaleBound.count())) {
          violations_.push_back(
              "Scale " + c.pool + " -> " + std::to_string(c.target) + " answered after " +
              std::to_string(static_cast<int>(c.elapsed_ms)) + " ms, longer than its bound (" +
              std::to_string(kScaleBound.count()) + " ms)");
        }
        // Every policy of the test is valid: INVALID_ARGUMENT blames the
        // autoscaler's policy for something else.
        if (r->value("code", "") == "InvalidArgument") {
          violations_.push_back(
              "Scale " + c.pool + " -> " + std::to_string(c.target) +
              " answered InvalidArgument for a valid policy: " + r->value("message", ""));
        }
      } else if (wait || c.elapsed_ms > static_cast<double>(kScaleBound.count())) {
        c.result = json{{"ok", false}, {"code", "NoAnswer"}};
        violations_.push_back("Scale " + c.pool + " -> " + std::to_string(c.target) +
                              " blocked longer than its bound (" +
                              std::to_string(kScaleBound.count()) + " ms)");
      }
    }
  }

  bool InFlight(const std::string& pool) const {
    return std::any_of(calls_.begin(), calls_.end(),
                       [&](const ScaleCall& c) { return c.pool == pool && !c.result; });
  }

  std::optional<json> StatusOf(const std::string& pool) {
    auto driver = world_.plugin();
    if (!driver) return std::nullopt;
    int id = driver->Send(
        {{"op", "Status"}, {"config", world_.Policy(pool)}, {"timeout_ms", kStatusDeadlineMs}});
    return driver->Await(id, milliseconds(kStatusDeadlineMs + kStatusSlackMs));
  }

  // What keeps `pool` from being at `desired` with a clean world; empty = converged.
  std::vector<std::string> PoolProblems(const std::string& pool, std::optional<int> desired,
                                        const std::optional<json>& status,
                                        const std::optional<json>& view,
                                        const std::vector<json>& nodes) {
    std::vector<std::string> problems;
    if (!status || !status->value("ok", false)) {
      problems.push_back("Status: " + (status ? status->dump() : std::string("no answer")));
      return problems;
    }
    const auto& values = (*status)["values"];
    int count = values.value("count", -1);
    if (!values.value("ready", false)) {
      problems.push_back("Status not ready: " + values.value("meta", json::object()).dump());
    }
    if (desired && count != *desired) {
      problems.push_back("Status count " + std::to_string(count) + ", target " +
                         std::to_string(*desired));
    }
    auto instances = world_.Instances(pool);
    for (const auto& [name, state] : instances) {
      if (state != "running") problems.push_back("instance " + name + " is " + state);
    }
    if (desired && static_cast<int>(instances.size()) != *desired) {
      problems.push_back("multipassd has " + std::to_string(instances.size()) +
                         " instances of the pool, target " + std::to_string(*desired));
    }
    // The plugin's records (its status endpoint).
    std::set<std::string> recorded, counted;
    if (!view) {
      problems.push_back("mpscale status did not answer");
    } else {
      for (const auto& p : (*view)["pools"]) {
        if (p.value("pool", "") != pool) continue;
        if (!p["operations"].empty())
          problems.push_back("operations in flight: " + p["operations"].dump());
        if (!p["scale_request"].is_null())
          problems.push_back("a Scale in flight: " + p["scale_request"].dump());
        for (const auto& i : p["instances"]) {
          std::string name = i.value("name", "");
          if (!recorded.insert(name).second)
            problems.push_back("instance " + name + " recorded twice");
          if (i.value("counted", false)) counted.insert(name);
        }
      }
      for (const auto& [name, state] : instances) {
        if (!recorded.contains(name))
          problems.push_back("instance " + name + " is outside the pool's records");
      }
      for (const auto& name : counted) {
        if (!instances.contains(name))
          problems.push_back("counted instance " + name + " does not exist");
      }
    }
    // Nomad: one live node per instance, ready, eligible; no down node left.
    std::map<std::string, int> live;
    for (const auto& n : nodes) {
      if (n.value("NodeClass", "") != pool) continue;
      std::string name = n.value("Name", ""), status_text = n.value("Status", "");
      if (status_text == "down") {
        problems.push_back("node " + n.value("ID", "") + " of " + name + " is down, not purged");
        continue;
      }
      if (++live[name] == 2) problems.push_back("two live nodes named " + name);
      if (!instances.contains(name)) problems.push_back("live node " + name + " has no instance");
      if (status_text != "ready" || n.value("SchedulingEligibility", "") != "eligible" ||
          n.value("Drain", false)) {
        problems.push_back("node " + name + " is " + status_text + "/" +
                           n.value("SchedulingEligibility", "") +
                           (n.value("Drain", false) ? "/draining" : ""));
      }
    }
    for (const auto& [name, state] : instances) {
      if (!live.contains(name)) problems.push_back("instance " + name + " has no live node");
    }
    return problems;
  }

  void Quiet() {
    Note("quiet: faults lifted");
    try {
      world_.SetSimFaults({{"outage", false},
                           {"forbidden", false},
                           {"fail_every_nth_launch", 0},
                           {"migration_delay_ms", 200}});
      world_.SetDiskFull(false);
      open_.clear();
      if (!world_.hostd_running()) world_.StartHostd();
      if (!world_.plugin()) world_.StartPlugin();
    } catch (const std::exception& e) {
      violations_.push_back(std::string("lifting the faults failed: ") + e.what());
      return;
    }
    auto quiet_start = Clock::now();
    Collect(/*wait=*/true);
    Note("every Scale of the round answered");

    // The last accepted target of each pool, and whether it was answered OK.
    std::map<std::string, std::optional<int>> desired;
    std::map<std::string, bool> answered_ok;
    for (const auto& c : calls_) {
      // Above max_instances is never a target, whatever the answer said.
      if (!c.result || Refused(*c.result) || c.target > kMaxInstances) continue;
      desired[c.pool] = c.target;
      answered_ok[c.pool] = c.result->value("ok", false);
    }
    std::map<std::string, std::vector<std::string>> problems;
    std::map<std::string, Clock::time_point> next_ask;
    std::set<std::string> ok_checked;
    std::set<std::string> pending(world_.pools().begin(), world_.pools().end());
    while (!pending.empty() && Clock::now() < quiet_start + kConvergeBound) {
      Collect(false);
      auto view = world_.MpscaleStatus();
      auto nodes = world_.Nodes();
      for (auto it = pending.begin(); it != pending.end();) {
        const auto& pool = *it;
        auto status = StatusOf(pool);
        auto want = desired[pool];
        bool ready =
            status && status->value("ok", false) && (*status)["values"].value("ready", false);
        int count =
            status && status->value("ok", false) ? (*status)["values"].value("count", -1) : -1;
        // A Scale answered OK must have left the pool at its target.
        if (ready && answered_ok[pool] && !ok_checked.contains(pool)) {
          ok_checked.insert(pool);
          if (want && count != *want) {
            violations_.push_back("pool " + pool + ": the last Scale (to " + std::to_string(*want) +
                                  ") was answered OK, but Status counts " + std::to_string(count));
          }
        }
        problems[pool] = PoolProblems(pool, want, status, view, nodes);
        if (problems[pool].empty()) {
          Note("pool " + pool + " converged" + (want ? " at " + std::to_string(*want) : ""));
          it = pending.erase(it);
          continue;
        }
        // As the autoscaler does: ask again while Status shows another count.
        if (want && count >= 0 && count != *want && !InFlight(pool) &&
            Clock::now() >= next_ask[pool]) {
          Note("pool " + pool + " counts " + std::to_string(count) + ": Scale to " +
               std::to_string(*want) + " again");
          SendScale(pool, *want, true);
          next_ask[pool] = Clock::now() + 2s;
        }
        ++it;
      }
      if (!pending.empty()) std::this_thread::sleep_for(500ms);
    }
    Collect(true);
    for (const auto& pool : pending) {
      std::string text = "pool " + pool + " did not converge within " +
                         std::to_string(kConvergeBound.count()) + " ms of the quiet:";
      for (const auto& p : problems[pool]) text += "\n      " + p;
      violations_.push_back(text);
    }
    // Deletions of instances whose node was never drained, since the start.
    auto undrained = world_.UndrainedDeletions();
    for (std::size_t i = undrained_seen_; i < undrained.size(); ++i) {
      // A node that registered moments before its instance was deleted as
      // "not registered with Nomad yet" is the plugin's Nomad view lagging
      // (a known race, reported); strict runs count it too.
      if (undrained[i].value("node_age_ms", 0) < kRaceMs && !strict_) {
        notes_.push_back("race: instance deleted " +
                         std::to_string(undrained[i].value("node_age_ms", 0)) +
                         " ms after its node registered, undrained: " + undrained[i].dump());
        continue;
      }
      violations_.push_back("instance deleted while its node was not drained: " +
                            undrained[i].dump());
    }
    undrained_seen_ = undrained.size();
    // cluster-sim refuses a second live node for one instance name.
    auto sim_log = world_.sim_stderr();
    for (std::size_t at = sim_log.find("could not join Nomad", sim_log_seen_);
         at != std::string::npos; at = sim_log.find("could not join Nomad", at + 1)) {
      auto begin = sim_log.rfind('\n', at);
      violations_.push_back("duplicate node name: " +
                            sim_log.substr(begin == std::string::npos ? 0 : begin + 1,
                                           sim_log.find('\n', at) - begin));
    }
    sim_log_seen_ = sim_log.size();
  }

  std::string Summary(const std::vector<Event>& schedule) const {
    std::string faults;
    for (const auto& e : schedule) {
      if (e.kind != Kind::kScale && e.on) faults += (faults.empty() ? "" : ",") + NameOf(e.kind);
    }
    std::map<std::string, int> answers;
    int again = 0;
    for (const auto& c : calls_) {
      if (c.in_quiet) ++again;
      ++answers[!c.result                      ? "none"
                : c.result->value("ok", false) ? "OK"
                                               : c.result->value("code", "?")];
    }
    std::string text = "faults [" + faults + "], Scales:";
    for (const auto& [code, n] : answers) text += " " + std::to_string(n) + " " + code;
    text += " (" + std::to_string(again) + " asked again in the quiet)";
    for (const auto& n : notes_) text += "\n  note: " + n;
    return text;
  }

  // The schedule, what the test did and saw, and every Scale with its answer.
  std::string Story(const std::vector<Event>& schedule) const {
    std::ostringstream out;
    out << "schedule:\n";
    for (const auto& e : schedule) out << "  " << e.Describe() << "\n";
    out << "what happened:\n";
    for (const auto& l : log_) out << "  " << l << "\n";
    out << "Scale calls:\n";
    for (const auto& c : calls_) out << "  " << c.Describe(t0_) << "\n";
    return out.str();
  }

  std::string Report(int round, const std::vector<Event>& schedule) {
    std::ostringstream out;
    // The schedule depends on the fault kinds: the replay names them.
    std::string kinds;
    for (Kind k : faults_) kinds += (kinds.empty() ? "" : ",") + NameOf(k);
    if (faults_.size() == kFaultNames.size()) kinds = "all";
    out << "\n===== chaos: round " << round << " of seed " << seed_
        << " broke an invariant (replay: make chaos SEED=" << seed_ << " ROUNDS=" << round + 1
        << " FAULTS=" << kinds << ") =====\n"
        << Story(schedule);
    out << "violations:\n";
    for (const auto& v : violations_) out << "  - " << v << "\n";
    for (const auto& n : notes_) out << "  note: " << n << "\n";
    out << "event log (mpscale events):\n" << Tail(world_.MpscaleEvents(), 24000);
    out << "plugin log (INFO and above, tail):\n"
        << Tail(WithoutChatter(world_.plugin_stderr()), 12000) << "\n";
    return out.str();
  }

  bool verbose_;
  bool strict_;
  std::uint64_t seed_;
  int round_ms_;
  std::vector<Kind> faults_;
  ChaosWorld world_;
  std::unique_ptr<StatusProber> prober_;
  Clock::time_point t0_;
  std::vector<ScaleCall> calls_;
  std::vector<std::string> log_, violations_, notes_;
  std::string summary_;
  std::map<Kind, int> open_;
  std::size_t undrained_seen_ = 0, sim_log_seen_ = 0;
};

// Unset: every kind but disk_full, because seed 22's five rounds then throw
// every other kind; with disk_full in the set the same seed draws no plugin
// kill and no slow drain. The full-disk path (issue 16 defect 3, fixed) is
// covered by the cache's unit test in CI and by `make chaos` (all kinds;
// seeds 16 and 22 pass with FAULTS=all).
std::vector<Kind> FaultsFromEnv() {
  std::vector<Kind> kinds;
  const char* v = std::getenv("MPS_CHAOS_FAULTS");
  std::string text = v && *v ? v : "";
  for (const auto& [kind, name] : kFaultNames) {
    bool chosen = text.empty() ? kind != Kind::kDiskFull
                               : text == "all" ||
                                     ("," + text + ",").find("," + name + ",") != std::string::npos;
    if (chosen) kinds.push_back(kind);
  }
  return kinds;
}

TEST(Chaos, RandomScalesUnderFaultsKeepTheInvariants) {
  // Seed 22's first five rounds throw every kind of the CI set (about 40 s).
  auto seed = static_cast<std::uint64_t>(EnvInt("MPS_CHAOS_SEED", 22));
  int rounds = EnvInt("MPS_CHAOS_ROUNDS", 5);
  int round_ms = std::max(EnvInt("MPS_CHAOS_ROUND_MS", 5000), 1000);
  auto faults = FaultsFromEnv();
  spdlog::set_level(spdlog::level::err);  // our own multipassd client's warnings
  std::printf("chaos: seed %llu, %d rounds of %d ms, %zu fault kinds\n",
              static_cast<unsigned long long>(seed), rounds, round_ms, faults.size());
  ChaosRun run(seed, round_ms, faults, EnvInt("MPS_CHAOS_VERBOSE", 0) != 0,
               EnvInt("MPS_CHAOS_STRICT", 0) != 0);
  for (int round = 0; round < rounds; ++round) {
    auto t0 = Clock::now();
    auto report = run.Round(round);
    std::printf("chaos: round %d %s in %.1f s%s%s\n", round, report ? "FAILED" : "passed",
                MsSince(t0) / 1000, report ? "" : ": ", report ? "" : run.summary().c_str());
    std::fflush(stdout);
    if (report) {
      ADD_FAILURE() << *report;
      return;
    }
  }
  std::printf("chaos: %d Status calls checked\n", run.status_calls());
}

}  // namespace
}  // namespace mps::chaos
