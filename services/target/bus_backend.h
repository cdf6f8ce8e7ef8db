#pragma once
// The target backend of multipass-target: every call becomes a bus request to
// the actor that owns the work. Split mode talks to multipass-hostd over
// tcp/ipc with CurveZMQ; direct mode runs the Multipass session in this
// process and talks to it over inproc://, so both modes share one code path.
#include <caf/all.hpp>

#include <memory>
#include <mutex>
#include <optional>

#include "bus/client.h"
#include "bus/context.h"
#include "bus/server.h"
#include "plugin/plugin_config.h"
#include "plugin/target_backend.h"

namespace mps::target {

class BusTargetBackend final : public plugin::TargetBackend {
 public:
  BusTargetBackend();
  ~BusTargetBackend() override;

  // Validates everything (INVALID_ARGUMENT naming each problem), then
  // replaces the connection. A bad reload keeps the previous configuration.
  void SetConfig(const plugin::ConfigMap& config) override;
  // count = instances of the pool (prefix-): see StatusFromInstances.
  plugin::TargetStatus Status(const plugin::ConfigMap& config,
                              std::chrono::steady_clock::time_point deadline) override;
  // Refused with UNIMPLEMENTED until scaling is wired: never a silent success.
  void Scale(const plugin::ScaleAction& action, const plugin::ConfigMap& config) override;

  struct Link;  // the bus connection of one configuration

 private:
  std::shared_ptr<Link> CurrentLink(const char* method) const;
  std::shared_ptr<Link> MakeDirectLink(const plugin::PluginConfig& config);

  std::unique_ptr<caf::actor_system_config> caf_config_;
  std::unique_ptr<caf::actor_system> system_;
  mutable std::mutex mu_;
  std::shared_ptr<Link> link_;
};

// The pure part of Status: the reply of `multipass.list` for the pool's
// prefix in, the autoscaler's answer out. Counted: instances that exist and
// are not being deleted or stopped (running, starting, restarting) plus
// launches in flight. Not ready while any of them is still starting.
plugin::TargetStatus StatusFromInstances(const nlohmann::json& list_reply);

}  // namespace mps::target
