// Placement of a pool's instances over several hosts (issue 13): the pure
// function, with the cases.
#include "scaling/host_placement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

using namespace mps::scaling;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

constexpr std::int64_t kGiB = 1LL << 30;

HostCapacity Host(std::string name, std::string zone = "", std::int64_t cpus = 16,
                  std::int64_t memory_gib = 32) {
  HostCapacity h;
  h.name = std::move(name);
  h.zone = std::move(zone);
  h.cpus = cpus;
  h.memory_bytes = memory_gib * kGiB;
  h.disk_bytes = 500 * kGiB;
  return h;
}

PlacementRequest Request(std::int64_t count) {
  PlacementRequest r;
  r.count = count;
  r.shape = {2, 4 * kGiB, 10 * kGiB};
  return r;
}

std::map<std::string, int> Counts(const Placement& p) {
  std::map<std::string, int> out;
  for (const auto& h : p.hosts) out[h]++;
  return out;
}

}  // namespace

TEST(HostPlacement, ThreeHostsZeroToNineIsThreeEach) {
  auto p = PlaceInstances({Host("a"), Host("b"), Host("c")}, Request(9));
  EXPECT_EQ(p.unplaced, 0);
  EXPECT_EQ(Counts(p), (std::map<std::string, int>{{"a", 3}, {"b", 3}, {"c", 3}}));
  EXPECT_EQ(p.Summary(), "placed 9 of 9 (a 3, b 3, c 3)");
}

TEST(HostPlacement, AFullHostLeavesItToTheOthers) {
  auto full = Host("a");
  full.allocated_memory_bytes = 30 * kGiB;  // 2 GiB left, 4 needed
  auto p = PlaceInstances({full, Host("b"), Host("c")}, Request(6));
  EXPECT_EQ(Counts(p), (std::map<std::string, int>{{"b", 3}, {"c", 3}}));
}

TEST(HostPlacement, SpreadBalancesWhatIsAlreadyThere) {
  auto a = Host("a"), b = Host("b");
  a.pool_instances = 3;
  auto p = PlaceInstances({a, b}, Request(4));
  EXPECT_EQ(Counts(p), (std::map<std::string, int>{{"a", 1}, {"b", 3}}));
}

TEST(HostPlacement, ZonesAreSpreadBeforeHosts) {
  // Two hosts in zone z1, one in z2: 4 instances go 2 to z2, 2 to z1.
  auto p = PlaceInstances({Host("a", "z1"), Host("b", "z1"), Host("c", "z2")}, Request(4));
  EXPECT_EQ(Counts(p), (std::map<std::string, int>{{"a", 1}, {"b", 1}, {"c", 2}}));
}

TEST(HostPlacement, APoolRestrictedToAZoneOrHostsStaysThere) {
  auto r = Request(4);
  r.allowed_zones = {"z2"};
  auto p = PlaceInstances({Host("a", "z1"), Host("b", "z2"), Host("c", "z2")}, r);
  EXPECT_EQ(Counts(p), (std::map<std::string, int>{{"b", 2}, {"c", 2}}));
  EXPECT_THAT(p.refusals["a"], HasSubstr("zone 'z1' is not one of the pool's zones"));
  r.allowed_zones.clear();
  r.allowed_hosts = {"a"};
  EXPECT_EQ(Counts(PlaceInstances({Host("a", "z1"), Host("b", "z2")}, r)),
            (std::map<std::string, int>{{"a", 4}}));
}

TEST(HostPlacement, ExhaustedCapacityPlacesWhatFitsAndSaysWhyPerHost) {
  auto a = Host("a", "", 4, 32);  // CPUs for 2
  auto b = Host("b", "", 16, 8);  // memory for 2
  auto c = Host("c");
  c.max_instances = 3;
  c.instances = 2;  // room for 1
  auto d = Host("d");
  d.healthy = false;
  d.unhealthy_reason = "hostd unreachable";
  auto p = PlaceInstances({a, b, c, d}, Request(9));
  EXPECT_EQ(p.hosts.size(), 5u);
  EXPECT_EQ(p.unplaced, 4);
  EXPECT_THAT(p.refusals["a"], HasSubstr("CPUs: 0 left, 2 needed"));
  EXPECT_THAT(p.refusals["b"], HasSubstr("memory: 0.0 B left, 4.0 GiB needed"));
  EXPECT_THAT(p.refusals["c"], HasSubstr("max_instances 3 reached"));
  EXPECT_THAT(p.refusals["d"], HasSubstr("unhealthy: hostd unreachable"));
  EXPECT_THAT(p.Summary(), HasSubstr("placed 5 of 9"));
  EXPECT_THAT(p.Summary(), HasSubstr("4 not placed"));
}

TEST(HostPlacement, RatiosAndReservesShapeTheHeadroom) {
  auto h = Host("a", "", 4, 16);
  h.cpu_allocation_ratio = 2.0;  // 8 CPUs: 4 instances by CPU
  h.memory_allocation_ratio = 1.0;
  h.reserve_memory_bytes = 4 * kGiB;  // 12 GiB: 3 instances by memory
  EXPECT_EQ(PlaceInstances({h}, Request(5)).hosts.size(), 3u);
  h.reserve_memory_bytes = 0;
  h.reserve_disk_bytes = 485 * kGiB;  // 15 GiB of disk: 1 instance
  EXPECT_EQ(PlaceInstances({h}, Request(5)).hosts.size(), 1u);
}

TEST(HostPlacement, SpreadFollowsTheHostsWeights) {
  auto a = Host("a"), b = Host("b");
  a.weight = 2;
  auto p = PlaceInstances({a, b}, Request(6));
  EXPECT_EQ(Counts(p), (std::map<std::string, int>{{"a", 4}, {"b", 2}}));
  // Within a zone too; the zones themselves share evenly.
  auto c = Host("c", "z1"), d = Host("d", "z1"), e = Host("e", "z2");
  c.weight = 2;
  p = PlaceInstances({c, d, e}, Request(6));
  EXPECT_EQ(Counts(p), (std::map<std::string, int>{{"c", 2}, {"d", 1}, {"e", 3}}));
}

TEST(HostPlacement, PackFillsTheFullestHostThatFits) {
  auto a = Host("a"), b = Host("b");
  b.allocated_memory_bytes = 20 * kGiB;
  auto r = Request(4);
  r.strategy = PlacementStrategy::kPack;
  auto p = PlaceInstances({a, b}, r);
  EXPECT_EQ(Counts(p), (std::map<std::string, int>{{"b", 3}, {"a", 1}}));
}

TEST(HostPlacement, ScaleInFromNineToThreeKeepsOneOnEach) {
  std::vector<std::pair<std::string, std::string>> c;
  for (const char* host : {"a", "b", "c"})
    for (int i = 0; i < 3; ++i) c.push_back({std::string(host) + std::to_string(i), host});
  auto order = RemovalOrder(c);
  ASSERT_EQ(order.size(), 9u);
  std::map<char, int> left{{'a', 3}, {'b', 3}, {'c', 3}};
  for (int i = 0; i < 6; ++i) left[order[static_cast<std::size_t>(i)][0]]--;
  EXPECT_EQ(left, (std::map<char, int>{{'a', 1}, {'b', 1}, {'c', 1}}));
  // Uneven: the host with the most goes first.
  EXPECT_THAT(RemovalOrder({{"x1", "a"}, {"y1", "b"}, {"y2", "b"}}), ElementsAre("y1", "x1", "y2"));
}
