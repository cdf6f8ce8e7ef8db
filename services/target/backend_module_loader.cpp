#include "target/backend_module_loader.h"

#include <dlfcn.h>

#include <system_error>

#include "plugin/plugin_error.h"

namespace mps::target {

namespace fs = std::filesystem;

BackendModuleLoader::BackendModuleLoader(fs::path module_path)
    : module_path_(std::move(module_path)) {}

BackendModuleLoader::~BackendModuleLoader() {
  backend_.reset();
}

fs::path BackendModuleLoader::BesideExecutable() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  // Without /proc the module is looked for relative to the working directory;
  // the error then names that path.
  if (ec) exe = fs::path("bin") / "multipass-target";
  return (exe.parent_path() / ".." / "lib" / "multipass-target-backend.so").lexically_normal();
}

void BackendModuleLoader::Load() {
  std::string error;
  std::unique_ptr<StoppableBackend> backend;
  // RTLD_NOW: a symbol the module needs and the executable lacks is an error
  // here, with its name, rather than a crash in the middle of a call.
  // RTLD_LOCAL: nothing else in the process resolves symbols against it.
  if (void* handle = ::dlopen(module_path_.c_str(), RTLD_NOW | RTLD_LOCAL); !handle) {
    const char* reason = ::dlerror();
    error = reason ? reason : "dlopen failed";
  } else if (void* factory = ::dlsym(handle, MPS_TARGET_BACKEND_FACTORY); !factory) {
    error = std::string("no ") + MPS_TARGET_BACKEND_FACTORY +
            " (a module from another build of multipass-target?)";
  } else {
    std::string reason;
    backend.reset(reinterpret_cast<decltype(&mps_target_backend_create_v1)>(factory)(&reason));
    if (!backend) error = "creating the backend failed: " + reason;
  }
  bool stop_now = false;
  {
    std::lock_guard lock(mu_);
    done_ = true;
    error_ = std::move(error);
    backend_ = std::move(backend);
    stop_now = stop_requested_ && backend_;
  }
  loaded_cv_.notify_all();
  if (stop_now) backend_->Stop();
}

StoppableBackend& BackendModuleLoader::Loaded() {
  std::unique_lock lock(mu_);
  if (!started_) {
    started_ = true;
    lock.unlock();  // Stop and concurrent calls must not wait on the mutex
    Load();
    lock.lock();
  }
  loaded_cv_.wait(lock, [this] { return done_; });
  if (!backend_) {
    throw plugin::PluginError(
        plugin::PluginError::Code::failed_precondition,
        "backend module " + module_path_.string() + " cannot be loaded: " + error_);
  }
  return *backend_;
}

void BackendModuleLoader::Stop() {
  StoppableBackend* backend = nullptr;
  {
    std::lock_guard lock(mu_);
    stop_requested_ = true;
    backend = backend_.get();
  }
  if (backend) backend->Stop();
}

void BackendModuleLoader::SetConfig(const plugin::ConfigMap& config) {
  Loaded().SetConfig(config);
}

plugin::TargetStatus BackendModuleLoader::Status(const plugin::ConfigMap& config,
                                                 std::chrono::steady_clock::time_point deadline) {
  return Loaded().Status(config, deadline);
}

void BackendModuleLoader::Scale(const plugin::ScaleAction& action,
                                const plugin::ConfigMap& config) {
  Loaded().Scale(action, config);
}

}  // namespace mps::target
