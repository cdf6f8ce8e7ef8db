#include "bus/events.h"

#include "bus/server_socket.h"

#include <spdlog/spdlog.h>

#include <zmq_addon.hpp>

namespace mps::bus {

EventPublisher::EventPublisher(BusContext& context, PublisherOptions options,
                               std::shared_ptr<EventLog> log)
    : context_(context), options_(std::move(options)), log_(std::move(log)) {}

EventPublisher::~EventPublisher() {
  Stop();
}

void EventPublisher::ServeReplay(BusServer& server) {
  server.Handle(std::string(kReplayType), [this](const Request& req, Responder r) {
    const auto& p = req.envelope.payload;
    auto since = p.find("since");
    if (since == p.end() || !since->is_number_unsigned())
      throw BusError(ErrorCode::kBadPayload,
                     "events.replay: field 'since' must be an unsigned integer");
    std::size_t limit = options_.max_replay_batch;
    if (auto l = p.find("limit"); l != p.end() && l->is_number_unsigned())
      limit = std::min<std::size_t>(limit, l->get<std::size_t>());
    auto events = log_->ReadFrom(since->get<std::uint64_t>(), limit);
    auto frames = nlohmann::json::array();
    for (auto& e : events)
      frames.push_back(
          nlohmann::json::binary(std::vector<std::uint8_t>(e.frame.begin(), e.frame.end())));
    r.Reply({{"stream", log_->stream_id()},
             {"first", log_->first_seq()},
             {"last", log_->last_seq()},
             {"events", std::move(frames)}});
  });
}

void EventPublisher::Start() {
  auto bound = BindServerSocket(context_, zmq::socket_type::xpub, options_.endpoint,
                                options_.name + "-events", options_.curve, options_.limits);
  socket_.emplace(std::move(bound.socket));
  bound_endpoint_ = bound.endpoint;
  zap_domain_ = bound.zap_domain;
  // A durable log continues its numbering after a restart: show where it is.
  metrics::Set(options_.metrics.get(), "mps_event_sequence_number",
               "Sequence number of the last event published", {{"publisher", options_.name}},
               static_cast<double>(log_->last_seq()));
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void EventPublisher::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  queue_.Wake();
  thread_.join();
  socket_.reset();
  if (!zap_domain_.empty()) context_.RevokeDomain(zap_domain_);
}

std::uint64_t EventPublisher::Publish(const std::string& type, nlohmann::json fields) {
  std::lock_guard lock(publish_mutex_);
  std::string frame;
  std::uint64_t seq = log_->Append([&](std::uint64_t s) {
    Envelope e;
    e.type = type;
    e.sender = options_.name;
    e.stream = log_->stream_id();
    e.seq = s;
    e.time_ms = NowUnixMs();
    e.payload = std::move(fields);
    frame = Encode(e);
    return frame;
  });
  queue_.Push({type, std::move(frame)});
  if (auto* m = options_.metrics.get()) {
    m->Counter("mps_events_published_total", "Events published, by type",
               {{"publisher", options_.name}, {"type", type}})
        .Increment();
    m->Gauge("mps_event_sequence_number", "Sequence number of the last event published",
             {{"publisher", options_.name}})
        .Set(static_cast<double>(seq));
  }
  return seq;
}

void EventPublisher::Loop() {
  zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, queue_.fd(), ZMQ_POLLIN, 0}};
  auto next_heartbeat = std::chrono::steady_clock::now();
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    if (now >= next_heartbeat) {
      Envelope hb;
      hb.type = std::string(kHeartbeatTopic);
      hb.sender = options_.name;
      hb.stream = log_->stream_id();
      hb.time_ms = NowUnixMs();
      hb.payload = {{"last", log_->last_seq()}};
      std::string frame = Encode(hb);
      (void)socket_->send(zmq::buffer(kHeartbeatTopic),
                          zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      (void)socket_->send(zmq::buffer(frame), zmq::send_flags::dontwait);
      next_heartbeat = now + options_.heartbeat;
    }
    try {
      zmq::poll(items, 2,
                std::chrono::duration_cast<std::chrono::milliseconds>(next_heartbeat - now));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      break;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      // Subscription notices: nothing to do with them but read them.
      zmq::message_t m;
      while (socket_->recv(m, zmq::recv_flags::dontwait)) {
      }
    }
    if (items[1].revents & ZMQ_POLLIN) {
      for (auto& [topic, frame] : queue_.Drain()) {
        // At the high-water mark a slow subscriber drops events; it replays them.
        (void)socket_->send(zmq::buffer(topic),
                            zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        (void)socket_->send(zmq::buffer(frame), zmq::send_flags::dontwait);
      }
    }
  }
}

EventSubscriber::EventSubscriber(BusContext& context, SubscriberOptions options, OnEvent on_event,
                                 OnProblem on_problem)
    : context_(context),
      options_(std::move(options)),
      on_event_(std::move(on_event)),
      on_problem_(std::move(on_problem)) {}

EventSubscriber::~EventSubscriber() {
  Stop();
}

void EventSubscriber::Start() {
  ClientOptions co;
  co.endpoint = options_.replay_endpoint;
  co.name = options_.name;
  co.curve = options_.curve;
  co.limits = options_.limits;
  replay_client_ = std::make_unique<BusClient>(context_, co);
  if (options_.since) {
    baseline_ = true;
    last_seq_ = *options_.since;
  }
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void EventSubscriber::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  stop_wake_.Wake();  // without it the loop sees the flag at its next 100 ms tick
  thread_.join();
  replay_client_.reset();
}

void EventSubscriber::Deliver(const Envelope& e) {
  last_seq_ = e.seq;
  on_event_(e);
}

// Replays everything after last_seq_ up to `upto` (0 = to the end of the log).
// Returns false when the publisher could not be asked.
bool EventSubscriber::CatchUp(std::uint64_t upto) {
  ++replays_;
  while (!stopping_) {
    nlohmann::json reply;
    try {
      reply = replay_client_->CallSync(std::string(kReplayType), {{"since", last_seq_.load() + 1}},
                                       {options_.replay_timeout, {}});
    } catch (const BusError& e) {
      if (on_problem_) on_problem_(e);
      return false;
    }
    std::string stream = reply.value("stream", "");
    if (!stream_.empty() && stream != stream_) {
      // The publisher restarted with a fresh log: its numbering starts again.
      stream_ = stream;
      last_seq_ = 0;
      continue;
    }
    stream_ = stream;
    std::uint64_t first = reply.value("first", std::uint64_t{0});
    if (first > last_seq_ + 1 && on_problem_) {
      on_problem_(
          BusError(ErrorCode::kHandlerFailed, "events " + std::to_string(last_seq_ + 1) + ".." +
                                                  std::to_string(first - 1) +
                                                  " are no longer retained by the publisher"));
    }
    const auto& events = reply["events"];
    if (events.empty()) return true;
    for (const auto& blob : events) {
      const auto& bin = blob.get_binary();
      Envelope e = Decode(std::string_view(reinterpret_cast<const char*>(bin.data()), bin.size()));
      if (e.seq <= last_seq_) continue;
      Deliver(e);
      if (upto && e.seq >= upto) return true;
    }
  }
  return false;
}

void EventSubscriber::Loop() {
  zmq::socket_t sub(context_.zmq(), zmq::socket_type::sub);
  ApplySocketOptions(sub, options_.limits);
  if (options_.curve) ApplyCurveClient(sub, *options_.curve);
  // Every topic: sequence numbers are only gap-free over the whole stream.
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect(options_.events_endpoint);
  if (baseline_) CatchUp(0);

  DecodeLimits limits;
  limits.max_frame_bytes = options_.limits.max_message_bytes;
  zmq::pollitem_t items[] = {{sub.handle(), 0, ZMQ_POLLIN, 0},
                             {nullptr, stop_wake_.fd(), ZMQ_POLLIN, 0}};
  while (!stopping_) {
    try {
      if (zmq::poll(items, 2, std::chrono::milliseconds(100)) == 0) continue;
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      break;
    }
    if (stopping_) break;
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(sub, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
    if (parts.size() != 2) continue;
    Envelope e;
    try {
      e = Decode(parts[1].to_string_view(), limits);
    } catch (const DecodeError&) {
      continue;  // not ours to answer; counted by nobody but harmless
    }
    if (!stream_.empty() && e.stream != stream_) {
      stream_ = e.stream;  // publisher restarted: start over on the new stream
      last_seq_ = 0;
      baseline_ = true;
      CatchUp(0);
      continue;
    }
    if (e.type == kHeartbeatTopic) {
      std::uint64_t last = e.payload.value("last", std::uint64_t{0});
      if (!baseline_) {
        baseline_ = true;  // live-only: start after what already happened
        stream_ = e.stream;
        last_seq_ = last;
      } else if (last > last_seq_) {
        CatchUp(last);
      }
      continue;
    }
    if (!baseline_) {
      baseline_ = true;
      stream_ = e.stream;
      Deliver(e);
      continue;
    }
    stream_ = e.stream;
    if (e.seq <= last_seq_) continue;  // already delivered (replay overlap)
    if (e.seq > last_seq_ + 1) CatchUp(e.seq - 1);
    if (e.seq == last_seq_ + 1) {
      Deliver(e);
    } else if (e.seq > last_seq_) {
      // The replay could not fill the gap; keep going rather than stall.
      Deliver(e);
    }
  }
}

}  // namespace mps::bus
