#include "controller/launch_payload.h"

#include <algorithm>

#include "scaling/cloud_init_file.h"

namespace mps::controller {

contracts::multipass::LaunchRequest LaunchRequestFor(const scaling::LaunchAction& launch,
                                                     std::chrono::nanoseconds startup_timeout) {
  contracts::multipass::LaunchRequest request;
  request.name = launch.name;
  request.image = launch.image;
  request.cpus = launch.cpus;
  request.memory = launch.memory;
  request.disk = launch.disk;
  if (!launch.cloud_init_path.empty()) {
    try {
      request.cloud_init = scaling::ReadCloudInitFile(launch.cloud_init_path);
    } catch (const scaling::CloudInitError& e) {
      throw LaunchPayloadError(e.what());
    }
  }
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(startup_timeout).count();
  request.timeout_s = static_cast<int>(std::clamp<std::int64_t>(seconds, 1, 1'000'000));
  return request;
}

}  // namespace mps::controller
