#pragma once
#include <optional>
#include <string>

namespace mps::sim {

// The Nomad client node_class that cloud-init user-data configures, so the
// simulated world can let a launched VM join as a node of that class.
//
// Accepted form: a line `node_class = "web"` (spaces optional, double or
// single quotes) anywhere in the user-data, typically inside the Nomad client
// HCL that a `write_files` entry writes, e.g.
//
//   write_files:
//     - path: /etc/nomad.d/client.hcl
//       content: |
//         client {
//           enabled    = true
//           node_class = "web"
//         }
//
// A JSON config line `"node_class": "web"` is accepted too. Lines whose first
// non-blank character is `#` are comments. The first match wins; nullopt when
// there is none (the node then joins with an empty class).
std::optional<std::string> NodeClassFromCloudInit(const std::string& user_data);

}  // namespace mps::sim
