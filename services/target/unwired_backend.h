#pragma once
// TEMPORARY backend until the lead wires the real one (bus requests to the
// Multipass session, Nomad drain/purge and state cache actors). It validates
// SetConfig for real and refuses every scaling call: no fake success.
#include <mutex>
#include <optional>

#include "plugin/plugin_config.h"
#include "plugin/target_backend.h"

namespace mps::target {

class UnwiredBackend final : public plugin::TargetBackend {
 public:
  static constexpr const char* kNotWired = "scaling backend not wired yet";

  // INVALID_ARGUMENT naming every problem; on success replaces the config.
  void SetConfig(const plugin::ConfigMap& config) override;
  // FAILED_PRECONDITION before a successful SetConfig, UNAVAILABLE after.
  plugin::TargetStatus Status(const plugin::ConfigMap& config,
                              std::chrono::steady_clock::time_point deadline) override;
  void Scale(const plugin::ScaleAction& action, const plugin::ConfigMap& config) override;

 private:
  void RequireConfigured(const char* method) const;

  mutable std::mutex mu_;
  std::optional<plugin::PluginConfig> config_;
};

}  // namespace mps::target
