#pragma once
// Keeps the state cache true to the world: every interval it lists each
// known pool's instances (multipass.list) and nodes (nomad.pool_nodes),
// reports them to the cache, then runs what the cache says is due: resuming
// operations nobody drives, or the reconciliation plan (replace instances
// that never registered, delete leftovers, purge orphan nodes). Those runs
// happen on background threads so observation never stalls behind a launch.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>

#include "cache/plan_executor.h"
#include "cache/state_cache.h"

namespace mps::cache {

struct WatcherOptions {
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds list_timeout{3000};
  std::chrono::milliseconds nodes_timeout{5000};
};

class PoolWatcher {
 public:
  PoolWatcher(ExecutorLinks links, StateCache cache, WatcherOptions options = {});
  ~PoolWatcher();  // Stop()
  PoolWatcher(const PoolWatcher&) = delete;
  PoolWatcher& operator=(const PoolWatcher&) = delete;

  void Start();
  // Observe now (a pool was just registered).
  void Wake();
  // Ends the loop and waits for background runs; shut the bus clients down
  // first so that runs blocked on a peer return.
  void Stop();

 private:
  void Loop();
  void Tick();
  void RunInBackground(std::function<void()> work);

  ExecutorLinks links_;
  StateCache cache_;
  WatcherOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool woken_ = false;
  bool stopping_ = false;
  std::thread thread_;
  std::list<std::thread> runs_;
  std::list<std::shared_ptr<std::atomic<bool>>> run_done_;
};

}  // namespace mps::cache
