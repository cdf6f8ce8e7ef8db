// A host.capacity reply as placement's input: placement runs on what hostd
// answered, health rules included.
#include "scaling/host_capacity_view.h"

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mps::scaling {
namespace {

constexpr std::int64_t kGiB = 1LL << 30;

config::HostEntry Entry(std::string name, std::string zone = "", int weight = 1) {
  config::HostEntry e;
  e.name = std::move(name);
  e.hostd_address = "tcp://10.0.0.1:7400";
  e.zone = std::move(zone);
  e.weight = weight;
  return e;
}

contracts::host::CapacityReply Reply(std::int64_t cpus, std::int64_t memory_gib) {
  contracts::host::CapacityReply r;
  r.totals = {cpus, memory_gib * kGiB, 500 * kGiB, "daemon_info", "", ""};
  r.health.daemon_reachable = true;
  return r;
}

TEST(HostCapacityView, EveryFieldReachesPlacement) {
  auto r = Reply(8, 16);
  r.allocated = {3, 5, 6 * kGiB, 30 * kGiB, 1};
  r.headroom = {2.0, 1.5, kGiB, 10 * kGiB, 12};
  auto h = PlacementHostOf(Entry("mp-a", "z1", 3), r, 2);
  EXPECT_EQ(h.name, "mp-a");
  EXPECT_EQ(h.zone, "z1");
  EXPECT_EQ(h.weight, 3);
  EXPECT_EQ(h.pool_instances, 2);
  EXPECT_TRUE(h.healthy);
  EXPECT_EQ(h.cpus, 8);
  EXPECT_EQ(h.memory_bytes, 16 * kGiB);
  EXPECT_EQ(h.disk_bytes, 500 * kGiB);
  EXPECT_EQ(h.instances, 3);
  EXPECT_EQ(h.allocated_cpus, 5);
  EXPECT_EQ(h.allocated_memory_bytes, 6 * kGiB);
  EXPECT_EQ(h.allocated_disk_bytes, 30 * kGiB);
  EXPECT_EQ(h.cpu_allocation_ratio, 2.0);
  EXPECT_EQ(h.memory_allocation_ratio, 1.5);
  EXPECT_EQ(h.reserve_memory_bytes, kGiB);
  EXPECT_EQ(h.reserve_disk_bytes, 10 * kGiB);
  EXPECT_EQ(h.max_instances, 12);
}

TEST(HostCapacityView, PlacementTakesTheRepliesAsTheyAre) {
  // mp-a: 16 GiB less a 2 GiB reserve, 10 GiB taken: one 4 GiB instance fits.
  auto a = Reply(16, 16);
  a.headroom.reserve_memory_bytes = 2 * kGiB;
  a.allocated = {5, 5, 10 * kGiB, 50 * kGiB, 0};
  auto b = Reply(16, 64);
  PlacementRequest request;
  request.count = 4;
  request.shape = {1, 4 * kGiB, 10 * kGiB};
  auto p = PlaceInstances(
      {PlacementHostOf(Entry("mp-a"), a, 0), PlacementHostOf(Entry("mp-b"), b, 0)}, request);
  EXPECT_EQ(p.unplaced, 0);
  EXPECT_EQ(std::count(p.hosts.begin(), p.hosts.end(), "mp-a"), 1);
  EXPECT_EQ(std::count(p.hosts.begin(), p.hosts.end(), "mp-b"), 3);
}

TEST(HostCapacityView, AnUnhealthyHostSaysWhy) {
  auto down = Reply(8, 16);
  down.health.daemon_reachable = false;
  down.health.daemon_error = "unreachable: connection refused";
  auto h = PlacementHostOf(Entry("mp-a"), down, 0);
  EXPECT_FALSE(h.healthy);
  EXPECT_EQ(h.unhealthy_reason,
            "multipassd does not answer hostd: unreachable: connection refused");

  auto failing = Reply(8, 16);
  failing.health.consecutive_launch_failures = kUnhealthyAfterLaunchFailures;
  failing.health.last_launch_failure = "start failed";
  h = PlacementHostOf(Entry("mp-b"), failing, 0);
  EXPECT_FALSE(h.healthy);
  EXPECT_EQ(h.unhealthy_reason, "the last 3 launches failed (last: start failed)");
  failing.health.consecutive_launch_failures = kUnhealthyAfterLaunchFailures - 1;
  EXPECT_TRUE(PlacementHostOf(Entry("mp-b"), failing, 0).healthy);

  h = UnreachableHost(Entry("mp-c"), "no answer within 2 s", 1);
  EXPECT_FALSE(h.healthy);
  EXPECT_EQ(h.unhealthy_reason, "hostd at tcp://10.0.0.1:7400 unreachable: no answer within 2 s");
  PlacementRequest request;
  request.count = 1;
  auto p = PlaceInstances({h}, request);
  EXPECT_EQ(p.unplaced, 1);
  EXPECT_THAT(p.Summary(), ::testing::HasSubstr("mp-c: unhealthy: hostd at"));
}

}  // namespace
}  // namespace mps::scaling
