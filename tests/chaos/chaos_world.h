#pragma once
// The world of the chaos test: one cluster-sim (Multipass + Nomad), one
// multipass-hostd and one multipass-target loaded by HashiCorp's go-plugin
// client (goplugin-host), with three pools, and the faults the test throws
// at it: kill -9 of hostd and of the plugin (and their restarts), multipassd
// restarts (SIGUSR1 to cluster-sim), Nomad outages and 403s, launch failures
// and slow drains (cluster-sim's POST /sim/faults), and a full disk under
// state_dir.
//
// The full disk: without root there is no small filesystem to fill (no
// tmpfs mount, no loop device) and filling a shared one would hit the other
// users of the machine. The plugin runs with SIGXFSZ ignored (a `trap ''
// XFSZ` in the sh that execs it), and the fault sets its RLIMIT_FSIZE to 0
// with prlimit(2): from then on every write to a regular file fails with
// EFBIG, as writes fail on a full disk (stricter: overwriting allocated pages
// fails too). Lifting the fault raises the limit again, as freeing space
// does. It touches only the plugin's process.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/child_process.h"
#include "support/temp_dir.h"

namespace mps::chaos {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// One goplugin-host running multipass-target interactively; steps may be sent
// from any thread, results are collected by a reader thread.
class PluginDriver {
 public:
  // Starts the host (the plugin behind `sh -c "trap '' XFSZ; exec ..."`).
  // Throws when the plugin does not start.
  explicit PluginDriver(std::atomic<int>& next_id);
  ~PluginDriver();
  PluginDriver(const PluginDriver&) = delete;
  PluginDriver& operator=(const PluginDriver&) = delete;

  pid_t plugin_pid() const { return plugin_pid_; }
  // Sends a step (run asynchronously by the host); returns its id.
  int Send(json step);
  // The step's result line, or nullopt when none came within `timeout`.
  std::optional<json> Await(int id, std::chrono::milliseconds timeout);
  // Closes the host's stdin (it kills the plugin and exits), then waits.
  void Shutdown();
  std::string host_stderr() const { return host_->stderr_text(); }

 private:
  void ReadLoop();

  std::atomic<int>& next_id_;
  std::unique_ptr<mps::testing::ChildProcess> host_;
  pid_t plugin_pid_ = -1;
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, json> results_;
  bool gone_ = false;  // the host was stopped: no more results
  std::atomic<bool> stop_{false};
  std::thread reader_;
};

class ChaosWorld {
 public:
  // Pools are named by their prefix; each has its node_class of the same name.
  explicit ChaosWorld(std::vector<std::string> pools);
  ~ChaosWorld();

  const std::string& dir() const { return dir_.path(); }
  const std::vector<std::string>& pools() const { return pools_; }
  // The target block the autoscaler sends for `pool`.
  const json& Policy(const std::string& pool) const { return policies_.at(pool); }

  void StartHostd();
  void KillHostd();  // SIGKILL
  bool hostd_running() const { return hostd_ != nullptr; }

  // A new goplugin-host with multipass-target, SetConfig; throws on failure.
  void StartPlugin();
  // SIGKILL of multipass-target itself, then its host is stopped.
  void KillPlugin();
  // The plugin being driven (null while it is down), and its incarnation:
  // it changes at every kill and every start.
  std::shared_ptr<PluginDriver> plugin(int* epoch = nullptr);
  int epoch() const { return epoch_; }

  void RestartMultipassd();               // SIGUSR1 to cluster-sim
  void SetSimFaults(const json& faults);  // POST /sim/faults
  void SetDiskFull(bool full);            // RLIMIT_FSIZE of the plugin
  bool disk_full() const { return disk_full_; }

  // What the world holds: live (not deleted) instances of `pool`, name -> state.
  std::map<std::string, std::string> Instances(const std::string& pool);
  std::vector<json> Nodes();  // GET /v1/nodes of the simulated Nomad (stubs)
  std::vector<json> UndrainedDeletions();
  // `mpscale status --json` / `mpscale events` against the status endpoint.
  std::optional<json> MpscaleStatus();
  std::string MpscaleEvents();

  std::string sim_stderr() const { return sim_->stderr_text(); }
  std::string hostd_stderr() const { return hostd_ ? hostd_->stderr_text() : ""; }
  // Everything the hosts that were stopped wrote to stderr, then the current one's.
  std::string plugin_stderr() const;

 private:
  json PluginConfig() const;

  mps::testing::TempDir dir_;
  std::vector<std::string> pools_;
  std::map<std::string, json> policies_;
  std::unique_ptr<mps::testing::ChildProcess> sim_, hostd_;
  std::string nomad_address_, hostd_endpoint_;
  std::atomic<int> next_id_{1};
  mutable std::mutex plugin_mu_;
  std::shared_ptr<PluginDriver> plugin_;
  std::atomic<int> epoch_{0};
  std::string old_plugin_stderr_;
  bool disk_full_ = false;
};

}  // namespace mps::chaos
