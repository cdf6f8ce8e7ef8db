#pragma once
// Endpoint rules and socket options shared by every bus socket.
#include <chrono>
#include <optional>
#include <set>
#include <string>

#include <zmq.hpp>

namespace mps::bus {

// Curve settings of a server socket: its secret key and the clients it admits.
struct CurveServerConfig {
  std::string secret_z85;
  std::set<std::string> authorized_public_z85;
};

// Curve settings of a client socket: its own secret key and the server's public key.
struct CurveClientConfig {
  std::string secret_z85;
  std::string server_public_z85;
};

struct SocketLimits {
  std::size_t max_message_bytes = 1 << 20;  // our limit, answered with a too_large error
  int send_hwm = 10000;
  int recv_hwm = 10000;
};

enum class Transport { kInproc, kIpc, kTcp };

// Throws std::invalid_argument naming the endpoint when its scheme is not
// inproc://, ipc:// or tcp://.
Transport TransportOf(const std::string& endpoint);

// The event endpoint paired with a request endpoint: tcp port + 1, or the
// ipc/inproc name with ".events" appended.
std::string EventsEndpointFor(const std::string& request_endpoint);

// Options set on purpose on every socket: a hard ZMQ_MAXMSGSIZE (a multiple of
// our limit, so an oversized message still reaches the decoder and is answered,
// while a hostile one cannot exhaust memory), high-water marks, no linger on
// shutdown, bounded reconnect back-off.
void ApplySocketOptions(zmq::socket_t& socket, const SocketLimits& limits);

void ApplyCurveServer(zmq::socket_t& socket, const CurveServerConfig& curve,
                      const std::string& zap_domain);
void ApplyCurveClient(zmq::socket_t& socket, const CurveClientConfig& curve);

}  // namespace mps::bus
