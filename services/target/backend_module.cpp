// The entry point of multipass-target-backend.so (backend_module.h).
#include "target/backend_module.h"

#include <cstdlib>
#include <exception>
#include <string_view>

#include "target/bus_backend.h"

extern "C" __attribute__((visibility("default"))) mps::target::StoppableBackend*
mps_target_backend_create_v1(std::string* error) noexcept {
  try {
    mps::target::BackendOptions options;
    // Benchmark only (bench/daemon_load_bench): the watcher's listing as it
    // was before issue 12, with addresses, to measure what that cost
    // multipassd.
    if (const char* v = std::getenv("MPS_BENCH_WATCHER_LIST_ADDRESSES");
        v && std::string_view(v) == "1")
      options.watcher.list_addresses = true;
    return new mps::target::BusTargetBackend(options);
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return nullptr;
  }
}
