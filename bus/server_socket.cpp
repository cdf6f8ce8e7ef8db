#include "bus/server_socket.h"

#include <atomic>

#include "bus/error.h"

namespace mps::bus {

BoundSocket BindServerSocket(BusContext& context, zmq::socket_type type,
                             const std::string& endpoint, const std::string& name,
                             const std::optional<CurveServerConfig>& curve,
                             const SocketLimits& limits) {
  if (TransportOf(endpoint) == Transport::kTcp && !curve)
    throw BusError(ErrorCode::kRefused, "refusing to bind " + endpoint +
                                            " without a Curve key: every tcp endpoint is encrypted "
                                            "and admits only listed client keys");
  BoundSocket bound{zmq::socket_t(context.zmq(), type), {}, {}};
  ApplySocketOptions(bound.socket, limits);
  // Per-connection state is bounded in time as well as by the message size:
  // a peer that connects and never completes its handshake is dropped after
  // kServerHandshake (not ZeroMQ's default 30 s), and one that goes silent
  // (host gone, no FIN) is dropped when it misses its heartbeats.
  bound.socket.set(zmq::sockopt::handshake_ivl, static_cast<int>(kServerHandshake.count()));
  bound.socket.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(kServerHeartbeat.count()));
  bound.socket.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(3 * kServerHeartbeat.count()));
  if (curve) {
    static std::atomic<int> counter{0};
    bound.zap_domain = name + "#" + std::to_string(counter++);
    context.AuthorizeKeys(bound.zap_domain, curve->authorized_public_z85);
    ApplyCurveServer(bound.socket, *curve, bound.zap_domain);
  }
  try {
    bound.socket.bind(endpoint);
  } catch (const zmq::error_t& e) {
    if (!bound.zap_domain.empty()) context.RevokeDomain(bound.zap_domain);
    throw BusError(ErrorCode::kUnreachable, "cannot bind " + endpoint + ": " + e.what());
  }
  bound.endpoint = bound.socket.get(zmq::sockopt::last_endpoint);
  return bound;
}

}  // namespace mps::bus
