#include "bus/transport.h"

#include <stdexcept>

#include "bus/keys.h"

namespace mps::bus {

Transport TransportOf(const std::string& endpoint) {
  if (endpoint.rfind("inproc://", 0) == 0) return Transport::kInproc;
  if (endpoint.rfind("ipc://", 0) == 0) return Transport::kIpc;
  if (endpoint.rfind("tcp://", 0) == 0) return Transport::kTcp;
  throw std::invalid_argument("bus endpoint '" + endpoint +
                              "' must start with inproc://, ipc:// or tcp://");
}

std::string EventsEndpointFor(const std::string& endpoint) {
  if (TransportOf(endpoint) != Transport::kTcp) return endpoint + ".events";
  auto colon = endpoint.rfind(':');
  std::string port = endpoint.substr(colon + 1);
  if (colon == std::string::npos || port.empty() || port == "*" ||
      port.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("bus endpoint '" + endpoint +
                                "' needs an explicit port to derive its events endpoint");
  int p = std::stoi(port);
  if (p <= 0 || p >= 65535)
    throw std::invalid_argument("bus endpoint '" + endpoint + "' has an invalid port");
  return endpoint.substr(0, colon + 1) + std::to_string(p + 1);
}

void ApplySocketOptions(zmq::socket_t& s, const SocketLimits& limits) {
  s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(limits.max_message_bytes) * 4 + 4096);
  s.set(zmq::sockopt::sndhwm, limits.send_hwm);
  s.set(zmq::sockopt::rcvhwm, limits.recv_hwm);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::reconnect_ivl, 100);
  s.set(zmq::sockopt::reconnect_ivl_max, 2000);
}

void ApplyCurveServer(zmq::socket_t& s, const CurveServerConfig& curve,
                      const std::string& zap_domain) {
  s.set(zmq::sockopt::curve_server, true);
  s.set(zmq::sockopt::curve_secretkey, curve.secret_z85);
  s.set(zmq::sockopt::curve_publickey, PublicKeyFromSecret(curve.secret_z85));
  s.set(zmq::sockopt::zap_domain, zap_domain);
}

void ApplyCurveClient(zmq::socket_t& s, const CurveClientConfig& curve) {
  s.set(zmq::sockopt::curve_serverkey, curve.server_public_z85);
  s.set(zmq::sockopt::curve_secretkey, curve.secret_z85);
  s.set(zmq::sockopt::curve_publickey, PublicKeyFromSecret(curve.secret_z85));
}

}  // namespace mps::bus
