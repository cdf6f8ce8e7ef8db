#pragma once
// The front's side of backend_module.h: a TargetBackend that forwards every
// call to the backend module, loaded by the first call that needs it
// (the autoscaler's SetConfig). Not earlier: while dlopen runs, glibc's
// loader lock holds every thread the process creates, and gRPC creates one
// to answer the host's first call (PluginInfo), so a load started at the
// handshake delayed that answer by the whole load (docs/BENCHMARKS.md).
// Calls that arrive during the load wait for it; a module that is missing or
// cannot be loaded makes every call fail with FAILED_PRECONDITION naming its
// path and the loader's reason, never a crash.
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "target/backend_module.h"

namespace mps::target {

class BackendModuleLoader final : public plugin::TargetBackend {
 public:
  explicit BackendModuleLoader(std::filesystem::path module_path);
  // Destroys the backend. The module itself stays mapped until the process
  // exits: its threads and CAF's static state must not outlive its code.
  ~BackendModuleLoader() override;

  // <directory of the running executable>/../lib/multipass-target-backend.so,
  // the layout of the build tree (build/bin, build/lib) and of the release
  // archive (deploy/nomad). Symlinks to the executable are resolved first.
  static std::filesystem::path BesideExecutable();

  // Forwards the stop to the backend, now if it is loaded, or as soon as it
  // is; never waits for the load.
  void Stop();

  void SetConfig(const plugin::ConfigMap& config) override;
  plugin::TargetStatus Status(const plugin::ConfigMap& config,
                              std::chrono::steady_clock::time_point deadline) override;
  void Scale(const plugin::ScaleAction& action, const plugin::ConfigMap& config) override;

 private:
  void Load();
  // Loads the module if nobody has, else waits for the load; throws
  // PluginError when it failed.
  StoppableBackend& Loaded();

  const std::filesystem::path module_path_;
  std::mutex mu_;
  std::condition_variable loaded_cv_;
  bool started_ = false;
  bool done_ = false;
  bool stop_requested_ = false;
  std::string error_;  // why the load failed; empty once loaded
  std::unique_ptr<StoppableBackend> backend_;
};

}  // namespace mps::target
