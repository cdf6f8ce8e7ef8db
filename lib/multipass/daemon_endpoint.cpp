#include "multipass/daemon_endpoint.h"

#include <algorithm>
#include <cctype>

#include "multipass/multipass_error.h"

namespace mps::multipass {
namespace {

[[noreturn]] void Reject(std::string_view text, std::string_view why) {
  throw MultipassError(MultipassError::Kind::invalid_config,
                       "multipass address '" + std::string(text) + "': " + std::string(why) +
                           " (expected unix:/path, unix:///path, /absolute/path or host:port)");
}

DaemonEndpoint UnixEndpoint(std::string_view text, std::string_view path) {
  if (path.empty() || path.front() != '/') Reject(text, "the socket path must be absolute");
  DaemonEndpoint e;
  e.address = std::string(text);
  e.is_unix = true;
  e.socket_path = std::string(path);
  e.grpc_target = "unix:" + e.socket_path;
  return e;
}

}  // namespace

DaemonEndpoint DaemonEndpoint::Parse(std::string_view text) {
  if (text.empty()) text = kDefaultDaemonAddress;
  if (text.starts_with("unix://")) return UnixEndpoint(text, text.substr(7));
  if (text.starts_with("unix:")) return UnixEndpoint(text, text.substr(5));
  if (text.front() == '/') return UnixEndpoint(text, text);
  if (text.find("://") != std::string_view::npos) Reject(text, "unsupported scheme");

  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) Reject(text, "missing port");
  std::string_view host = text.substr(0, colon);
  const std::string_view port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    Reject(text, "an IPv6 host must be in brackets");
  }
  if (host.empty()) Reject(text, "missing host");
  if (std::any_of(host.begin(), host.end(),
                  [](unsigned char c) { return std::isspace(c) || c == '/'; }))
    Reject(text, "invalid host");
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }))
    Reject(text, "the port must be a number 1-65535");
  const int port_number = std::stoi(std::string(port));
  if (port_number < 1 || port_number > 65535) Reject(text, "the port must be a number 1-65535");

  DaemonEndpoint e;
  e.address = std::string(text);
  e.host = std::string(host);
  e.port = port_number;
  e.grpc_target = std::string(text);
  return e;
}

}  // namespace mps::multipass
