// Cancelling NomadApi calls and DrainCoordinator waits: a stop must never
// wait out a blocking query or a drain.
#include <gtest/gtest.h>

#include <future>
#include <iostream>
#include <thread>

#include "cluster_sim/nomad/nomad_sim.h"
#include "nomad/cancellation.h"
#include "nomad/drain_coordinator.h"
#include "nomad/nomad_api.h"
#include "nomad/nomad_error.h"

using namespace mps::nomad;
using mps::sim::NomadSim;
using mps::sim::NomadSimOptions;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

NomadConnectionConfig ConfigFor(const NomadSim& sim) {
  return FromConfigMap({{"nomad_address", sim.address()}, {"nomad_block-query-wait-time", "60s"}},
                       EnvFromMap({}));
}

NomadSimOptions LongBlocks() {
  NomadSimOptions o;
  o.max_block = 60s;
  return o;
}

std::chrono::milliseconds Ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

// Runs `call` on a thread; returns the kind it threw (nullopt: it returned).
std::future<std::optional<NomadError::Kind>> Start(std::function<void()> call) {
  return std::async(std::launch::async, [call]() -> std::optional<NomadError::Kind> {
    try {
      call();
    } catch (const NomadError& e) {
      return e.kind;
    }
    return std::nullopt;
  });
}

// The node table's index once it stops moving (a new node turns ready just
// after it registers).
std::uint64_t SettledIndex(const NomadApi& api) {
  auto index = api.WatchNodes({0, 0ms}).index;
  for (;;) {
    auto next = api.WatchNodes({index, 150ms}).index;
    if (next == index) return index;
    index = next;
  }
}

}  // namespace

TEST(NomadCancel, ABlockingQueryEndsAtCancel) {
  NomadSim sim(LongBlocks());
  sim.Start();
  sim.RegisterNode("web-1", "web");
  auto cancel = std::make_shared<Cancellation>();
  NomadApi api(ConfigFor(sim), 5s, cancel);
  auto index = SettledIndex(api);
  auto watch = Start([&] { api.WatchNodes({index, 60s}); });
  // Still waiting (nothing changes): the query is open.
  ASSERT_EQ(watch.wait_for(200ms), std::future_status::timeout);
  auto t0 = Clock::now();
  cancel->Cancel();
  ASSERT_EQ(watch.wait_for(10s), std::future_status::ready) << "the 60 s wait was not cut short";
  std::cout << "blocking query returned " << Ms(Clock::now() - t0).count()
            << " ms after Cancel()\n";
  EXPECT_EQ(watch.get(), NomadError::Kind::cancelled);
}

TEST(NomadCancel, CallsAfterCancelFailAtOnceWithoutAskingNomad) {
  NomadSim sim;
  sim.Start();
  auto id = sim.RegisterNode("web-1", "web");
  auto cancel = std::make_shared<Cancellation>();
  NomadApi api(ConfigFor(sim), 5s, cancel);
  EXPECT_EQ(api.ListNodes(false).size(), 1u);
  cancel->Cancel();
  cancel->Cancel();  // idempotent
  try {
    api.PurgeNode(id);
    FAIL() << "purge ran after Cancel()";
  } catch (const NomadError& e) {
    EXPECT_EQ(e.kind, NomadError::Kind::cancelled);
    EXPECT_EQ(std::string(KindName(e.kind)), "cancelled");
  }
  EXPECT_EQ(sim.NodeCount(), 1u);  // never purged
}

TEST(NomadCancel, WithoutACancellationCallsStillWork) {
  NomadSim sim;
  sim.Start();
  sim.RegisterNode("web-1", "web");
  NomadApi api(ConfigFor(sim), 5s);
  EXPECT_EQ(api.cancellation(), nullptr);
  EXPECT_EQ(api.WatchNodes({0, 0ms}).value.size(), 1u);
  // A short blocking query that times out on the server side still answers.
  auto index = SettledIndex(api);
  auto same = api.WatchNodes({index, 200ms});
  EXPECT_EQ(same.index, index);
}

TEST(NomadCancel, ADrainThatCannotFinishEndsAtCancelAndStaysSetInNomad) {
  NomadSim sim(LongBlocks());
  sim.Start();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto id = sim.RegisterNode("web-" + std::to_string(i), "web");
    sim.AddAllocation(id, "service");
    sim.SetNodeMigrationDelay(id, 10min);
    ids.push_back(id);
  }
  auto cancel = std::make_shared<Cancellation>();
  NomadApi api(ConfigFor(sim), 5s, cancel);
  std::mutex mu;
  std::vector<std::string> events;
  DrainOptions options;
  options.deadline = 0ns;  // no deadline: Nomad would wait for ever
  DrainCoordinator drains(api, options, [&](std::string type, std::string, nlohmann::json) {
    std::lock_guard lock(mu);
    events.push_back(std::move(type));
  });
  auto drain = Start([&] { drains.DrainAll(ids); });
  // Wait until every node is draining.
  for (int i = 0; i < 200; ++i) {
    bool all = true;
    for (const auto& id : ids) all = all && !sim.NodeJson(id)->at("DrainStrategy").is_null();
    if (all) break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(drain.wait_for(300ms), std::future_status::timeout);
  auto t0 = Clock::now();
  cancel->Cancel();
  ASSERT_EQ(drain.wait_for(10s), std::future_status::ready) << "the drains were not cut short";
  std::cout << "three drains returned " << Ms(Clock::now() - t0).count() << " ms after Cancel()\n";
  EXPECT_EQ(drain.get(), NomadError::Kind::cancelled);
  std::lock_guard lock(mu);
  EXPECT_EQ(std::count(events.begin(), events.end(), "node.draining"), 3);
  EXPECT_EQ(std::count(events.begin(), events.end(), "node.drain_failed"), 0)
      << "a stop is not a failed drain";
  // The drains go on in Nomad; the next process watches them again.
  for (const auto& id : ids) EXPECT_FALSE(sim.NodeJson(id)->at("DrainStrategy").is_null());
}
