// multipass-target: the Nomad Autoscaler target plugin binary. The autoscaler
// execs it and speaks go-plugin gRPC to it (lib/plugin/plugin_process.h);
// every call goes to the backend module (target/backend_module.h), which
// turns it into bus requests (target/bus_backend.h).
#include "plugin/plugin_process.h"
#include "target/backend_module_loader.h"

int main() {
  mps::target::BackendModuleLoader backend(mps::target::BackendModuleLoader::BesideExecutable());
  mps::plugin::PluginProcessOptions options;
  // The host asked us to stop: every call in flight is cancelled and every
  // waiting Scale answered, so the gRPC server drains at once (the Scale's
  // operations are already recorded; the next process resumes them) and no
  // blocking query holds ~actor_system.
  options.on_stop = [&backend] { backend.Stop(); };
  return mps::plugin::RunPluginProcess(backend, options);
}
