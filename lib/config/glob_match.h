#pragma once
// Nomad's glob for namespace rules in ACL policies (`namespace "prod-*"`):
// '*' matches any run of characters, everything else itself. One rule for
// the plugin's ACL check and the simulated Nomad that enforces it.
#include <string_view>

namespace mps::config {

bool GlobMatch(std::string_view pattern, std::string_view name);

}  // namespace mps::config
