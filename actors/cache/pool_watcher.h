#pragma once
// Keeps the state cache true to the world. Two kinds of loops:
//  - the listing loop: every interval (or at once when woken) lists each
//    known pool's instances (multipass.list), reports them to the cache, then
//    runs what the cache says is due: resuming operations nobody drives, or
//    the reconciliation plan (replace instances that never registered, delete
//    leftovers, purge orphan nodes), on background threads so that listing
//    never stalls behind a launch;
//  - one node watch per pool: a Nomad blocking query on the node table
//    (nomad.pool_nodes with an index), reported to the cache whenever Nomad's
//    nodes change, so a node that registers, goes down or drains is seen at
//    once without polling Nomad.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "cache/plan_executor.h"
#include "cache/state_cache.h"

namespace mps::cache {

struct WatcherOptions {
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds list_timeout{3000};
  // How long one blocking query on Nomad's nodes waits for a change.
  std::chrono::milliseconds nodes_wait{30000};
  // After a failed node query, before the next.
  std::chrono::milliseconds nodes_retry{1000};
};

class PoolWatcher {
 public:
  PoolWatcher(ExecutorLinks links, StateCache cache, WatcherOptions options = {});
  ~PoolWatcher();  // Stop()
  PoolWatcher(const PoolWatcher&) = delete;
  PoolWatcher& operator=(const PoolWatcher&) = delete;

  void Start();
  // List now (a pool was just registered, or hostd reported a change).
  void Wake();
  // Ends the loops and waits for them and for background runs; shut the bus
  // clients down first so that calls blocked on a peer return.
  void Stop();

 private:
  struct NodeWatch {
    ConfigMap policy;                     // the pool's latest target config
    std::optional<nlohmann::json> nodes;  // the latest successful reply
    std::thread thread;
  };

  void Loop();
  void Tick();
  void WatchNodes(const std::string& pool);
  void EnsureNodeWatch(const PoolTarget& target);
  void RunInBackground(std::function<void()> work);

  ExecutorLinks links_;
  StateCache cache_;
  WatcherOptions options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool woken_ = false;
  bool stopping_ = false;
  std::thread thread_;
  std::map<std::string, NodeWatch> node_watches_;
  struct BackgroundRun {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;  // set by the thread as it ends
  };
  std::list<BackgroundRun> runs_;
};

}  // namespace mps::cache
