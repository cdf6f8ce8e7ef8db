// multipass-target: the Nomad Autoscaler target plugin binary. The autoscaler
// execs it and speaks go-plugin gRPC to it (lib/plugin/plugin_process.h);
// every call becomes a bus request (target/bus_backend.h).
#include <cstdlib>
#include <string_view>

#include "plugin/plugin_process.h"
#include "target/bus_backend.h"

int main() {
  mps::target::BackendOptions backend_options;
  // Benchmark only (bench/daemon_load_bench): the watcher's listing as it was
  // before issue 12, with addresses, to measure what that cost multipassd.
  if (const char* v = std::getenv("MPS_BENCH_WATCHER_LIST_ADDRESSES");
      v && std::string_view(v) == "1")
    backend_options.watcher.list_addresses = true;
  mps::target::BusTargetBackend backend(backend_options);
  mps::plugin::PluginProcessOptions options;
  // The host asked us to stop: every call in flight is cancelled and every
  // waiting Scale answered, so the gRPC server drains at once (the Scale's
  // operations are already recorded; the next process resumes them) and no
  // blocking query holds ~actor_system.
  options.on_stop = [&backend] { backend.Stop(); };
  return mps::plugin::RunPluginProcess(backend, options);
}
