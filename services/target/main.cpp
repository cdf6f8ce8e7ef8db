// multipass-target: the Nomad Autoscaler target plugin binary. The autoscaler
// execs it and speaks go-plugin gRPC to it (lib/plugin/plugin_process.h);
// every call becomes a bus request (target/bus_backend.h).
#include "plugin/plugin_process.h"
#include "target/bus_backend.h"

int main() {
  mps::target::BusTargetBackend backend;
  return mps::plugin::RunPluginProcess(backend);
}
