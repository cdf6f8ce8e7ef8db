#pragma once
// The commands of mpscale that talk to an endpoint. Each returns the process
// exit code: 0 ok, 1 runtime failure (message on stderr), 2 usage/config error.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mpscale/endpoint_access.h"

namespace mps::mpscale {

struct EndpointFlags {
  std::string address;
  CurveKeyFlags keys;
  int timeout_s = 5;
};

// Each host's capacity, allocation, headroom and health (host.capacity),
// asked of every host at once: the hosts of `hosts_file` (each with its own
// server key) or `addresses` (all with flags.keys). Exit 1 when a host did
// not answer (its row and stderr say why), 2 for bad flags or a bad file.
int RunHosts(const std::vector<std::string>& addresses,
             const std::optional<std::string>& hosts_file, const EndpointFlags& flags, bool json);
int RunInstances(const EndpointFlags& hostd, const std::string& prefix, bool json);
int RunStatus(const EndpointFlags& target, const std::optional<std::string>& pool, bool json);
// Without `follow`: the retained events after `since` (default 0 = all), then exit.
// With `follow`: those after `since` (default: none), then live ones until SIGINT/SIGTERM.
int RunEvents(const EndpointFlags& target, std::optional<std::uint64_t> since, bool follow,
              const std::optional<std::string>& pool, bool json);

}  // namespace mps::mpscale
