// One pool over several Multipass hosts (issue 13): placement of scale outs,
// the balance of scale ins, and what a host that stops answering changes,
// all on the pure state, without sockets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "pool_fixture.h"
#include "scaling/pool_observation.h"
#include "scaling/pool_status.h"
#include "scaling/scale_planner.h"

namespace mps::scaling {
namespace {

using namespace mps::scaling::testing;
using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

Instance On(Instance instance, std::string host) {
  instance.host = std::move(host);
  return instance;
}

// Three hosts without zones; what they hold is not known (no capacity
// answer yet) unless a test sets it.
PoolState ThreeHosts(std::vector<Instance> instances) {
  auto state = State(std::move(instances));
  for (std::string name : {"mp-a", "mp-b", "mp-c"}) {
    HostCapacity host;
    host.name = name;
    host.resources_known = false;
    state.capacity[name] = host;
    state.SetHostReachability(name, {});
  }
  return state;
}

// Every host's totals known: `cpus` CPUs, `memory_gib` GiB, 4 TiB of disk.
void KnownResources(PoolState& state, std::int64_t cpus, std::int64_t memory_gib) {
  for (auto& [name, host] : state.capacity) {
    host.resources_known = true;
    host.cpus = cpus;
    host.memory_bytes = memory_gib << 30;
    host.disk_bytes = 4LL << 40;
  }
}

// 3 ready instances on each host.
std::vector<Instance> NineSpread() {
  std::vector<Instance> out;
  for (std::string host : {"mp-a", "mp-b", "mp-c"}) {
    for (int i = 0; i < 3; ++i) out.push_back(On(Ready("web-" + host + std::to_string(i)), host));
  }
  return out;
}

template <class T>
std::vector<T> ActionsOf(const ScalePlan& plan) {
  std::vector<T> out;
  for (const auto& a : plan.actions) {
    if (const auto* t = std::get_if<T>(&a)) out.push_back(*t);
  }
  return out;
}

std::map<std::string, int> LaunchesPerHost(const ScalePlan& plan) {
  std::map<std::string, int> out;
  for (const auto& l : ActionsOf<LaunchAction>(plan)) ++out[l.host];
  return out;
}

std::map<std::string, std::int64_t> DrainsPerHost(const ScalePlan& plan) {
  std::map<std::string, std::int64_t> out;
  for (const auto& d : ActionsOf<SelectAndDrainAction>(plan)) out[d.host] += d.count;
  return out;
}

json List(std::initializer_list<std::pair<const char*, const char*>> instances) {
  json out{{"instances", json::array()}, {"in_flight", json::array()}};
  for (auto [name, state] : instances)
    out["instances"].push_back({{"name", name}, {"state", state}});
  return out;
}

class MultiHostTest : public ::testing::Test {
 protected:
  ScalePlan Plan(const PoolState& state, const PoolPolicy& policy, std::int64_t target) {
    return planner_.Plan(state, policy, ScaleRequest{target, false, "req-1"}, Now(), namer_);
  }

  std::mt19937_64 engine_{11};
  InstanceNamer namer_{[this] { return engine_(); }};
  ScalePlanner planner_;
};

TEST_F(MultiHostTest, ZeroToNineSpreadsThreeOnEachHost) {
  auto plan = Plan(ThreeHosts({}), Policy(), 9);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  EXPECT_EQ(LaunchesPerHost(plan),
            (std::map<std::string, int>{{"mp-a", 3}, {"mp-b", 3}, {"mp-c", 3}}));
  EXPECT_THAT(plan.message, HasSubstr("placed 9 of 9 (mp-a 3, mp-b 3, mp-c 3)"));
}

TEST_F(MultiHostTest, ScaleOutEvensOutWhatIsAlreadyThere) {
  // 3 on mp-a, none elsewhere: 3 -> 6 puts the new ones on mp-b and mp-c.
  std::vector<Instance> on_a;
  for (int i = 0; i < 3; ++i) on_a.push_back(On(Ready("web-a" + std::to_string(i)), "mp-a"));
  auto plan = Plan(ThreeHosts(on_a), Policy(), 6);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  auto per_host = LaunchesPerHost(plan);
  EXPECT_EQ(per_host.count("mp-a"), 0u);
  EXPECT_EQ(per_host["mp-b"] + per_host["mp-c"], 3);
}

TEST_F(MultiHostTest, AFullHostLeavesItsShareToTheOthers) {
  auto state = ThreeHosts({});
  KnownResources(state, 64, 256);
  // mp-a has room for one 1-CPU instance only.
  state.capacity["mp-a"].cpus = 8;
  state.capacity["mp-a"].allocated_cpus = 7;
  auto plan = Plan(state, Policy(), 9);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  auto per_host = LaunchesPerHost(plan);
  EXPECT_EQ(per_host["mp-a"], 1);
  EXPECT_EQ(per_host["mp-b"] + per_host["mp-c"], 8);
  EXPECT_LE(std::abs(per_host["mp-b"] - per_host["mp-c"]), 1);
}

TEST_F(MultiHostTest, APoolRestrictedToAZoneStaysInIt) {
  auto state = ThreeHosts({});
  state.capacity["mp-a"].zone = state.capacity["mp-b"].zone = "z1";
  state.capacity["mp-c"].zone = "z2";
  auto plan = Plan(state, Policy({{"zones", "z1"}}), 4);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  EXPECT_EQ(LaunchesPerHost(plan), (std::map<std::string, int>{{"mp-a", 2}, {"mp-b", 2}}));
}

TEST_F(MultiHostTest, APoolRestrictedToHostsStaysOnThem) {
  auto plan = Plan(ThreeHosts({}), Policy({{"hosts", "mp-c"}}), 3);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  EXPECT_EQ(LaunchesPerHost(plan), (std::map<std::string, int>{{"mp-c", 3}}));
}

TEST_F(MultiHostTest, PackFillsTheFullestHostBeforeTheNext) {
  auto state = ThreeHosts({});
  KnownResources(state, 4, 64);
  // mp-b has the least free memory; each host fits four 1-CPU instances.
  state.capacity["mp-b"].allocated_memory_bytes = 8LL << 30;
  auto plan = Plan(state, Policy({{"placement_strategy", "pack"}}), 6);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  EXPECT_EQ(LaunchesPerHost(plan), (std::map<std::string, int>{{"mp-a", 2}, {"mp-b", 4}}));
}

TEST_F(MultiHostTest, CapacityExhaustedLaunchesWhatFitsAndSaysWhyPerHost) {
  auto state = ThreeHosts({});
  for (auto& [name, host] : state.capacity) host.max_instances = 2;
  auto plan = Plan(state, Policy(), 9);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  EXPECT_EQ(LaunchesPerHost(plan),
            (std::map<std::string, int>{{"mp-a", 2}, {"mp-b", 2}, {"mp-c", 2}}));
  EXPECT_THAT(plan.message, HasSubstr("placed 6 of 9"));
  EXPECT_THAT(plan.message, HasSubstr("3 not placed"));
  for (std::string host : {"mp-a", "mp-b", "mp-c"})
    EXPECT_THAT(plan.message, HasSubstr(host + ": max_instances 2 reached"));

  // The six launches are in flight (not listed yet): the same Scale again
  // can place nothing and is refused at once, doing nothing.
  for (const auto& launch : ActionsOf<LaunchAction>(plan)) {
    state.operations.push_back({OperationKind::kLaunch, launch.name, Now(), "req-1", launch.host});
  }
  auto again = Plan(state, Policy(), 9);
  EXPECT_EQ(again.outcome, PlanOutcome::kRefused);
  EXPECT_TRUE(again.actions.empty());
  EXPECT_THAT(again.message, HasSubstr("no host can take a new instance"));
  EXPECT_THAT(again.message, HasSubstr("mp-b: max_instances 2 reached"));
  // Nothing about what could not be placed keeps the pool not ready once
  // the launches are done.
  state.operations.clear();
  for (const auto& launch : ActionsOf<LaunchAction>(plan))
    state.instances.push_back(On(Ready(launch.name), launch.host));
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_EQ(status.count, 6);
  EXPECT_TRUE(status.ready) << ::testing::PrintToString(status.reasons);
}

TEST_F(MultiHostTest, NineToThreeKeepsOneOnEachHost) {
  auto plan = Plan(ThreeHosts(NineSpread()), Policy(), 3);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  EXPECT_EQ(DrainsPerHost(plan),
            (std::map<std::string, std::int64_t>{{"mp-a", 2}, {"mp-b", 2}, {"mp-c", 2}}));
  for (const auto& drain : ActionsOf<SelectAndDrainAction>(plan)) {
    ASSERT_EQ(drain.candidates.size(), 3u);
    for (const auto& name : drain.candidates) EXPECT_THAT(name, HasSubstr(drain.host));
  }
}

TEST_F(MultiHostTest, ScaleInTakesFromTheFullestHostsFirst) {
  // 4/3/2 -> 6: two from mp-a, one from mp-b, leaving 2/2/2.
  std::vector<Instance> instances;
  int n = 0;
  for (auto [host, count] : {std::pair{"mp-a", 4}, {"mp-b", 3}, {"mp-c", 2}}) {
    for (int i = 0; i < count; ++i)
      instances.push_back(On(Ready("web-" + std::to_string(n++)), host));
  }
  auto plan = Plan(ThreeHosts(instances), Policy(), 6);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  EXPECT_EQ(DrainsPerHost(plan), (std::map<std::string, std::int64_t>{{"mp-a", 2}, {"mp-b", 1}}));
}

TEST_F(MultiHostTest, AnUnreachableHostIsNotCountedAndSaysWhy) {
  auto state = ThreeHosts(NineSpread());
  state.SetHostReachability("mp-b", {false, "multipass-hostd at tcp://10.0.0.2:7400: unreachable"});
  EXPECT_TRUE(state.multipass.reachable);
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_EQ(status.count, 6);
  EXPECT_TRUE(status.ready) << ::testing::PrintToString(status.reasons);
  EXPECT_EQ(
      status.Meta()[kMetaHostsUnreachable],
      "mp-b: multipass-hostd at tcp://10.0.0.2:7400: unreachable (3 instance(s) not counted)");
  auto view = cache::PoolViewOf(state, status);
  ASSERT_EQ(view.hosts.size(), 3u);
  EXPECT_EQ(view.hosts[1].name, "mp-b");
  EXPECT_FALSE(view.hosts[1].reachable);
  EXPECT_EQ(view.hosts[1].instances, 3);
  EXPECT_EQ(view.hosts[1].counted, 0);
  EXPECT_EQ(view.hosts[0].counted, 3);
}

TEST_F(MultiHostTest, LaunchesInFlightOnAnUnreachableHostAreNotCountedAndPlacedAgain) {
  // Six on mp-a and mp-c; two launches to mp-b not listed yet when its hostd
  // died: nobody can say whether multipassd ever got them.
  std::vector<Instance> instances;
  for (std::string host : {"mp-a", "mp-c"})
    for (int i = 0; i < 3; ++i)
      instances.push_back(On(Ready("web-" + host + std::to_string(i)), host));
  auto state = ThreeHosts(instances);
  for (std::string name : {"web-lost1", "web-lost2"})
    state.operations.push_back({OperationKind::kLaunch, name, Now(), "req-0", "mp-b"});
  state.SetHostReachability("mp-b", {false, "down"});

  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_EQ(status.count, 6);
  EXPECT_TRUE(status.ready) << ::testing::PrintToString(status.reasons);
  EXPECT_EQ(status.Meta()[kMetaHostsUnreachable], "mp-b: down (2 instance(s) not counted)");

  // The autoscaler's 8 again: two new launches, on the hosts that answer.
  auto plan = Plan(state, Policy(), 8);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  auto per_host = LaunchesPerHost(plan);
  EXPECT_EQ(per_host.count("mp-b"), 0u);
  EXPECT_EQ(per_host["mp-a"] + per_host["mp-c"], 2);

  // mp-b answers: the launches count (until its listing resolves them).
  state.SetHostReachability("mp-b", {});
  EXPECT_EQ(ComputeStatus(state, Policy(), Now()).count, 8);
}

TEST_F(MultiHostTest, NothingOnAnUnreachableHostIsDrainedOrDeleted) {
  auto instances = NineSpread();
  instances.push_back(On(WithState("web-gone", InstanceState::kDeleted), "mp-b"));
  instances.push_back(On(Unregistered("web-late", std::chrono::hours(2)), "mp-b"));
  auto state = ThreeHosts(instances);
  state.failed_launch_leftovers.push_back("web-mp-b0");
  state.SetHostReachability("mp-b", {false, "down"});

  auto in = Plan(state, Policy(), 2);
  ASSERT_EQ(in.outcome, PlanOutcome::kExecute) << in.message;
  auto drains = DrainsPerHost(in);
  EXPECT_EQ(drains.count("mp-b"), 0u);
  EXPECT_EQ(drains["mp-a"] + drains["mp-c"], 4);
  for (const auto& d : ActionsOf<DeleteAction>(in)) EXPECT_NE(d.host, "mp-b") << d.name;

  auto repair = planner_.ReconcilePlan(state, Policy(), Now(), namer_);
  for (const auto& d : ActionsOf<DeleteAction>(repair)) EXPECT_NE(d.host, "mp-b") << d.name;
}

TEST_F(MultiHostTest, ScaleOutPlacesAroundAnUnreachableHost) {
  auto state = ThreeHosts(NineSpread());
  state.SetHostReachability("mp-b", {false, "down"});
  // Counted 6: the autoscaler's 9 means three new instances, none on mp-b.
  auto plan = Plan(state, Policy(), 9);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  auto per_host = LaunchesPerHost(plan);
  EXPECT_EQ(per_host.count("mp-b"), 0u);
  EXPECT_EQ(per_host["mp-a"] + per_host["mp-c"], 3);
  EXPECT_THAT(plan.message, HasSubstr("placed 3 of 3"));
}

TEST_F(MultiHostTest, AHostThatAnswersAgainIsCountedAgain) {
  auto state = ThreeHosts(NineSpread());
  state.SetHostReachability("mp-b", {false, "down"});
  ASSERT_EQ(ComputeStatus(state, Policy(), Now()).count, 6);
  // Its listing now: one instance went away while it was unreachable.
  cache::ApplyInstanceList(state, List({{"web-mp-b0", "running"}, {"web-mp-b1", "running"}}), Now(),
                           "mp-b");
  state.SetHostReachability("mp-b", {});
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_EQ(status.count, 8);
  EXPECT_EQ(status.Meta().count(kMetaHostsUnreachable), 0u);
  EXPECT_EQ(state.Find("web-mp-b2"), nullptr);
  // What was known of the instances it still lists is kept (their nodes).
  ASSERT_NE(state.Find("web-mp-b0"), nullptr);
  EXPECT_TRUE(state.Find("web-mp-b0")->node.has_value());
}

TEST_F(MultiHostTest, EveryHostUnreachableStopsThePoolNamingEach) {
  auto state = ThreeHosts(NineSpread());
  for (std::string host : {"mp-a", "mp-b", "mp-c"})
    state.SetHostReachability(host, {false, "down"});
  EXPECT_FALSE(state.multipass.reachable);
  EXPECT_EQ(state.multipass.reason, "host mp-a: down; host mp-b: down; host mp-c: down");
  auto plan = Plan(state, Policy(), 10);
  EXPECT_EQ(plan.outcome, PlanOutcome::kRefused);
  EXPECT_THAT(plan.message, HasSubstr("host mp-b: down"));
  // The pool as a whole is not ready; its count stays what it last was.
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_FALSE(status.ready);
  EXPECT_EQ(status.count, 9);
}

TEST_F(MultiHostTest, OneHostReadsAsBefore) {
  auto state = State({Ready("web-a")});
  state.SetHostReachability(std::string(kDefaultHost), {false, "connection refused"});
  EXPECT_FALSE(state.multipass.reachable);
  EXPECT_EQ(state.multipass.reason, "connection refused");
  EXPECT_EQ(ComputeStatus(state, Policy(), Now()).count, 1);
}

TEST(ApplyInstanceListPerHost, ReplacesOnlyTheListingHostsInstances) {
  PoolState state;
  state.prefix = "web";
  auto now = Now();
  cache::ApplyInstanceList(state, List({{"web-a", "running"}}), now, "mp-a");
  cache::ApplyInstanceList(state, List({{"web-b", "running"}, {"web-c", "stopped"}}), now, "mp-b");
  ASSERT_EQ(state.instances.size(), 3u);
  EXPECT_EQ(state.Find("web-a")->host, "mp-a");
  EXPECT_EQ(state.Find("web-c")->host, "mp-b");
  // mp-a lists again without web-a: only mp-a's instances change.
  cache::ApplyInstanceList(state, List({}), now, "mp-a");
  EXPECT_EQ(state.Find("web-a"), nullptr);
  EXPECT_NE(state.Find("web-b"), nullptr);
  EXPECT_NE(state.Find("web-c"), nullptr);
}

TEST(ApplyInstanceListPerHost, NamesStayUniqueAcrossHosts) {
  PoolState state;
  state.prefix = "web";
  cache::ApplyInstanceList(state, List({{"web-a", "running"}}), Now(), "mp-a");
  // Moved by hand: the newest listing says where it is.
  cache::ApplyInstanceList(state, List({{"web-a", "running"}}), Now(), "mp-b");
  ASSERT_EQ(state.instances.size(), 1u);
  EXPECT_EQ(state.instances[0].host, "mp-b");
}

TEST(RemovalOrderSeeded, CountsInstancesThatAreNotCandidates) {
  // mp-a holds 5 of the pool but only one can be drained; mp-b holds 2.
  auto order =
      RemovalOrder({{"b1", "mp-b"}, {"b2", "mp-b"}, {"a1", "mp-a"}}, {{"mp-a", 5}, {"mp-b", 2}});
  EXPECT_EQ(order.front(), "a1");
}

}  // namespace
}  // namespace mps::scaling
