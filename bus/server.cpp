#include "bus/server.h"

#include <spdlog/spdlog.h>

#include <zmq_addon.hpp>

#include "bus/idempotency_cache.h"
#include "bus/server_socket.h"

namespace mps::bus {

// The server's request counters, cached by type and outcome: the registry
// is searched once per distinct pair, not per request.
struct ServerMeter {
  std::shared_ptr<metrics::Registry> registry;
  std::string server;
  metrics::MetricCache<prometheus::Counter> counters;
  metrics::MetricCache<prometheus::Histogram> durations;

  void Count(const std::string& type, const std::string& outcome, double seconds) {
    counters
        .Get(type + '\n' + outcome,
             [&]() -> prometheus::Counter& {
               return registry->Counter("mps_bus_requests_total",
                                        "Bus requests answered, by type and outcome",
                                        {{"server", server}, {"type", type}, {"outcome", outcome}});
             })
        .Increment();
    durations
        .Get(type,
             [&]() -> prometheus::Histogram& {
               return registry->Histogram(
                   "mps_bus_request_duration_seconds",
                   "Time from a bus request's arrival to its answer, by type",
                   metrics::DurationBuckets(), {{"server", server}, {"type", type}});
             })
        .Observe(seconds);
  }
};

// Shared by every copy of a Responder. The first answer wins; the destructor
// answers for a handler that forgot to.
struct ReplySlot {
  std::weak_ptr<WakeQueue<BusServer::Outgoing>> queue;
  std::string routing_id;
  Envelope request;
  std::string server_name;
  std::atomic<bool> answered{false};
  std::shared_ptr<ServerMeter> metrics;  // null: not counted
  std::chrono::steady_clock::time_point received;

  void Answer(Envelope reply) {
    if (answered.exchange(true)) return;
    if (metrics) Count(reply);
    auto q = queue.lock();
    if (!q) return;  // server gone: nobody left to send it
    q->Push({routing_id, request.correlation_id, request.idempotency_key, std::move(reply)});
  }
  void Count(const Envelope& reply) const {
    std::string outcome = "ok";
    if (reply.type == kErrorType) {
      auto code = reply.payload.find("code");
      outcome =
          code != reply.payload.end() && code->is_string() ? code->get<std::string>() : "error";
    }
    metrics->Count(request.type, outcome,
                   metrics::Seconds(std::chrono::steady_clock::now() - received));
  }
  ~ReplySlot() {
    if (!answered)
      Answer(MakeErrorReply(
          request,
          BusError(ErrorCode::kHandlerFailed,
                   "handler for '" + request.type + "' dropped the request without answering"),
          server_name));
  }
};

void Responder::Reply(nlohmann::json payload) const {
  Envelope r;
  r.type = slot_->request.type + ".reply";
  r.correlation_id = slot_->request.correlation_id;
  r.sender = slot_->server_name;
  r.payload = std::move(payload);
  slot_->Answer(std::move(r));
}

void Responder::Fail(const BusError& error) const {
  slot_->Answer(MakeErrorReply(slot_->request, error, slot_->server_name));
}

std::chrono::milliseconds Responder::remaining() const {
  return std::chrono::milliseconds(slot_->request.deadline_ms - NowUnixMs());
}

BusServer::BusServer(BusContext& context, ServerOptions options)
    : context_(context),
      options_(std::move(options)),
      outgoing_(std::make_shared<WakeQueue<Outgoing>>()),
      rejections_(options_.name, options_.metrics),
      idempotency_(std::make_unique<IdempotencyCache>(options_.idempotency_capacity,
                                                      options_.idempotency_ttl)) {
  if (options_.metrics) {
    meter_ = std::make_shared<ServerMeter>();
    meter_->registry = options_.metrics;
    meter_->server = options_.name;
  }
}

BusServer::~BusServer() {
  Stop();
}

void BusServer::Handle(const std::string& type, Handler handler) {
  if (thread_.joinable()) throw std::logic_error("BusServer::Handle after Start");
  handlers_[type] = std::move(handler);
}

void BusServer::Start() {
  auto bound = BindServerSocket(context_, zmq::socket_type::router, options_.endpoint,
                                options_.name, options_.curve, options_.limits);
  socket_.emplace(std::move(bound.socket));
  bound_endpoint_ = bound.endpoint;
  zap_domain_ = bound.zap_domain;
  // Report unroutable replies (client gone) as errors instead of silently dropping.
  socket_->set(zmq::sockopt::router_mandatory, true);
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void BusServer::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  outgoing_->Wake();
  thread_.join();
  socket_.reset();
  if (!zap_domain_.empty()) context_.RevokeDomain(zap_domain_);
}

std::string BusServer::endpoint() const {
  return bound_endpoint_;
}

ServerStats BusServer::stats() const {
  std::lock_guard lock(stats_mutex_);
  ServerStats s = stats_;
  s.rejected = rejections_.Snapshot();
  return s;
}

void BusServer::Loop() {
  zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, outgoing_->fd(), ZMQ_POLLIN, 0}};
  auto wait = options_.on_tick ? options_.tick : std::chrono::milliseconds(-1);
  while (!stopping_) {
    if (options_.on_tick) options_.on_tick();
    try {
      zmq::poll(items, 2, wait);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      spdlog::error("bus {}: poll failed: {}", options_.name, e.what());
      break;
    }
    if (items[1].revents & ZMQ_POLLIN) Flush();
    // Read everything that is waiting, then answer what the handlers produced.
    for (int burst = 0; burst < 256 && (items[0].revents & ZMQ_POLLIN); ++burst) {
      zmq::message_t id, body;
      if (!socket_->recv(id, zmq::recv_flags::dontwait)) break;
      if (!id.more()) {
        rejections_.Record("bad_frame", "a message with no body frame");
        continue;
      }
      (void)socket_->recv(body, zmq::recv_flags::none);
      bool extra = body.more();
      std::string peer;
      if (options_.curve) {
        const char* uid = body.gets("User-Id");
        if (uid) peer = uid;
      }
      while (body.more()) {
        zmq::message_t drop;
        (void)socket_->recv(drop, zmq::recv_flags::none);
        if (!drop.more()) break;
      }
      if (extra) {
        RejectMultiFrame(id.to_string(), body);
        continue;
      }
      OnFrame(id.to_string(), body, std::move(peer));
    }
    Flush();
  }
}

// A request is one frame. One that came in several is answered, not
// dropped: the caller learns why instead of waiting for its deadline. The
// first frame is read only for its correlation id (within our limits).
void BusServer::RejectMultiFrame(const std::string& routing_id, const zmq::message_t& first) {
  const std::string why = "a request is one frame; this one came in several";
  rejections_.Record("bad_frame", why);
  Envelope stub;
  DecodeLimits limits;
  limits.max_frame_bytes = options_.limits.max_message_bytes;
  try {
    stub.correlation_id =
        Decode(std::string_view(static_cast<const char*>(first.data()), first.size()), limits)
            .correlation_id;
  } catch (const DecodeError& e) {
    stub.correlation_id = e.correlation_id();
  }
  Send(routing_id, MakeErrorReply(stub, BusError(ErrorCode::kBadFrame, why), options_.name));
}

void BusServer::OnFrame(const std::string& routing_id, const zmq::message_t& body,
                        std::string peer) {
  Envelope request;
  DecodeLimits limits;
  limits.max_frame_bytes = options_.limits.max_message_bytes;
  try {
    request = Decode(std::string_view(static_cast<const char*>(body.data()), body.size()), limits);
  } catch (const DecodeError& e) {
    rejections_.Record(std::string(ErrorCodeName(e.code())), e.what());
    Envelope stub;
    stub.correlation_id = e.correlation_id();
    if (e.code() == ErrorCode::kTooLarge && stub.correlation_id == 0) {
      // Over our limit but under the socket's hard limit: read it once more,
      // only to address the error reply so the caller is not left waiting.
      DecodeLimits hard;
      hard.max_frame_bytes = body.size();
      hard.max_bytes = body.size();
      try {
        stub.correlation_id =
            Decode(std::string_view(static_cast<const char*>(body.data()), body.size()), hard)
                .correlation_id;
      } catch (const DecodeError& again) {
        stub.correlation_id = again.correlation_id();
      }
    }
    Send(routing_id, MakeErrorReply(stub, e, options_.name));
    return;
  }
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.requests;
  }
  if (request.deadline_ms != 0 && request.deadline_ms <= NowUnixMs()) {
    {
      std::lock_guard lock(stats_mutex_);
      ++stats_.expired;
    }
    rejections_.Record("deadline_expired", "'" + request.type + "' arrived after its deadline");
    Send(routing_id, MakeErrorReply(request,
                                    BusError(ErrorCode::kDeadlineExpired,
                                             "'" + request.type + "' arrived " +
                                                 std::to_string(NowUnixMs() - request.deadline_ms) +
                                                 " ms after its deadline; not executed"),
                                    options_.name));
    return;
  }
  auto handler = handlers_.find(request.type);
  if (handler == handlers_.end()) {
    std::string known;
    for (const auto& [t, h] : handlers_) known += (known.empty() ? "" : ", ") + t;
    rejections_.Record("unknown_type", "no handler for '" + request.type + "'");
    Send(routing_id, MakeErrorReply(request,
                                    BusError(ErrorCode::kUnknownType,
                                             "'" + options_.name + "' has no handler for '" +
                                                 request.type + "' (it serves: " + known + ")"),
                                    options_.name));
    return;
  }
  if (!request.idempotency_key.empty()) {
    Envelope cached;
    switch (idempotency_->Begin(request.idempotency_key, {routing_id, request.correlation_id},
                                &cached, IdempotencyCache::Clock::now())) {
      case IdempotencyCache::Lookup::kNew:
        break;
      case IdempotencyCache::Lookup::kInProgress: {
        std::lock_guard lock(stats_mutex_);
        ++stats_.idempotent_replays;
        return;  // answered when the first execution completes
      }
      case IdempotencyCache::Lookup::kTooManyWaiting: {
        const std::string why = "'" + request.type + "' with idempotency key '" +
                                request.idempotency_key +
                                "' is already running and enough repeats of it are waiting "
                                "for its answer; this one was not queued";
        rejections_.Record("idempotency_repeats", why);
        Send(routing_id,
             MakeErrorReply(request, BusError(ErrorCode::kHandlerFailed, why), options_.name));
        return;
      }
      case IdempotencyCache::Lookup::kDone: {
        {
          std::lock_guard lock(stats_mutex_);
          ++stats_.idempotent_replays;
        }
        cached.correlation_id = request.correlation_id;
        Send(routing_id, std::move(cached));
        return;
      }
    }
  }
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.executed;
  }
  auto slot = std::make_shared<ReplySlot>();
  slot->queue = outgoing_;
  slot->routing_id = routing_id;
  slot->server_name = options_.name;
  slot->request = request;
  slot->metrics = meter_;
  slot->received = std::chrono::steady_clock::now();
  Responder responder;
  responder.slot_ = std::move(slot);
  Request req{std::move(request), std::move(peer)};
  try {
    handler->second(req, responder);
  } catch (const BusError& e) {
    responder.Fail(e);
  } catch (const std::exception& e) {
    responder.Fail(BusError(ErrorCode::kHandlerFailed, e.what()));
  }
}

void BusServer::Flush() {
  for (auto& out : outgoing_->Drain()) {
    if (out.idempotency_key.empty()) {
      Send(out.routing_id, std::move(out.reply));
      continue;
    }
    for (const auto& who :
         idempotency_->Complete(out.idempotency_key, out.reply, IdempotencyCache::Clock::now(),
                                KeepForRepeats(out.reply))) {
      Envelope copy = out.reply;
      copy.correlation_id = who.correlation_id;
      Send(who.routing_id, std::move(copy));
    }
  }
}

bool BusServer::KeepForRepeats(const Envelope& reply) const {
  if (reply.type != kErrorType) return true;
  const BusError error = ErrorOfReply(reply);
  switch (error.code()) {
    case ErrorCode::kUnreachable:
    case ErrorCode::kTimeout:
    case ErrorCode::kDeadlineExpired:
    case ErrorCode::kShuttingDown:
      return false;
    default:
      return options_.retry_app_codes.count(error.app_code()) == 0;
  }
}

void BusServer::Send(const std::string& routing_id, Envelope reply) {
  std::string frame = Encode(reply);
  try {
    socket_->send(zmq::buffer(routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    socket_->send(zmq::buffer(frame), zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH: the client went away; its reply has nobody to go to.
    rejections_.Record("reply_undeliverable",
                       std::string("reply to a departed client: ") + e.what());
  }
}

}  // namespace mps::bus
