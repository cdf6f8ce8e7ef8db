#pragma once
// Creates and binds the server side of a bus endpoint (ROUTER for requests,
// XPUB for events) with the bus socket options and, when given, Curve with
// its own ZAP domain. tcp:// without Curve is refused.
#include <chrono>
#include <optional>
#include <string>

#include "bus/context.h"
#include "bus/transport.h"

namespace mps::bus {

struct BoundSocket {
  zmq::socket_t socket;
  std::string endpoint;    // resolved (tcp port filled in)
  std::string zap_domain;  // empty without Curve; revoke it on close
};

// A connection must complete its (Curve) handshake within this; a silent
// peer is pinged every kServerHeartbeat and dropped after three missed.
inline constexpr std::chrono::milliseconds kServerHandshake{5000};
inline constexpr std::chrono::milliseconds kServerHeartbeat{10000};

// Throws BusError (kRefused for tcp without Curve, kUnreachable when the bind fails).
BoundSocket BindServerSocket(BusContext& context, zmq::socket_type type,
                             const std::string& endpoint, const std::string& name,
                             const std::optional<CurveServerConfig>& curve,
                             const SocketLimits& limits);

}  // namespace mps::bus
