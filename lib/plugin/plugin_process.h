#pragma once
// Runs the whole go-plugin plugin process around a TargetBackend: cookie
// check, hclog stderr logging, listener, handshake, gRPC services (autoscaler
// base + target, go-plugin controller/stdio/broker, health "plugin"), and
// the ways the process ends:
//   - GRPCController.Shutdown (the host's Kill) or SIGTERM: graceful stop;
//   - the parent process dies (PR_SET_PDEATHSIG + a getppid() watch);
//   - SIGINT is ignored (a terminal's Ctrl-C hits the whole process group;
//     the host drives shutdown); stdin is not watched (it is the host's own
//     stdin, often /dev/null).
// The socket file (and private socket dir) are removed on every clean exit.
#include <chrono>
#include <functional>
#include <string>

#include "plugin/process_contract.h"
#include "plugin/target_backend.h"

namespace mps::plugin {

struct PluginProcessOptions {
  std::string module = "multipass-target";  // hclog @module
  // How long in-flight calls may finish after a stop request; the host
  // SIGKILLs us 2 s after its Shutdown call.
  std::chrono::milliseconds grace = std::chrono::milliseconds(1000);
  // Called once on the serving thread when the stop is requested, before the
  // gRPC server drains its calls: cancel long work here, so that a Scale in
  // flight returns (with its operations recorded) instead of holding the
  // server, and the process, past the host's patience.
  std::function<void()> on_stop;
};

// Returns the process exit status: 0 after a clean stop, 1 when the cookie
// is wrong (after printing the three lines) or serving could not start.
int RunPluginProcess(TargetBackend& backend, const PluginProcessOptions& options = {},
                     const GetEnv& env = ProcessEnv);

}  // namespace mps::plugin
