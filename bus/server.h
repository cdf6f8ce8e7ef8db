#pragma once
// Request/reply server on a ROUTER socket. The socket lives on the server's
// own I/O thread; handlers answer through a Responder from any thread.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "bus/context.h"
#include "bus/envelope.h"
#include "bus/rejection_log.h"
#include "bus/transport.h"
#include "bus/wake_queue.h"
#include "metrics/registry.h"

namespace mps::bus {

struct ServerOptions {
  std::string endpoint;  // bind address; tcp:// requires `curve`
  std::string name = "server";
  std::optional<CurveServerConfig> curve;
  SocketLimits limits;
  std::size_t idempotency_capacity = 4096;
  std::chrono::milliseconds idempotency_ttl = std::chrono::minutes(10);
  // Error replies whose app_code is one of these say nothing was done and a
  // retry may fare better (the peer behind the handler was unreachable, timed
  // out, the call was cancelled): they are not kept for repeats of their
  // idempotency key, so a repeat runs the request again. Bus-level errors that
  // mean the handler never ran or never finished (unreachable, timeout,
  // deadline expired, shutting down) are never kept either.
  std::set<std::string> retry_app_codes;
  // Counts requests by type and outcome, their handling time and rejections
  // (mps_bus_requests_total, mps_bus_request_duration_seconds,
  // mps_bus_rejected_requests_total); null: not counted.
  std::shared_ptr<metrics::Registry> metrics;
  // Called on the I/O thread at least every `tick` (e.g. a systemd watchdog
  // kick: it proves the loop is turning).
  std::function<void()> on_tick;
  std::chrono::milliseconds tick{1000};
};

struct Request {
  Envelope envelope;
  std::string peer_key;  // the client's Curve public key (z85); empty without Curve
};

class BusServer;
struct ReplySlot;

// Answers one request, once. Copyable; thread-safe. If every copy is dropped
// without an answer the client gets a handler_failed error, never silence.
class Responder {
 public:
  void Reply(nlohmann::json payload) const;
  void Fail(const BusError& error) const;
  // Remaining time before the request's deadline (zero or negative: expired).
  std::chrono::milliseconds remaining() const;

 private:
  friend class BusServer;
  std::shared_ptr<ReplySlot> slot_;
};

using Handler = std::function<void(const Request&, Responder)>;

struct ServerStats {
  std::uint64_t requests = 0;
  std::uint64_t executed = 0;
  std::uint64_t idempotent_replays = 0;
  std::uint64_t expired = 0;
  std::map<std::string, std::uint64_t> rejected;  // by kind
};

class BusServer {
 public:
  BusServer(BusContext& context, ServerOptions options);
  ~BusServer();
  BusServer(const BusServer&) = delete;
  BusServer& operator=(const BusServer&) = delete;

  // Register before Start(). A handler runs on the I/O thread: it must not
  // block; long work goes elsewhere and answers through the Responder later.
  void Handle(const std::string& type, Handler handler);
  // Binds and starts the I/O thread. Throws BusError naming the endpoint.
  void Start();
  void Stop();

  std::string endpoint() const;  // resolved (tcp port filled in)
  const std::string& name() const { return options_.name; }
  ServerStats stats() const;

  // A reply on its way from a handler's thread to the I/O thread.
  struct Outgoing {
    std::string routing_id;
    std::uint64_t correlation_id;
    std::string idempotency_key;
    Envelope reply;
  };

 private:
  friend class Responder;
  void Loop();
  void RejectMultiFrame(const std::string& routing_id, const zmq::message_t& first);
  void OnFrame(const std::string& routing_id, const zmq::message_t& body, std::string peer_key);
  // Whether a reply is kept for repeats of its idempotency key (see
  // ServerOptions::retry_app_codes).
  bool KeepForRepeats(const Envelope& reply) const;
  void Send(const std::string& routing_id, Envelope reply);
  void Flush();

  BusContext& context_;
  ServerOptions options_;
  std::map<std::string, Handler> handlers_;
  std::string zap_domain_;
  std::optional<zmq::socket_t> socket_;
  std::string bound_endpoint_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::shared_ptr<WakeQueue<Outgoing>> outgoing_;
  RejectionLog rejections_;
  mutable std::mutex stats_mutex_;
  ServerStats stats_;
  std::unique_ptr<class IdempotencyCache> idempotency_;
  std::shared_ptr<struct ServerMeter> meter_;  // with options_.metrics
};

}  // namespace mps::bus
