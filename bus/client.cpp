#include "bus/client.h"

#include <utility>

#include <spdlog/spdlog.h>

#include <zmq_addon.hpp>

namespace mps::bus {
namespace {

// Learns from the socket's monitor that the server refused our key: the
// rejected client gets no error on send, its messages just wait forever.
// It also knows whether the link is up: once the ZMTP handshake succeeded
// (with any mechanism: a connection whose peer never completes it, such as a
// frozen process whose socket still accepts, is not up), down when
// disconnected; with metrics it keeps mps_bus_link_up.
class AuthMonitor : public zmq::monitor_t {
 public:
  AuthMonitor(std::atomic<bool>& refused, const ClientOptions& options)
      : refused_(refused), options_(options), down_since_(std::chrono::steady_clock::now()) {}
  void on_event_handshake_failed_auth(const zmq_event_t&, const char*) override { refused_ = true; }
  void on_event_handshake_succeeded(const zmq_event_t&, const char*) override {
    refused_ = false;
    Up(true);
  }
  void on_event_disconnected(const zmq_event_t&, const char*) override { Up(false); }

  // True once after each connection that followed a loss.
  bool TakeReconnected() { return std::exchange(reconnected_, false); }
  // Since when there is no connection (since the start until the first);
  // empty while connected.
  std::optional<std::chrono::steady_clock::time_point> down_since() const { return down_since_; }

 private:
  void Up(bool up) {
    if (up)
      down_since_.reset();
    else if (!down_since_)
      down_since_ = std::chrono::steady_clock::now();
    bool again = up && ever_up_;
    if (up && lost_) reconnected_ = true;
    if (!up && ever_up_) lost_ = true;
    if (up) {
      lost_ = false;
      ever_up_ = true;
    }
    auto* m = options_.metrics.get();
    if (!m) return;
    metrics::Labels link{{"client", options_.name}, {"endpoint", options_.endpoint}};
    m->Gauge("mps_bus_link_up", "1 while the bus client is connected to its server", link)
        .Set(up ? 1 : 0);
    if (again)
      m->Counter("mps_bus_reconnects_total", "Times the bus client connected again after a loss",
                 link)
          .Increment();
  }
  std::atomic<bool>& refused_;
  const ClientOptions& options_;
  bool ever_up_ = false;
  bool lost_ = false;
  bool reconnected_ = false;
  std::optional<std::chrono::steady_clock::time_point> down_since_;
};

}  // namespace

BusClient::BusClient(BusContext& context, ClientOptions options)
    : context_(context), options_(std::move(options)) {
  if (options_.metrics) {
    meter_ = std::make_shared<Meter>();
    meter_->registry = options_.metrics;
  }
  if (TransportOf(options_.endpoint) == Transport::kTcp && !options_.curve)
    throw BusError(ErrorCode::kRefused,
                   "refusing to connect to " + options_.endpoint +
                       " without Curve keys: tcp endpoints are always encrypted");
  // The socket connects on its own thread; a malformed endpoint (tcp://h:*)
  // is reported here, to the caller, instead of escaping that thread.
  std::promise<std::string> connected;
  auto result = connected.get_future();
  thread_ = std::thread([this, &connected] { Loop(connected); });
  if (std::string error = result.get(); !error.empty()) {
    thread_.join();
    throw BusError(ErrorCode::kUnreachable,
                   "cannot connect to bus endpoint '" + options_.endpoint + "': " + error);
  }
}

BusClient::~BusClient() {
  Shutdown();
}

void BusClient::Shutdown() {
  stopping_ = true;
  calls_.Wake();
  if (thread_.joinable()) thread_.join();
}

void BusClient::Call(std::string type, nlohmann::json payload, CallOptions options, Callback done) {
  Envelope e;
  e.type = std::move(type);
  e.correlation_id = next_id_++;
  e.sender = options_.name;
  e.deadline_ms = NowUnixMs() + options.timeout.count();
  e.idempotency_key = std::move(options.idempotency_key);
  e.payload = std::move(payload);
  if (meter_) {
    done = [meter = meter_, client = options_.name, type = e.type,
            done = std::move(done)](CallResult r) {
      std::string outcome = r.error ? std::string(ErrorCodeName(r.error->code())) : "ok";
      meter->counters
          .Get(type + '\n' + outcome,
               [&]() -> prometheus::Counter& {
                 return meter->registry->Counter(
                     "mps_bus_client_requests_total",
                     "Bus calls this process made, by type and outcome",
                     {{"client", client}, {"type", type}, {"outcome", outcome}});
               })
          .Increment();
      done(std::move(r));
    };
  }
  std::unique_lock lock(closed_mutex_);
  if (closed_) {
    lock.unlock();
    done(ShuttingDown());
    return;
  }
  calls_.Push({std::move(e), std::move(done), options.timeout});
}

nlohmann::json BusClient::CallSync(std::string type, nlohmann::json payload, CallOptions options) {
  std::promise<CallResult> promise;
  auto future = promise.get_future();
  Call(std::move(type), std::move(payload), options,
       [&promise](CallResult r) { promise.set_value(std::move(r)); });
  CallResult r = future.get();
  if (r.error) throw *r.error;
  return std::move(r.reply.payload);
}

void BusClient::Loop(std::promise<std::string>& connected) {
  zmq::socket_t socket(context_.zmq(), zmq::socket_type::dealer);
  ApplySocketOptions(socket, options_.limits);
  // Queue only on completed connections, so a send with no server (or a
  // refused key) fails now instead of waiting unseen in a pipe.
  socket.set(zmq::sockopt::immediate, true);
  std::optional<AuthMonitor> monitor;
  if (options_.curve) ApplyCurveClient(socket, *options_.curve);
  const bool inproc = TransportOf(options_.endpoint) == Transport::kInproc;
  if (!inproc && options_.heartbeat_interval.count() > 0) {
    socket.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(options_.heartbeat_interval.count()));
    socket.set(zmq::sockopt::heartbeat_timeout,
               static_cast<int>(options_.heartbeat_timeout.count()));
  }
  // Only a peer behind a real connection can be lost (see lost_link_grace).
  const bool watch_link = !inproc && options_.lost_link_grace.count() > 0;
  // The monitor also tells when the server came back after a loss (inproc
  // has no connection events: its peer cannot restart under us).
  if (options_.curve || options_.metrics || !inproc) {
    monitor.emplace(refused_, options_);
    static std::atomic<int> counter{0};
    int events =
        ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED;
    monitor->init(socket, "inproc://bus-client-monitor-" + std::to_string(counter++), events);
    if (options_.metrics)
      options_.metrics
          ->Gauge("mps_bus_link_up", "1 while the bus client is connected to its server",
                  {{"client", options_.name}, {"endpoint", options_.endpoint}})
          .Set(0);
  }
  try {
    socket.connect(options_.endpoint);
  } catch (const zmq::error_t& e) {
    {
      std::lock_guard lock(closed_mutex_);
      closed_ = true;
    }
    connected.set_value(e.what());
    return;
  }
  connected.set_value("");
  this->socket_ptr_ = &socket;
  // inproc:// has no connection events: connected to a bound peer is up.
  if (options_.metrics && inproc)
    options_.metrics
        ->Gauge("mps_bus_link_up", "1 while the bus client is connected to its server",
                {{"client", options_.name}, {"endpoint", options_.endpoint}})
        .Set(1);

  zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, calls_.fd(), ZMQ_POLLIN, 0}};
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    // Sleep until the next retry or deadline, or briefly while sends wait for a connection.
    auto wait = std::chrono::milliseconds(1000);
    for (const auto& [id, p] : pending_) {
      auto until = std::min(p.deadline, p.next_attempt);
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - now) +
                std::chrono::milliseconds(1);
      if (!p.sent) ms = std::min(ms, std::chrono::milliseconds(5));
      wait = std::min(wait, std::max(ms, std::chrono::milliseconds(0)));
    }
    if (watch_link && !pending_.empty() && monitor->down_since()) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    *monitor->down_since() + options_.lost_link_grace - now) +
                std::chrono::milliseconds(1);
      wait = std::min(wait, std::max(ms, std::chrono::milliseconds(0)));
    }
    try {
      zmq::poll(items, 2, wait);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      break;
    }
    if (monitor)
      while (monitor->check_event(0)) {
      }
    now = std::chrono::steady_clock::now();
    // A request sent before the connection was lost is lost with it (the
    // server restarted): idempotent ones go again now, not at their next
    // scheduled attempt, which may be minutes away for a launch.
    if (monitor && monitor->TakeReconnected()) {
      for (auto& [id, p] : pending_) {
        if (!p.sent || p.request.idempotency_key.empty()) continue;
        p.attempts = std::min(p.attempts, options_.max_attempts - 1);
        p.next_attempt = now;
      }
    }
    if (items[1].revents & ZMQ_POLLIN) {
      for (auto& c : calls_.Drain()) {
        Pending p;
        p.frame = Encode(c.request);
        p.request = std::move(c.request);
        p.done = std::move(c.done);
        p.deadline = now + c.timeout;
        p.next_attempt = now;
        auto id = p.request.correlation_id;
        auto [it, ok] = pending_.emplace(id, std::move(p));
        TrySend(it->second, now);
      }
    }
    while (items[0].revents & ZMQ_POLLIN) {
      zmq::message_t body;
      if (!socket.recv(body, zmq::recv_flags::dontwait)) break;
      while (body.more()) {  // a well-formed reply is one frame; drain anything else
        zmq::message_t extra;
        (void)socket.recv(extra, zmq::recv_flags::none);
        if (!extra.more()) break;
      }
      OnReply(body);
    }
    now = std::chrono::steady_clock::now();
    for (auto& [id, p] : pending_)
      if (now >= p.next_attempt) TrySend(p, now);
    std::optional<std::chrono::milliseconds> lost_for;
    if (watch_link && monitor->down_since()) {
      auto down =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - *monitor->down_since());
      if (down >= options_.lost_link_grace) lost_for = down;
    }
    Expire(now, lost_for);
  }
  for (auto& [id, p] : pending_) p.done(ShuttingDown());
  pending_.clear();
  {
    std::lock_guard lock(closed_mutex_);
    closed_ = true;
  }
  for (auto& c : calls_.Drain()) c.done(ShuttingDown());  // queued after the loop's last look
  this->socket_ptr_ = nullptr;
}

CallResult BusClient::ShuttingDown() const {
  CallResult r;
  r.error = BusError(ErrorCode::kShuttingDown,
                     "bus client for " + options_.endpoint + " is shutting down");
  return r;
}

void BusClient::TrySend(Pending& p, std::chrono::steady_clock::time_point now) {
  bool retry_allowed = !p.request.idempotency_key.empty() && p.attempts < options_.max_attempts;
  if (p.sent && !retry_allowed) {
    p.next_attempt = p.deadline;
    return;
  }
  auto ok = socket_ptr_->send(zmq::buffer(p.frame), zmq::send_flags::dontwait);
  if (!ok) {
    p.next_attempt = now + std::chrono::milliseconds(5);  // no connection yet: try again soon
    return;
  }
  ++p.attempts;
  p.sent = true;
  if (!p.request.idempotency_key.empty() && p.attempts < options_.max_attempts) {
    // Spread the attempts over the time left.
    auto left = p.deadline - now;
    p.next_attempt = now + left / (options_.max_attempts - p.attempts + 1);
  } else {
    p.next_attempt = p.deadline;
  }
}

void BusClient::OnReply(const zmq::message_t& body) {
  Envelope reply;
  DecodeLimits limits;
  limits.max_frame_bytes = options_.limits.max_message_bytes;
  std::uint64_t id = 0;
  std::optional<BusError> error;
  try {
    reply = Decode(std::string_view(static_cast<const char*>(body.data()), body.size()), limits);
    id = reply.correlation_id;
  } catch (const DecodeError& e) {
    id = e.correlation_id();
    error = BusError(e.code(), "undecodable reply from " + options_.endpoint + ": " + e.what());
  }
  auto it = pending_.find(id);
  if (it == pending_.end()) {
    ++late_replies_;  // answered after its deadline, or a retry's second answer
    return;
  }
  CallResult r;
  if (error) {
    r.error = std::move(error);
  } else if (reply.type == kErrorType) {
    try {
      ThrowErrorReply(reply);
    } catch (const BusError& e) {
      r.error = e;
    }
  } else {
    r.reply = std::move(reply);
  }
  auto done = std::move(it->second.done);
  pending_.erase(it);
  done(std::move(r));
}

void BusClient::Expire(std::chrono::steady_clock::time_point now,
                       std::optional<std::chrono::milliseconds> lost_for) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now < it->second.deadline && !lost_for) {
      ++it;
      continue;
    }
    CallResult r;
    const auto& p = it->second;
    auto seconds = [](std::chrono::milliseconds d) {
      return std::to_string(d.count() / 1000) + "." + std::to_string(d.count() % 1000 / 100) + " s";
    };
    if (refused_) {
      r.error =
          BusError(ErrorCode::kRefused, options_.endpoint +
                                            " refused our Curve key (it is not in the server's "
                                            "authorized keys)");
    } else if (lost_for && !p.sent) {
      r.error = BusError(ErrorCode::kUnreachable, "no connection to " + options_.endpoint +
                                                      " for " + seconds(*lost_for) + "; '" +
                                                      p.request.type + "' was not sent");
    } else if (lost_for) {
      r.error = BusError(ErrorCode::kTimeout, "the connection to " + options_.endpoint +
                                                  " was lost with '" + p.request.type +
                                                  "' in flight and has been down for " +
                                                  seconds(*lost_for) + ": its outcome is unknown");
    } else if (!p.sent) {
      r.error =
          BusError(ErrorCode::kUnreachable, "no connection to " + options_.endpoint +
                                                " within the deadline of '" + p.request.type + "'");
    } else {
      r.error = BusError(ErrorCode::kTimeout, "'" + p.request.type + "' to " + options_.endpoint +
                                                  " got no answer within its deadline (" +
                                                  std::to_string(p.attempts) + " attempt(s))");
    }
    auto done = std::move(it->second.done);
    it = pending_.erase(it);
    done(std::move(r));
  }
}

}  // namespace mps::bus
