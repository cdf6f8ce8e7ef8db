#pragma once
// The multipass.launch request of a planned launch: the pool's launch
// parameters, the cloud-init user data read from its file, and the daemon's
// own timeout.
#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "contracts/multipass.h"
#include "scaling/scale_planner.h"

namespace mps::controller {

// The most cloud-init user data a launch carries: it travels in one bus
// frame (1 MiB) with the rest of the request.
inline constexpr std::uintmax_t kMaxCloudInitBytes = 512 * 1024;

// A launch that cannot be asked for; the message names the policy key.
class LaunchPayloadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

contracts::multipass::LaunchRequest LaunchRequestFor(const scaling::LaunchAction& launch,
                                                     std::chrono::nanoseconds startup_timeout);

}  // namespace mps::controller
