#include "cache/plan_executor.h"

#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "scaling/pool_observation.h"
#include "contracts/multipass.h"
#include "contracts/nomad.h"

namespace mps::cache {
namespace {

namespace mp = multipass::bus_protocol;
namespace nm = nomad::bus_protocol;
using json = nlohmann::json;
using scaling::OperationKind;
using namespace std::chrono_literals;

// The peer, not the request, failed: its outcome is unknown.
bool LinkBroke(const bus::BusError& e) {
  using C = bus::ErrorCode;
  return e.code() == C::kUnreachable || e.code() == C::kTimeout || e.code() == C::kRefused ||
         e.code() == C::kShuttingDown || e.code() == C::kDeadlineExpired;
}

bool PeerUnavailable(const bus::BusError& e) {
  return LinkBroke(e) || e.app_code() == "unreachable" || e.app_code() == "timeout";
}

json Strings(const std::vector<std::string>& v) {
  return json(v);
}

OpReport Op(std::string pool, OperationKind kind, std::string instance, std::string request_id,
            OpPhase phase, std::string detail = {}, std::string node_id = {}) {
  OpReport r;
  r.pool = std::move(pool);
  r.kind = kind;
  r.instance = std::move(instance);
  r.request_id = std::move(request_id);
  r.phase = phase;
  r.detail = std::move(detail);
  r.node_id = std::move(node_id);
  return r;
}

}  // namespace

struct PlanExecutor::Run {
  std::string pool;
  std::string request_id;
  scaling::PoolPolicy policy;
  ConfigMap policy_config;
  std::mutex mutex;  // launches report from several threads
  std::vector<std::string> errors;
  bool all_unavailable = true;
  bool changed = false;
  int done = 0;

  void Fail(std::string error, bool unavailable) {
    std::lock_guard lock(mutex);
    spdlog::warn("pool {}: request {}: {}", pool, request_id, error);
    errors.push_back(std::move(error));
    all_unavailable = all_unavailable && unavailable;
  }
  // Every failure, "; "-separated.
  std::string Errors() const {
    std::string out;
    for (const auto& e : errors) out += (out.empty() ? "" : "; ") + e;
    return out;
  }
  void Changed() {
    std::lock_guard lock(mutex);
    changed = true;
    ++done;
  }
};

json LaunchPayload(const scaling::LaunchAction& launch, std::chrono::nanoseconds startup_timeout) {
  json p{{"name", launch.name}, {"image", launch.image}};
  if (launch.cpus) p["cpus"] = *launch.cpus;
  if (!launch.memory.empty()) p["memory"] = launch.memory;
  if (!launch.disk.empty()) p["disk"] = launch.disk;
  if (!launch.cloud_init_path.empty()) {
    std::ifstream in(launch.cloud_init_path, std::ios::binary);
    if (!in) {
      throw std::runtime_error("cloud_init_user_data_path: cannot read \"" +
                               launch.cloud_init_path + "\"");
    }
    std::ostringstream text;
    text << in.rdbuf();
    p["cloud_init"] = text.str();
  }
  p["timeout_s"] = std::max<std::int64_t>(
      1, std::chrono::duration_cast<std::chrono::seconds>(startup_timeout).count());
  return p;
}

PlanExecutor::PlanExecutor(ExecutorLinks links, StateCache cache)
    : links_(std::move(links)), cache_(std::move(cache)) {}

std::string PlanExecutor::Execute(const PlanAnswer& answer, const ConfigMap& policy_config) {
  Run run;
  run.pool = answer.pool;
  run.request_id = answer.request_id;
  run.policy = answer.policy;
  run.policy_config = policy_config;
  const auto& plan = answer.plan;
  std::vector<scaling::LaunchAction> launches;
  for (const auto& action : plan.actions) {
    if (const auto* d = std::get_if<scaling::DeleteAction>(&action))
      Delete(run, d->name, d->reason);
    if (const auto* s = std::get_if<scaling::StartAction>(&action)) Start(run, s->name);
    if (const auto* l = std::get_if<scaling::LaunchAction>(&action)) launches.push_back(*l);
  }
  LaunchAll(run, launches, plan.max_parallel_launches);
  for (const auto& action : plan.actions) {
    if (const auto* s = std::get_if<scaling::SelectAndDrainAction>(&action))
      SelectAndDrain(run, *s);
    if (const auto* p = std::get_if<scaling::PurgeNodesAction>(&action)) Purge(run, p->node_ids);
  }
  Finish(run, plan.message);
  if (!run.errors.empty()) throw ExecutionError(run.Errors(), run.all_unavailable);
  return plan.message;
}

void PlanExecutor::Finish(Run& run, const std::string& summary) {
  std::string message = run.errors.empty()
                            ? summary
                            : std::to_string(run.errors.size()) + " failure(s): " + run.Errors();
  cache_.Finish({run.pool, run.request_id, run.errors.empty(), run.changed, message});
}

bool PlanExecutor::InstanceExists(const std::string& instance) {
  auto reply =
      links_.multipass->CallSync(std::string(mp::kInfo), {{"names", {instance}}}, {10s, {}});
  return !reply.value("instances", json::array()).empty();
}

void PlanExecutor::Delete(Run& run, const std::string& instance, const std::string& reason) {
  cache_.Report(Op(run.pool, OperationKind::kDelete, instance, run.request_id, OpPhase::kStarted));
  try {
    links_.multipass->CallSync(std::string(mp::kDelete), {{"names", {instance}}},
                               {60s, "delete:" + instance});
    cache_.Report(Op(run.pool, OperationKind::kDelete, instance, run.request_id,
                     OpPhase::kSucceeded, reason));
    run.Changed();
  } catch (const bus::BusError& e) {
    bool broke = LinkBroke(e);
    cache_.Report(Op(run.pool, OperationKind::kDelete, instance, run.request_id,
                     broke ? OpPhase::kUnresolved : OpPhase::kFailed, e.what()));
    run.Fail("delete of " + instance + " via " + links_.multipass_where + ": " + e.what(),
             PeerUnavailable(e));
  }
}

void PlanExecutor::Start(Run& run, const std::string& instance) {
  cache_.Report(Op(run.pool, OperationKind::kStart, instance, run.request_id, OpPhase::kStarted));
  try {
    links_.multipass->CallSync(
        std::string(mp::kStart), {{"names", {instance}}},
        {std::chrono::duration_cast<std::chrono::milliseconds>(run.policy.startup_timeout) + 30s,
         "start:" + instance + ":" + run.request_id});
    cache_.Report(
        Op(run.pool, OperationKind::kStart, instance, run.request_id, OpPhase::kSucceeded));
    run.Changed();
  } catch (const bus::BusError& e) {
    cache_.Report(Op(run.pool, OperationKind::kStart, instance, run.request_id,
                     LinkBroke(e) ? OpPhase::kUnresolved : OpPhase::kFailed, e.what()));
    run.Fail("start of " + instance + ": " + e.what(), PeerUnavailable(e));
  }
}

void PlanExecutor::Launch(Run& run, const scaling::LaunchAction& launch) {
  OpReport report =
      Op(run.pool, OperationKind::kLaunch, launch.name, run.request_id, OpPhase::kSucceeded);
  json payload;
  try {
    payload = LaunchPayload(launch, run.policy.startup_timeout);
  } catch (const std::runtime_error& e) {
    report.phase = OpPhase::kFailed;
    report.detail = e.what();
    cache_.Report(report);
    run.Fail("launch of " + launch.name + ": " + e.what(), false);
    return;
  }
  // The daemon's own timeout comes first; ours covers the queue in front of it.
  auto timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(run.policy.startup_timeout) + 60s;
  try {
    // The same key on every attempt and after a restart: hostd runs it once.
    links_.multipass->CallSync(std::string(mp::kLaunch), payload,
                               {timeout, "launch:" + launch.name});
    cache_.Report(report);
    run.Changed();
    return;
  } catch (const bus::BusError& e) {
    report.detail = e.what();
    // name_taken on a retry: our first attempt made it; the next list tells how it went.
    if (LinkBroke(e) || e.app_code() == "name_taken") {
      report.phase = OpPhase::kUnresolved;
      cache_.Report(report);
      run.Fail("launch of " + launch.name + ": outcome unknown (" + e.what() +
                   "); it is resolved once " + links_.multipass_where + " answers again",
               true);
      return;
    }
  }
  // A failed launch may leave a half-made instance: remove it, under its name.
  report.phase = OpPhase::kFailed;
  try {
    if (InstanceExists(launch.name)) {
      links_.multipass->CallSync(std::string(mp::kDelete), {{"names", {launch.name}}},
                                 {60s, "cleanup:" + launch.name});
      spdlog::info("pool {}: removed {}, left behind by its failed launch", run.pool, launch.name);
    }
  } catch (const bus::BusError& cleanup) {
    report.leftover = true;  // reconciliation deletes it later
    report.detail +=
        "; its leftover instance could not be removed yet: " + std::string(cleanup.what());
  }
  cache_.Report(report);
  run.Fail("launch of " + launch.name + " failed: " + report.detail, false);
}

void PlanExecutor::LaunchAll(Run& run, const std::vector<scaling::LaunchAction>& launches,
                             int parallel) {
  if (launches.empty()) return;
  std::mutex mutex;
  std::size_t next = 0;
  auto worker = [&] {
    for (;;) {
      std::size_t i;
      {
        std::lock_guard lock(mutex);
        if (next == launches.size()) return;
        i = next++;
      }
      Launch(run, launches[i]);
    }
  };
  std::vector<std::thread> workers;
  std::size_t n =
      std::min<std::size_t>(launches.size(), static_cast<std::size_t>(std::max(1, parallel)));
  for (std::size_t i = 0; i < n; ++i) workers.emplace_back(worker);
  for (auto& t : workers) t.join();
}

void PlanExecutor::SelectAndDrain(Run& run, const scaling::SelectAndDrainAction& action) {
  json selected;
  try {
    selected = links_.nomad->CallSync(std::string(nm::kSelect),
                                      {{"policy", run.policy_config},
                                       {"count", action.count},
                                       {"candidates", Strings(action.candidates)}},
                                      {30s, {}});
  } catch (const bus::BusError& e) {
    run.Fail("selecting " + std::to_string(action.count) + " node(s) to drain via " +
                 links_.nomad_where + ": " + e.what() + "; nothing was drained or deleted",
             PeerUnavailable(e));
    return;
  }
  std::vector<std::pair<std::string, std::string>> nodes;  // instance, node id
  for (const auto& s : selected.value("selected", json::array())) {
    nodes.emplace_back(s.value("instance", ""), s.value("node_id", ""));
  }
  if (nodes.empty()) {
    run.Fail("no node of pool " + run.pool + " could be selected for scale-in (" +
                 selected.value("note", std::string("no candidate passed the filter")) + ")",
             false);
    return;
  }
  Drain(run, nodes, action.purge_nodes);
}

void PlanExecutor::Drain(Run& run, const std::vector<std::pair<std::string, std::string>>& nodes,
                         bool purge_nodes) {
  std::vector<std::string> ids;
  for (const auto& [instance, node] : nodes) {
    cache_.Report(
        Op(run.pool, OperationKind::kDrain, instance, run.request_id, OpPhase::kStarted, {}, node));
    ids.push_back(node);
  }
  auto deadline = run.policy.node_drain_deadline;
  auto wait =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline > std::chrono::nanoseconds::zero() ? deadline : std::chrono::nanoseconds(1h)) +
      2min;
  json reply;
  try {
    std::string key = "drain:" + run.request_id;
    for (const auto& id : ids) key += ":" + id;
    reply = links_.nomad->CallSync(std::string(nm::kDrain),
                                   {{"policy", run.policy_config}, {"node_ids", Strings(ids)}},
                                   {wait, key});
  } catch (const bus::BusError& e) {
    for (const auto& [instance, node] : nodes) {
      cache_.Report(Op(run.pool, OperationKind::kDrain, instance, run.request_id,
                       LinkBroke(e) ? OpPhase::kUnresolved : OpPhase::kFailed, e.what(), node));
    }
    run.Fail("draining " + std::to_string(ids.size()) + " node(s) via " + links_.nomad_where +
                 ": " + e.what() + "; no instance was deleted",
             PeerUnavailable(e));
    return;
  }
  std::map<std::string, json> results;
  for (const auto& r : reply.value("results", json::array())) results[r.value("node_id", "")] = r;
  std::vector<std::string> purge, reenable;
  for (const auto& [instance, node] : nodes) {
    const json& r = results[node];
    std::string outcome = r.value("outcome", "missing");
    if (outcome == "drained" || outcome == "gone") {
      cache_.Report(Op(run.pool, OperationKind::kDrain, instance, run.request_id,
                       OpPhase::kSucceeded, outcome, node));
      Delete(run, instance, "node " + node + " " + outcome);
      if (purge_nodes && !run.pool.empty()) purge.push_back(node);
    } else {
      std::string why = r.value("reason", "no result for this node");
      cache_.Report(Op(run.pool, OperationKind::kDrain, instance, run.request_id, OpPhase::kFailed,
                       why, node));
      run.Fail(
          "instance " + instance + " was not deleted: its node " + node + " did not drain: " + why,
          false);
      reenable.push_back(node);
    }
  }
  if (!reenable.empty()) {
    // A node that could not drain keeps running its jobs: let it take new ones too.
    try {
      links_.nomad->CallSync(std::string(nm::kMarkEligible), {{"node_ids", Strings(reenable)}},
                             {30s, {}});
    } catch (const bus::BusError& e) {
      spdlog::warn("pool {}: could not mark nodes eligible again: {}", run.pool, e.what());
    }
  }
  if (!purge.empty()) Purge(run, purge);
}

void PlanExecutor::Purge(Run& run, const std::vector<std::string>& node_ids) {
  try {
    auto reply = links_.nomad->CallSync(std::string(nm::kPurge), {{"node_ids", Strings(node_ids)}},
                                        {60s, {}});
    std::vector<std::string> gone;
    for (const auto& id : reply.value("purged", json::array())) gone.push_back(id);
    for (const auto& id : reply.value("already_gone", json::array())) gone.push_back(id);
    cache_.NodesPurged(run.pool, gone);
  } catch (const bus::BusError& e) {
    run.Fail("purging node(s) via " + links_.nomad_where + ": " + e.what(), PeerUnavailable(e));
  }
}

void PlanExecutor::Resume(const std::string& pool, const scaling::PoolPolicy& policy,
                          const ConfigMap& policy_config,
                          const std::vector<scaling::Operation>& ops, const json& instances,
                          const json& nodes) {
  Run run;
  run.pool = pool;
  run.request_id = ops.empty() ? "" : ops.front().request_id;
  run.policy = policy;
  run.policy_config = policy_config;
  std::vector<scaling::LaunchAction> relaunch;
  std::vector<std::pair<std::string, std::string>> drains;
  for (const auto& op : ops) {
    spdlog::info("pool {}: resuming {} of {} (request {})", pool, ToString(op.kind), op.instance,
                 op.request_id);
    switch (op.kind) {
      case OperationKind::kLaunch:
        switch (ResolvePendingLaunch(op.instance, instances)) {
          case PendingLaunch::kDone:
            cache_.Report(Op(pool, op.kind, op.instance, op.request_id, OpPhase::kSucceeded));
            run.Changed();
            break;
          case PendingLaunch::kWait:
            cache_.Report(Op(pool, op.kind, op.instance, op.request_id, OpPhase::kUnresolved,
                             "still launching"));
            break;
          case PendingLaunch::kRelaunch:
            relaunch.push_back(scaling::LaunchActionFor(policy, op.instance));
            break;
          case PendingLaunch::kCleanUp:
            Delete(run, op.instance, "left behind by a launch that did not finish");
            break;
        }
        break;
      case OperationKind::kStart:
        Start(run, op.instance);
        break;
      case OperationKind::kDelete:
        Delete(run, op.instance, "resumed after a restart");
        break;
      case OperationKind::kDrain: {
        std::string node_id;
        for (const auto& n : nodes.value("nodes", json::array())) {
          if (n.contains("instance") && n["instance"] == op.instance) node_id = n.value("id", "");
        }
        if (node_id.empty()) {
          Delete(run, op.instance, "its node is gone");
        } else {
          drains.emplace_back(op.instance, node_id);
        }
        break;
      }
    }
  }
  LaunchAll(run, relaunch, policy.max_parallel_launches);
  if (!drains.empty()) Drain(run, drains, policy.node_purge);
  Finish(run,
         "resumed " + std::to_string(ops.size()) + " operation(s) of request " + run.request_id);
}

}  // namespace mps::cache
