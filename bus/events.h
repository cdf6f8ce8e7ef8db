#pragma once
// Events over XPUB/SUB. The topic frame is the event type; the body is an
// envelope carrying the publisher's stream id and sequence number. The
// publisher serves `events.replay` on its request server from its log, and
// announces its last sequence number in periodic heartbeats, so a subscriber
// notices a gap (high-water-mark drop, late join, missed tail) and fills it.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "bus/client.h"
#include "bus/context.h"
#include "bus/envelope.h"
#include "bus/event_log.h"
#include "bus/server.h"
#include "bus/transport.h"
#include "bus/wake_queue.h"

namespace mps::bus {

inline constexpr std::string_view kReplayType = "events.replay";
inline constexpr std::string_view kHeartbeatTopic = "bus.heartbeat";

struct PublisherOptions {
  std::string endpoint;  // XPUB bind address; tcp:// requires `curve`
  std::string name = "publisher";
  std::optional<CurveServerConfig> curve;
  SocketLimits limits;
  std::chrono::milliseconds heartbeat{1000};
  std::size_t max_replay_batch = 500;
  // mps_events_published_total and mps_event_sequence_number; null: not counted.
  std::shared_ptr<metrics::Registry> metrics;
};

class EventPublisher {
 public:
  EventPublisher(BusContext& context, PublisherOptions options, std::shared_ptr<EventLog> log);
  ~EventPublisher();
  EventPublisher(const EventPublisher&) = delete;
  EventPublisher& operator=(const EventPublisher&) = delete;

  // Registers `events.replay` on `server` (call before server.Start()).
  void ServeReplay(BusServer& server);
  void Start();  // binds; throws BusError
  void Stop();

  // Thread-safe. Appends to the log and publishes; returns the sequence number.
  std::uint64_t Publish(const std::string& type, nlohmann::json fields);
  std::string endpoint() const { return bound_endpoint_; }
  const EventLog& log() const { return *log_; }

 private:
  void Loop();

  BusContext& context_;
  PublisherOptions options_;
  std::shared_ptr<EventLog> log_;
  std::optional<zmq::socket_t> socket_;
  std::string bound_endpoint_;
  std::string zap_domain_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex publish_mutex_;                              // keeps log order == wire order
  WakeQueue<std::pair<std::string, std::string>> queue_;  // topic, frame
};

struct SubscriberOptions {
  std::string events_endpoint;  // the publisher's XPUB
  std::string replay_endpoint;  // the request server that serves events.replay
  std::string name = "subscriber";
  std::optional<CurveClientConfig> curve;  // same server key on both endpoints
  SocketLimits limits;
  // Deliver retained events after this sequence number first (0 = from the
  // oldest retained event); unset = live events only.
  std::optional<std::uint64_t> since;
  std::chrono::milliseconds replay_timeout{3000};
};

class EventSubscriber {
 public:
  using OnEvent = std::function<void(const Envelope&)>;
  using OnProblem = std::function<void(const BusError&)>;

  EventSubscriber(BusContext& context, SubscriberOptions options, OnEvent on_event,
                  OnProblem on_problem = {});
  ~EventSubscriber();
  void Start();
  void Stop();
  std::uint64_t last_seq() const { return last_seq_.load(); }
  std::uint64_t replays() const { return replays_.load(); }

 private:
  void Loop();
  void Deliver(const Envelope& e);
  bool CatchUp(std::uint64_t upto);

  BusContext& context_;
  SubscriberOptions options_;
  OnEvent on_event_;
  OnProblem on_problem_;
  std::unique_ptr<BusClient> replay_client_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  WakeQueue<bool> stop_wake_;  // its eventfd ends the loop's poll at Stop()
  std::string stream_;
  std::atomic<std::uint64_t> last_seq_{0};
  std::atomic<std::uint64_t> replays_{0};
  bool baseline_ = false;
};

}  // namespace mps::bus
