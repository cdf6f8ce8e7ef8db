// multipass-target: the Nomad Autoscaler target plugin binary. The autoscaler
// execs it and speaks go-plugin gRPC to it (lib/plugin/plugin_process.h);
// every call becomes a bus request (target/bus_backend.h).
#include "nomad_actor/nomad_actor.h"
#include "plugin/plugin_process.h"
#include "session/session.h"
#include "target/bus_backend.h"

int main() {
  mps::target::BusTargetBackend backend;
  mps::plugin::PluginProcessOptions options;
  // The host asked us to stop: every Nomad call and multipassd call in flight
  // is cancelled and answered kShuttingDown, so a Scale in flight returns at
  // once (its operations are already recorded; the next process resumes
  // them) and no blocking query holds ~actor_system.
  options.on_stop = [] {
    mps::nomad::StopAllNomadServices();
    mps::multipass::CancelAllMultipassSessions();
  };
  return mps::plugin::RunPluginProcess(backend, options);
}
