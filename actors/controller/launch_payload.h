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

// A launch that cannot be asked for; the message names the policy key.
class LaunchPayloadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

contracts::multipass::LaunchRequest LaunchRequestFor(const scaling::LaunchAction& launch,
                                                     std::chrono::nanoseconds startup_timeout);

}  // namespace mps::controller
