#pragma once
// The contract between multipass-target's two halves:
//   - the front, the executable: go-plugin's process contract, the gRPC
//     services and the handshake, with gRPC and protobuf linked in;
//   - the backend module (multipass-target-backend.so): everything SetConfig
//     starts (CAF, the bus, SQLite, the actors, the direct-mode session).
// The front prints the handshake first and loads the module afterwards
// (backend_module_loader.h), so the dynamic loader's work on CAF, ZeroMQ and
// SQLite is not part of the plugin's start-up. The module takes gRPC and
// protobuf from the executable: the process holds one copy of each.
#include <string>

#include "plugin/target_backend.h"

namespace mps::target {

// A TargetBackend that can be told the host wants the process to stop
// (PluginProcessOptions::on_stop): it ends every call in flight, without
// waiting, so the gRPC server can drain at once.
class StoppableBackend : public plugin::TargetBackend {
 public:
  virtual void Stop() = 0;
};

}  // namespace mps::target

// The module's one entry point. The version is in the name: a module from
// another build of the contract is refused by the loader, naming it, instead
// of being called with the wrong layout. Returns null and sets *error when
// the backend cannot be created.
#define MPS_TARGET_BACKEND_FACTORY "mps_target_backend_create_v1"
extern "C" mps::target::StoppableBackend* mps_target_backend_create_v1(std::string* error) noexcept;
