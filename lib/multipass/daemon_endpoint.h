#pragma once

#include <string>
#include <string_view>

namespace mps::multipass {

// The snap's socket: where multipassd listens on a default Linux install.
inline constexpr std::string_view kDefaultDaemonAddress =
    "unix:/var/snap/multipass/common/multipass_socket";

// A parsed multipassd address. Accepted: `unix:/path`, `unix:///path`,
// `/absolute/path` (all unix sockets) and `host:port` / `[v6]:port` (TCP).
struct DaemonEndpoint {
  std::string address;      // as configured, for messages
  std::string grpc_target;  // what grpc::CreateChannel gets
  bool is_unix = false;
  std::string socket_path;  // unix only
  std::string host;         // tcp only, without brackets
  int port = 0;             // tcp only

  // Empty text selects kDefaultDaemonAddress. Throws MultipassError
  // (invalid_config) naming the value and the accepted forms.
  static DaemonEndpoint Parse(std::string_view text);
};

}  // namespace mps::multipass
