#pragma once
// Request/reply client on a DEALER socket, owned by the client's I/O thread.
// Every request has a deadline. Only requests with an idempotency key are
// retried (bounded), since the server runs those at most once.
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "bus/context.h"
#include "bus/envelope.h"
#include "bus/transport.h"
#include "bus/wake_queue.h"
#include "metrics/registry.h"

namespace mps::bus {

struct ClientOptions {
  std::string endpoint;  // connect address; tcp:// requires `curve`
  std::string name = "client";
  std::optional<CurveClientConfig> curve;
  SocketLimits limits;
  int max_attempts = 3;  // for idempotent requests
  // Counts calls by type and outcome (mps_bus_client_requests_total) and
  // watches the connection (mps_bus_link_up, mps_bus_reconnects_total);
  // null: not counted.
  std::shared_ptr<metrics::Registry> metrics;
  // A connection lost (or never made) for this long fails the calls waiting
  // on it instead of leaving them to their deadlines, which for a launch are
  // many minutes: a sent call with kTimeout (its outcome is unknown), an
  // unsent one with kUnreachable. A server back within it gets idempotent
  // calls again at once. Zero: calls wait for their deadlines. Not for
  // inproc://, whose peer cannot go away under us.
  std::chrono::milliseconds lost_link_grace{10000};
  // ZMTP heartbeats, so that a server that vanished without closing the
  // connection (a host powered off, a partition) counts as lost too: a ping
  // every `heartbeat_interval`, lost after `heartbeat_timeout` of silence.
  // Zero interval: no heartbeats.
  std::chrono::milliseconds heartbeat_interval{2000};
  std::chrono::milliseconds heartbeat_timeout{10000};
};

struct CallOptions {
  std::chrono::milliseconds timeout{5000};
  std::string idempotency_key;  // set for requests that change the world
};

// The outcome of one call: either `error` or the reply envelope.
struct CallResult {
  std::optional<BusError> error;
  Envelope reply;
};

class BusClient {
 public:
  using Callback = std::function<void(CallResult)>;

  BusClient(BusContext& context, ClientOptions options);
  ~BusClient();  // pending calls complete with kShuttingDown
  // Stops the I/O thread now: pending and later calls complete with
  // kShuttingDown, so threads blocked in CallSync return. Idempotent.
  void Shutdown();
  BusClient(const BusClient&) = delete;
  BusClient& operator=(const BusClient&) = delete;

  // Thread-safe. `done` runs exactly once, on the client's I/O thread: keep it short.
  void Call(std::string type, nlohmann::json payload, CallOptions options, Callback done);
  // Blocking form: the reply payload, or throws BusError.
  nlohmann::json CallSync(std::string type, nlohmann::json payload, CallOptions options = {});

  const std::string& endpoint() const { return options_.endpoint; }
  std::uint64_t late_replies() const { return late_replies_.load(); }

 private:
  struct Pending {
    Envelope request;
    std::string frame;
    Callback done;
    std::chrono::steady_clock::time_point deadline;
    std::chrono::steady_clock::time_point next_attempt;
    int attempts = 0;
    bool sent = false;
  };
  struct NewCall {
    Envelope request;
    Callback done;
    std::chrono::milliseconds timeout;
  };
  void Loop(std::promise<std::string>& connected);
  CallResult ShuttingDown() const;  // the answer of a call the client can no longer make
  void TrySend(Pending& p, std::chrono::steady_clock::time_point now);
  void OnReply(const zmq::message_t& body);
  // Fails the calls past their deadline; with `lost_for`, every call (the
  // connection has been gone that long, beyond lost_link_grace).
  void Expire(std::chrono::steady_clock::time_point now,
              std::optional<std::chrono::milliseconds> lost_for = std::nullopt);

  BusContext& context_;
  ClientOptions options_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex closed_mutex_;
  bool closed_ = false;  // the I/O thread is gone; calls fail at once
  std::atomic<bool> refused_{false};
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<std::uint64_t> late_replies_{0};
  WakeQueue<NewCall> calls_;
  std::map<std::uint64_t, Pending> pending_;  // I/O thread only
  zmq::socket_t* socket_ptr_ = nullptr;       // I/O thread only
  // Call counters by type and outcome, found once per pair (with options_.metrics).
  struct Meter {
    std::shared_ptr<metrics::Registry> registry;
    metrics::MetricCache<prometheus::Counter> counters;
  };
  std::shared_ptr<Meter> meter_;
};

}  // namespace mps::bus
