#include "target/unwired_backend.h"

#include <spdlog/spdlog.h>

#include "plugin/plugin_error.h"

namespace mps::target {

using plugin::PluginError;

void UnwiredBackend::SetConfig(const plugin::ConfigMap& config) {
  plugin::PluginConfig parsed = plugin::PluginConfig::Parse(config);
  spdlog::info("plugin configured in {} mode", parsed.split() ? "split" : "direct");
  std::lock_guard lock(mu_);
  config_ = std::move(parsed);
}

void UnwiredBackend::RequireConfigured(const char* method) const {
  std::lock_guard lock(mu_);
  if (!config_) {
    throw PluginError(PluginError::Code::failed_precondition,
                      std::string(method) + " called before a successful SetConfig");
  }
}

plugin::TargetStatus UnwiredBackend::Status(const plugin::ConfigMap&,
                                            std::chrono::steady_clock::time_point) {
  RequireConfigured("Status");
  throw PluginError(PluginError::Code::unavailable, kNotWired);
}

void UnwiredBackend::Scale(const plugin::ScaleAction&, const plugin::ConfigMap&) {
  RequireConfigured("Scale");
  throw PluginError(PluginError::Code::unavailable, kNotWired);
}

}  // namespace mps::target
