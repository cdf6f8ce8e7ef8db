#pragma once
// The commands of mpscale that talk to an endpoint. Each returns the process
// exit code: 0 ok, 1 runtime failure (message on stderr), 2 usage/config error.
#include <cstdint>
#include <optional>
#include <string>

#include "mpscale/endpoint_access.h"

namespace mps::mpscale {

struct EndpointFlags {
  std::string address;
  CurveKeyFlags keys;
  int timeout_s = 5;
};

int RunInstances(const EndpointFlags& hostd, const std::string& prefix, bool json);
int RunStatus(const EndpointFlags& target, const std::optional<std::string>& pool, bool json);
// Without `follow`: the retained events after `since` (default 0 = all), then exit.
// With `follow`: those after `since` (default: none), then live ones until SIGINT/SIGTERM.
int RunEvents(const EndpointFlags& target, std::optional<std::uint64_t> since, bool follow,
              const std::optional<std::string>& pool, bool json);

}  // namespace mps::mpscale
