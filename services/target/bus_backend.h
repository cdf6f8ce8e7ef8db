#pragma once
// The target backend of multipass-target. Status is answered from the state
// cache's board in memory; Scale hands the request to the pool controller
// actor and waits for its outcome, the only wait on the Scale path. Split mode
// reaches the session in multipass-hostd over tcp/ipc with CurveZMQ; direct
// mode runs the session in this process behind inproc://, so both modes share
// one code path. The Nomad actor always runs here, behind inproc://.
#include <caf/all.hpp>

#include <memory>
#include <mutex>

#include "watcher/pool_watcher.h"

#include "metrics/registry.h"
#include "plugin/plugin_config.h"
#include "target/backend_module.h"

namespace mps::target {

struct BackendOptions {
  watcher::WatcherOptions watcher;
  // How long a Scale waits for a freshly seen pool's first reconciliation.
  std::chrono::milliseconds first_sync_wait = std::chrono::seconds(60);
};

class BusTargetBackend final : public StoppableBackend {
 public:
  explicit BusTargetBackend(BackendOptions options = {});
  ~BusTargetBackend() override;

  // Validates everything (INVALID_ARGUMENT naming each problem), then
  // replaces the running configuration.
  void SetConfig(const plugin::ConfigMap& config) override;
  plugin::TargetStatus Status(const plugin::ConfigMap& config,
                              std::chrono::steady_clock::time_point deadline) override;
  void Scale(const plugin::ScaleAction& action, const plugin::ConfigMap& config) override;
  // The host asked us to stop (GRPCController.Shutdown, SIGTERM, parent
  // gone): ends every call in flight and answers waiting Scales, without
  // waiting, so the gRPC server can drain at once.
  void Stop() override;

  struct Link;  // everything one configuration runs

 private:
  std::shared_ptr<Link> CurrentLink(const char* method) const;

  BackendOptions options_;
  std::unique_ptr<caf::actor_system_config> caf_config_;
  std::unique_ptr<caf::actor_system> system_;
  mutable std::mutex mu_;
  std::shared_ptr<Link> link_;
  // Created with the first configuration that sets metrics_address and kept
  // across reloads, so counters only grow. Null while metrics are off.
  std::shared_ptr<metrics::Registry> metrics_;
};

}  // namespace mps::target
