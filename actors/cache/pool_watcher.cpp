#include "cache/pool_watcher.h"

#include <spdlog/spdlog.h>

#include "multipass/bus_protocol.h"
#include "nomad/bus_protocol.h"

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
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  for (auto& t : runs_) t.join();
  runs_.clear();
  run_done_.clear();
}

void PoolWatcher::Loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, options_.interval, [&] { return woken_ || stopping_; });
      if (stopping_) return;
      woken_ = false;
      // Reap finished runs so the list stays short.
      auto t = runs_.begin();
      auto d = run_done_.begin();
      while (t != runs_.end()) {
        if (**d) {
          t->join();
          t = runs_.erase(t);
          d = run_done_.erase(d);
        } else {
          ++t;
          ++d;
        }
      }
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
  run_done_.push_back(done);
  runs_.emplace_back([work = std::move(work), done] {
    try {
      work();
    } catch (const std::exception& e) {
      spdlog::warn("background scaling run: {}", e.what());
    }
    *done = true;
  });
}

void PoolWatcher::Tick() {
  for (const auto& target : cache_.Pools()) {
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
    try {
      o.nodes = links_.nomad->CallSync(std::string(nomad::bus_protocol::kPoolNodes),
                                       {{"policy", target.policy}}, {options_.nodes_timeout, {}});
    } catch (const bus::BusError& e) {
      o.nomad_error = links_.nomad_where + ": " + e.what();
    }
    cache_.Observe(o);
    if (!o.instances || !o.nodes) continue;

    auto undriven = cache_.TakeUndriven(target.pool);
    if (!undriven.operations.empty()) {
      RunInBackground([this, pool = target.pool, work = std::move(undriven), config = target.policy,
                       instances = *o.instances, nodes = *o.nodes] {
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
