#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "bus/events.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

using namespace mps::bus;
using namespace std::chrono_literals;

namespace {

// Collects delivered sequence numbers and waits for a count.
struct Collector {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::uint64_t> seqs;
  std::vector<std::string> types;
  void Add(const Envelope& e) {
    std::lock_guard l(m);
    seqs.push_back(e.seq);
    types.push_back(e.type);
    cv.notify_all();
  }
  bool WaitFor(std::size_t n, std::chrono::milliseconds t) {
    std::unique_lock l(m);
    return cv.wait_for(l, t, [&] { return seqs.size() >= n; });
  }
};

void ExpectExactly(const std::vector<std::uint64_t>& seqs, std::uint64_t from, std::uint64_t to) {
  ASSERT_EQ(seqs.size(), to - from + 1);
  for (std::uint64_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], from + i) << "position " << i;
}

struct Publisher {
  BusContext& ctx;
  std::unique_ptr<BusServer> server;
  std::unique_ptr<EventPublisher> pub;
  Publisher(BusContext& c, const std::string& base, SocketLimits limits = {}) : ctx(c) {
    ServerOptions so;
    so.endpoint = base;
    so.name = "pub";
    server = std::make_unique<BusServer>(ctx, so);
    PublisherOptions po;
    po.endpoint = EventsEndpointFor(base);
    po.name = "pub";
    po.limits = limits;
    po.heartbeat = 50ms;
    pub = std::make_unique<EventPublisher>(ctx, po, std::make_shared<MemoryEventLog>(20000));
    pub->ServeReplay(*server);
    server->Start();
    pub->Start();
  }
};

SubscriberOptions SubOptions(const std::string& base, std::optional<std::uint64_t> since) {
  SubscriberOptions o;
  o.events_endpoint = EventsEndpointFor(base);
  o.replay_endpoint = base;
  o.since = since;
  return o;
}

}  // namespace

TEST(BusEvents, LateJoinerReplaysFromItsPositionThenFollowsLive) {
  mps::testing::TempDir dir;
  BusContext ctx;
  std::string base = "ipc://" + dir.path() + "/pub.sock";
  Publisher p(ctx, base);
  for (int i = 0; i < 40; ++i)
    p.pub->Publish(i % 2 ? "instance.running" : "instance.launching", {{"i", i}});

  Collector got;
  EventSubscriber sub(ctx, SubOptions(base, 10), [&](const Envelope& e) { got.Add(e); });
  sub.Start();
  ASSERT_TRUE(got.WaitFor(30, 5s));
  for (int i = 40; i < 60; ++i) p.pub->Publish("scale.completed", {{"i", i}});
  // A marker after the last event: once it is delivered, the subscriber has
  // handled everything before it (events come in order on its one thread),
  // so a duplicate or an extra event would show below.
  p.pub->Publish("marker", {});
  ASSERT_TRUE(got.WaitFor(51, 5s));
  std::lock_guard l(got.m);
  ExpectExactly(got.seqs, 11, 61);
  EXPECT_EQ(got.types.front(), "instance.launching");  // seq 11 = i 10 (even)
  EXPECT_EQ(got.types[49], "scale.completed");
  EXPECT_EQ(got.types.back(), "marker");
}

TEST(BusEvents, SubscriberThatDropsAtHighWaterMarkGetsEverythingInOrderOnce) {
  mps::testing::TempDir dir;
  BusContext ctx;
  std::string base = "ipc://" + dir.path() + "/hwm.sock";
  SocketLimits tight;
  tight.send_hwm = 20;
  tight.recv_hwm = 20;
  Publisher p(ctx, base, tight);

  Collector got;
  auto opts = SubOptions(base, 0);
  opts.limits = tight;
  std::atomic<int> slow{100};
  EventSubscriber sub(ctx, opts, [&](const Envelope& e) {
    if (slow-- > 0) std::this_thread::sleep_for(1ms);  // fall behind at first
    got.Add(e);
  });
  sub.Start();
  std::this_thread::sleep_for(100ms);
  const int n = 3000;
  for (int i = 0; i < n; ++i) p.pub->Publish("node.draining", {{"i", i}});
  p.pub->Publish("marker", {});  // delivered last: nothing before it is still on its way
  ASSERT_TRUE(got.WaitFor(n + 1, 20s)) << "got " << got.seqs.size();
  std::lock_guard l(got.m);
  ExpectExactly(got.seqs, 1, n + 1);
  EXPECT_EQ(got.types.back(), "marker");
  EXPECT_GT(sub.replays(), 1u)
      << "the high-water mark never dropped anything: test did not test replay";
}

TEST(BusEvents, MissedTailIsNoticedThroughHeartbeats) {
  mps::testing::TempDir dir;
  BusContext ctx;
  std::string base = "ipc://" + dir.path() + "/tail.sock";
  Publisher p(ctx, base);
  Collector got;
  EventSubscriber sub(ctx, SubOptions(base, 0), [&](const Envelope& e) { got.Add(e); });
  sub.Start();
  std::this_thread::sleep_for(100ms);
  // Published events are all in the log; even if the subscriber missed the
  // live copies, the next heartbeat tells it how far the stream goes.
  for (int i = 0; i < 5; ++i) p.pub->Publish("scale.requested", {});
  ASSERT_TRUE(got.WaitFor(5, 3s));
  std::lock_guard l(got.m);
  ExpectExactly(got.seqs, 1, 5);
}

TEST(BusEvents, DurableLogSurvivesPublisherRestartWithNoGapAndNoDuplicate) {
  mps::testing::TempDir dir;
  std::string base = "ipc://" + dir.path() + "/durable.sock";
  std::string log = dir.path() + "/events.db";
  auto start = [&] {
    auto p = std::make_unique<mps::testing::ChildProcess>(std::vector<std::string>{
        mps::testing::BinDir() + "/bus-test-server", "--bind", base, "--event-log", log});
    EXPECT_TRUE(p->WaitForLine("ready ", 10s)) << p->stderr_text();
    return p;
  };
  BusContext ctx;
  auto server = start();
  ClientOptions co;
  co.endpoint = base;
  BusClient client(ctx, co);
  Collector live;
  EventSubscriber sub(ctx, SubOptions(base, 0), [&](const Envelope& e) { live.Add(e); });
  sub.Start();
  EXPECT_EQ(client.CallSync("publish", {{"n", 5}})["last"], 5);
  ASSERT_TRUE(live.WaitFor(5, 5s));

  server->Signal(SIGKILL);  // no chance to flush anything it had not committed
  server->Wait(5s);
  server = start();
  EXPECT_EQ(client.CallSync("publish", {{"n", 5}}, {5s, {}})["last"], 10);
  // One more as a marker: once 11 is delivered, nothing before it is still
  // on its way, so a gap or a duplicate around the restart would show below.
  EXPECT_EQ(client.CallSync("publish", {{"n", 1}}, {5s, {}})["last"], 11);
  ASSERT_TRUE(live.WaitFor(11, 10s)) << "got " << live.seqs.size();
  {
    std::lock_guard l(live.m);
    ExpectExactly(live.seqs, 1, 11);
  }
  // A subscriber joining after the restart replays from its position.
  Collector late;
  EventSubscriber sub2(ctx, SubOptions(base, 3), [&](const Envelope& e) { late.Add(e); });
  sub2.Start();
  ASSERT_TRUE(late.WaitFor(8, 5s));
  std::lock_guard l(late.m);
  ExpectExactly(late.seqs, 4, 11);
}
