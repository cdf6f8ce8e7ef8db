#include "cache/pool_watcher.h"

#include <spdlog/spdlog.h>

#include "contracts/multipass.h"
#include "contracts/nomad.h"

namespace mps::cache {

using json = nlohmann::json;

PoolWatcher::PoolWatcher(ExecutorLinks links, StateCache cache, WatcherOptions options)
    : links_(std::move(links)), cache_(std::move(cache)), options_(options) {}

PoolWatcher::~PoolWatcher() {
  Stop();
}

void PoolWatcher::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void PoolWatcher::Wake() {
  std::lock_guard lock(mutex_);
  woken_ = true;
  wake_.notify_one();
}

void PoolWatcher::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  for (auto& [pool, watch] : node_watches_) {
    if (watch.thread.joinable()) watch.thread.join();
  }
  for (auto& run : runs_) run.thread.join();
  runs_.clear();
}

void PoolWatcher::Loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, options_.interval, [&] { return woken_ || stopping_; });
      if (stopping_) return;
      woken_ = false;
      // Reap finished runs so the list stays short.
      std::erase_if(runs_, [](BackgroundRun& run) {
        if (!*run.done) return false;
        run.thread.join();
        return true;
      });
    }
    try {
      Tick();
    } catch (const std::exception& e) {
      // The cache stopped answering: nothing to observe for; try again next tick.
      spdlog::warn("pool watcher: {}", e.what());
    }
  }
}

void PoolWatcher::RunInBackground(std::function<void()> work) {
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::thread thread([work = std::move(work), done] {
    try {
      work();
    } catch (const std::exception& e) {
      spdlog::warn("background scaling run: {}", e.what());
    }
    *done = true;
  });
  runs_.push_back({std::move(thread), std::move(done)});
}

void PoolWatcher::EnsureNodeWatch(const PoolTarget& target) {
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  auto [it, fresh] = node_watches_.try_emplace(target.pool);
  it->second.policy = target.policy;
  if (fresh) it->second.thread = std::thread([this, pool = target.pool] { WatchNodes(pool); });
}

void PoolWatcher::WatchNodes(const std::string& pool) {
  std::uint64_t index = 0;
  for (;;) {
    ConfigMap policy;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      policy = node_watches_[pool].policy;
    }
    Observation o;
    o.pool = pool;
    bool failed = false;
    bool changed = true;
    try {
      auto reply = links_.nomad->CallSync(
          std::string(nomad::bus_protocol::kPoolNodes),
          {{"policy", policy}, {"index", index}, {"wait_ms", options_.nodes_wait.count()}},
          {options_.nodes_wait + std::chrono::seconds(30), {}});
      std::uint64_t next = reply.value("index", std::uint64_t{0});
      // Nomad's index only grows; one that went back means a restored
      // cluster: start over from a full answer.
      changed = next != index;
      index = next < index ? 0 : next;
      o.nodes = reply;
    } catch (const bus::BusError& e) {
      o.nomad_error = links_.nomad_where + ": " + e.what();
      failed = true;
    }
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      node_watches_[pool].nodes = o.nodes;
    }
    try {
      cache_.Observe(o);
    } catch (const std::exception& e) {
      spdlog::warn("node watch of pool {}: {}", pool, e.what());
    }
    if (changed) Wake();  // a node change may make a reconciliation due
    if (failed) {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, options_.nodes_retry, [&] { return stopping_; });
    }
  }
}

void PoolWatcher::Tick() {
  for (const auto& target : cache_.Pools()) {
    EnsureNodeWatch(target);
    Observation o;
    o.pool = target.pool;
    o.epoch = target.epoch;
    try {
      o.instances =
          links_.multipass->CallSync(std::string(multipass::bus_protocol::kList),
                                     {{"prefix", target.pool}}, {options_.list_timeout, {}});
    } catch (const bus::BusError& e) {
      o.multipass_error = links_.multipass_where + ": " + e.what();
    }
    cache_.Observe(o);
    std::optional<nlohmann::json> nodes;
    {
      std::lock_guard lock(mutex_);
      nodes = node_watches_[target.pool].nodes;
    }
    if (!o.instances || !nodes) continue;

    auto undriven = cache_.TakeUndriven(target.pool);
    if (!undriven.operations.empty()) {
      RunInBackground([this, pool = target.pool, work = std::move(undriven), config = target.policy,
                       instances = *o.instances, nodes = *nodes] {
        PlanExecutor(links_, cache_)
            .Resume(pool, work.policy, config, work.operations, instances, nodes);
      });
      continue;
    }
    PlanQuery query{target.policy, {}, {}, /*reconcile=*/true};
    static std::atomic<std::uint64_t> counter{0};
    query.request.request_id = "reconcile-" + std::to_string(++counter);
    PlanAnswer answer = cache_.Plan(query);
    if (!answer.plan.ShouldExecute()) continue;
    RunInBackground([this, answer = std::move(answer), config = target.policy] {
      try {
        PlanExecutor(links_, cache_).Execute(answer, config);
      } catch (const ExecutionError& e) {
        spdlog::warn("pool {}: reconciliation {}: {}", answer.pool, answer.request_id, e.what());
      }
    });
  }
}

}  // namespace mps::cache
