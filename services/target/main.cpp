// multipass-target: the Nomad Autoscaler target plugin binary. The autoscaler
// execs it and speaks go-plugin gRPC to it; see actors/plugin/plugin_process.h.
#include "plugin/plugin_process.h"
#include "target/unwired_backend.h"

int main() {
  mps::target::UnwiredBackend backend;
  return mps::plugin::RunPluginProcess(backend);
}
