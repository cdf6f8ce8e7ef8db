// DrainCoordinator against the simulated Nomad.
#include <gtest/gtest.h>

#include <mutex>

#include "cluster_sim/nomad/nomad_sim.h"
#include "nomad/drain_coordinator.h"
#include "nomad/nomad_error.h"
#include "support/drain_order.h"

using namespace mps::nomad;
using mps::sim::NomadSim;
using mps::sim::NomadSimOptions;
using namespace std::chrono_literals;

namespace {

NomadConnectionConfig ConfigFor(const NomadSim& sim) {
  return FromConfigMap({{"nomad_address", sim.address()}, {"nomad_block-query-wait-time", "2s"}},
                       EnvFromMap({}));
}

struct EventLog {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> events;
  DrainEventSink Sink() {
    return [this](std::string type, std::string node, nlohmann::json) {
      std::lock_guard lock(mu);
      events.emplace_back(std::move(type), std::move(node));
    };
  }
  std::size_t Count(const std::string& type) {
    std::lock_guard lock(mu);
    return std::count_if(events.begin(), events.end(), [&](auto& e) { return e.first == type; });
  }
};

}  // namespace

TEST(DrainCoordinator, DrainsSeveralNodesInParallel) {
  NomadSimOptions o;
  o.migration_delay = 400ms;
  NomadSim sim(o);
  sim.Start();
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    auto id = sim.RegisterNode("web-" + std::to_string(i), "web");
    sim.AddAllocation(id, "service");
    sim.AddAllocation(id, "batch", "running", 200, 512);
    ids.push_back(id);
  }
  NomadApi api(ConfigFor(sim), 5s);
  EventLog log;
  DrainOptions opts;
  opts.deadline = 10s;
  DrainCoordinator drains(api, opts, log.Sink());
  auto t0 = std::chrono::steady_clock::now();
  auto results = drains.DrainAll(ids);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(results.size(), 4u);
  for (std::size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].node_id, ids[i]);
    EXPECT_EQ(results[i].outcome, DrainOutcome::drained) << results[i].reason;
    EXPECT_FALSE(results[i].deadline_reached);
    auto node = sim.NodeJson(ids[i]);
    EXPECT_TRUE(node->at("DrainStrategy").is_null());
    EXPECT_EQ(node->at("LastDrain").at("Status"), "complete");
    EXPECT_EQ(node->at("LastDrain").at("Meta").at("drained_by"), "nomad-autoscaler");
    EXPECT_EQ(node->at("SchedulingEligibility"), "ineligible");
  }
  // Each waited for its migration; all four at once (drain_bench measures
  // the wall time of 16 against 1).
  EXPECT_GE(took, 380ms);
  EXPECT_TRUE(mps::testing::DrainsOverlapped(sim, ids)) << "drains ran one after another";
  EXPECT_EQ(log.Count("node.draining"), 4u);
  EXPECT_EQ(log.Count("node.drained"), 4u);
}

TEST(DrainCoordinator, DeadlineReachedIsReported) {
  NomadSim sim;
  sim.Start();
  auto id = sim.RegisterNode("web-1", "web");
  sim.AddAllocation(id, "service");
  sim.SetNodeMigrationDelay(id, 30s);  // longer than the deadline: Nomad force-stops at it
  NomadApi api(ConfigFor(sim), 5s);
  DrainOptions opts;
  opts.deadline = 300ms;
  auto r = DrainCoordinator(api, opts).Drain(id);
  EXPECT_EQ(r.outcome, DrainOutcome::drained) << r.reason;
  // Ended by the deadline (Nomad stopped the allocation), not by the 30 s migration.
  EXPECT_TRUE(r.deadline_reached);
  EXPECT_NE(r.reason.find("deadline"), std::string::npos);
  EXPECT_GE(r.elapsed, 300ms);
}

TEST(DrainCoordinator, GuardEndsADrainThatNeverFinishes) {
  NomadSim sim;
  sim.Start();
  auto id = sim.RegisterNode("web-1", "web");
  sim.AddAllocation(id, "service");
  sim.SetNodeMigrationDelay(id, 60s);
  NomadApi api(ConfigFor(sim), 5s);
  EventLog log;
  DrainOptions opts;
  opts.deadline = 0ns;  // Nomad waits forever
  opts.no_deadline_limit = 400ms;
  auto r = DrainCoordinator(api, opts, log.Sink()).Drain(id);
  EXPECT_EQ(r.outcome, DrainOutcome::drain_failed);
  // Ended by the guard: the migration would take 60 s.
  EXPECT_NE(r.reason.find("not drained within"), std::string::npos) << r.reason;
  EXPECT_EQ(log.Count("node.drain_failed"), 1u);
}

TEST(DrainCoordinator, SystemJobsStayWhenIgnored) {
  NomadSim sim;
  sim.Start();
  sim.SetMigrationDelay(100ms);
  auto id = sim.RegisterNode("web-1", "web");
  sim.AddAllocation(id, "system");
  sim.AddAllocation(id, "service");
  NomadApi api(ConfigFor(sim), 5s);
  DrainOptions opts;
  opts.ignore_system_jobs = true;
  auto r = DrainCoordinator(api, opts).Drain(id);
  EXPECT_EQ(r.outcome, DrainOutcome::drained) << r.reason;
  auto allocs = api.GetNodeAllocations(id).value;
  for (const auto& a : allocs) {
    EXPECT_EQ(a.client_status, a.job_type == "system" ? "running" : "complete") << a.job_type;
  }
}

TEST(DrainCoordinator, UnknownNodeIsGone) {
  NomadSim sim;
  sim.Start();
  NomadApi api(ConfigFor(sim), 5s);
  auto r = DrainCoordinator(api, DrainOptions{}).Drain("11111111-2222-3333-4444-555555555555");
  EXPECT_EQ(r.outcome, DrainOutcome::gone);
}

TEST(DrainCoordinator, PurgeOfAGoneNodeSucceeds) {
  NomadSim sim;
  sim.Start();
  auto id = sim.RegisterNode("web-1", "web");
  NomadApi api(ConfigFor(sim), 5s);
  EventLog log;
  DrainCoordinator drains(api, DrainOptions{}, log.Sink());
  EXPECT_TRUE(drains.Purge(id));
  EXPECT_EQ(sim.NodeCount(), 0u);
  EXPECT_FALSE(drains.Purge(id));  // already gone: done as well
  EXPECT_EQ(log.Count("node.purged"), 2u);
  EXPECT_NO_THROW(sim.RegisterNode("web-1", "web"));  // a purged node's instance can come back
}

TEST(DrainCoordinator, MarkEligibleRollsBackDrainedAndDrainingNodes) {
  NomadSim sim;
  sim.Start();
  sim.SetMigrationDelay(50ms);
  auto drained = sim.RegisterNode("web-1", "web");
  auto stuck = sim.RegisterNode("web-2", "web");
  sim.AddAllocation(stuck, "service");
  sim.SetNodeMigrationDelay(stuck, 60s);
  NomadApi api(ConfigFor(sim), 5s);
  DrainCoordinator drains(api, DrainOptions{});
  ASSERT_EQ(drains.Drain(drained).outcome, DrainOutcome::drained);
  api.DrainNode(stuck, DrainSpec{0, false}, {});
  EXPECT_TRUE(drains.MarkEligible(drained));
  EXPECT_TRUE(drains.MarkEligible(stuck));  // cancels the drain first
  EXPECT_EQ(api.GetNode(drained).value.scheduling_eligibility, "eligible");
  auto s = api.GetNode(stuck).value;
  EXPECT_EQ(s.scheduling_eligibility, "eligible");
  EXPECT_FALSE(s.drain_strategy);
  EXPECT_EQ(s.last_drain->status, "canceled");
  api.PurgeNode(drained);
  EXPECT_FALSE(drains.MarkEligible(drained));
}
