#include "scaling/scale_planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "pool_fixture.h"
#include "scaling/pool_status.h"

namespace mps::scaling {
namespace {

using namespace mps::scaling::testing;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using namespace std::chrono_literals;

template <class T>
std::vector<T> ActionsOf(const ScalePlan& plan) {
  std::vector<T> out;
  for (const auto& a : plan.actions) {
    if (const auto* t = std::get_if<T>(&a)) out.push_back(*t);
  }
  return out;
}

std::vector<std::string> DeletedNames(const ScalePlan& plan) {
  std::vector<std::string> names;
  for (const auto& d : ActionsOf<DeleteAction>(plan)) names.push_back(d.name);
  return names;
}

class ScalePlannerTest : public ::testing::Test {
 protected:
  ScalePlan Plan(const PoolState& state, const PoolPolicy& policy, std::int64_t target,
                 bool dry_run = false, TimePoint now = Now()) {
    return planner_.Plan(state, policy, ScaleRequest{target, dry_run, "req-1"}, now, namer_);
  }

  std::mt19937_64 engine_{7};
  InstanceNamer namer_{[this] { return engine_(); }};
  ScalePlanner planner_;
};

TEST_F(ScalePlannerTest, ZeroToFiveLaunchesFiveInBoundedBatches) {
  auto policy = Policy({{"instance_size", "c2-m4-d20"},
                        {"cloud_init_user_data_path", "/etc/nomad-client.yaml"},
                        {"max_parallel_launches", "2"}});
  auto plan = Plan(State({}), policy, 5);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  EXPECT_TRUE(plan.ShouldExecute());
  EXPECT_EQ(plan.current_count, 0);
  EXPECT_EQ(plan.target, 5);
  auto launches = ActionsOf<LaunchAction>(plan);
  ASSERT_EQ(launches.size(), 5u);
  ASSERT_EQ(plan.actions.size(), 5u);
  std::set<std::string> names;
  for (const auto& l : launches) {
    EXPECT_TRUE(IsValidInstanceName(l.name)) << l.name;
    EXPECT_TRUE(BelongsToPool("web", l.name)) << l.name;
    names.insert(l.name);
    EXPECT_EQ(l.image, "jammy");
    EXPECT_EQ(l.cpus, 2);
    EXPECT_EQ(l.memory, "4G");
    EXPECT_EQ(l.disk, "20G");
    EXPECT_EQ(l.cloud_init_path, "/etc/nomad-client.yaml");
  }
  EXPECT_EQ(names.size(), 5u);
  EXPECT_EQ(plan.max_parallel_launches, 2);
}

TEST_F(ScalePlannerTest, LaunchNamesAvoidExistingAndLeftoverNames) {
  // A source that always draws the same first name forces the namer past it.
  std::vector<std::uint64_t> values(6, 0);
  for (int i = 1; i <= 30; ++i) values.push_back(static_cast<std::uint64_t>(i));
  std::size_t next = 0;
  InstanceNamer namer([&] { return next < values.size() ? values[next++] : next++; });
  auto state = State({Ready("web-aaaaaa")});
  state.failed_launch_leftovers = {"web-bcdefg"};
  auto plan = planner_.Plan(state, Policy(), ScaleRequest{3, false, "r"}, Now(), namer);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  for (const auto& l : ActionsOf<LaunchAction>(plan)) {
    EXPECT_NE(l.name, "web-aaaaaa");
    EXPECT_NE(l.name, "web-bcdefg");
  }
}

TEST_F(ScalePlannerTest, FiveToTwoRemovesUnregisteredAndDownFirstThenDrains) {
  auto state = State({Ready("web-a"), Ready("web-b"), Ready("web-c"),
                      Unregistered("web-never", std::chrono::minutes(20)), Ready("web-down")});
  state.instances[4].node->status = NodeStatus::kDown;
  auto policy = Policy({{"node_purge", "true"},
                        {"node_selector_strategy", "empty"},
                        {"node_drain_deadline", "5m"},
                        {"node_drain_ignore_system_jobs", "true"}});
  auto plan = Plan(state, policy, 2);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  EXPECT_EQ(plan.current_count, 5);
  ASSERT_EQ(plan.actions.size(), 4u);
  auto d0 = std::get<DeleteAction>(plan.actions[0]);
  EXPECT_EQ(d0.name, "web-never");
  EXPECT_THAT(d0.reason, HasSubstr("never registered as a Nomad node within 10m0s"));
  auto d1 = std::get<DeleteAction>(plan.actions[1]);
  EXPECT_EQ(d1.name, "web-down");
  EXPECT_THAT(d1.reason, HasSubstr("is down"));
  auto drain = std::get<SelectAndDrainAction>(plan.actions[2]);
  EXPECT_EQ(drain.count, 1);
  EXPECT_THAT(drain.candidates, UnorderedElementsAre("web-a", "web-b", "web-c"));
  EXPECT_EQ(drain.strategy, NodeSelectorStrategy::kEmpty);
  EXPECT_EQ(drain.deadline, std::chrono::minutes(5));
  EXPECT_TRUE(drain.ignore_system_jobs);
  EXPECT_TRUE(drain.purge_nodes);
  auto purge = std::get<PurgeNodesAction>(plan.actions[3]);
  EXPECT_THAT(purge.node_ids, ElementsAre("node-web-down"));
}

TEST_F(ScalePlannerTest, ScaleInOnlyAsFarAsNeeded) {
  auto state = State({Ready("web-a"), Unregistered("web-n1", std::chrono::minutes(20)),
                      Unregistered("web-n2", std::chrono::minutes(30))});
  auto plan = Plan(state, Policy(), 2);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute);
  EXPECT_EQ(DeletedNames(plan).size(), 1u);
  EXPECT_THAT(ActionsOf<SelectAndDrainAction>(plan), IsEmpty());
  EXPECT_THAT(ActionsOf<PurgeNodesAction>(plan), IsEmpty());  // node_purge is off
}

TEST_F(ScalePlannerTest, ScaleInPurgesSoftDeletedInstances) {
  auto state = State({Ready("web-a"), Ready("web-b"), WithState("web-d", InstanceState::kDeleted)});
  auto plan = Plan(state, Policy(), 1);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute);
  EXPECT_THAT(DeletedNames(plan), ElementsAre("web-d"));
  ASSERT_EQ(ActionsOf<SelectAndDrainAction>(plan).size(), 1u);
  EXPECT_EQ(ActionsOf<SelectAndDrainAction>(plan)[0].count, 1);
}

TEST_F(ScalePlannerTest, DrainCandidatesFollowNodeFilters) {
  auto state = State({Ready("web-a"), Ready("web-init"), Ready("web-inel"), Ready("web-busy")});
  state.instances[1].node->status = NodeStatus::kInitializing;
  state.instances[2].node->eligible = false;
  state.instances[3].node->draining = true;
  auto plan = Plan(state, Policy(), 3);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute);
  EXPECT_THAT(ActionsOf<SelectAndDrainAction>(plan)[0].candidates,
              UnorderedElementsAre("web-a", "web-inel"));
  plan = Plan(state,
              Policy({{"node_filter_ignore_ineligible", "false"},
                      {"node_filter_ignore_init", "true"},
                      {"node_filter_ignore_drain", "true"}}),
              3);
  EXPECT_THAT(ActionsOf<SelectAndDrainAction>(plan)[0].candidates,
              UnorderedElementsAre("web-a", "web-init", "web-busy"));
}

TEST_F(ScalePlannerTest, ScaleInShortfallIsReported) {
  auto state = State({Ready("web-a"), Ready("web-b")});
  state.instances[1].node->status = NodeStatus::kInitializing;
  auto plan = Plan(state, Policy(), 0);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute);
  EXPECT_EQ(ActionsOf<SelectAndDrainAction>(plan)[0].count, 1);
  EXPECT_THAT(plan.message, HasSubstr("only 1 of 2 can be removed now"));

  state.instances[0].node->status = NodeStatus::kInitializing;
  plan = Plan(state, Policy(), 0);
  EXPECT_EQ(plan.outcome, PlanOutcome::kRefused);
  EXPECT_THAT(plan.message, HasSubstr("no instance of pool web has a ready, removable Nomad node"));
}

TEST_F(ScalePlannerTest, ScaleInNeedsNomad) {
  auto state = State({Ready("web-a"), Ready("web-b")});
  state.nomad = {false, "connection refused"};
  auto plan = Plan(state, Policy(), 1);
  EXPECT_EQ(plan.outcome, PlanOutcome::kRefused);
  EXPECT_THAT(plan.message, HasSubstr("Nomad unreachable: connection refused"));
}

TEST_F(ScalePlannerTest, MaxInstancesRespected) {
  auto plan = Plan(State({Ready("web-a")}), Policy({{"max_instances", "3"}}), 4);
  EXPECT_EQ(plan.outcome, PlanOutcome::kRefused);
  EXPECT_FALSE(plan.ShouldExecute());
  EXPECT_THAT(plan.actions, IsEmpty());
  EXPECT_THAT(plan.message, HasSubstr("requested count 4 exceeds max_instances 3"));
  EXPECT_EQ(Plan(State({Ready("web-a")}), Policy({{"max_instances", "3"}}), 3).outcome,
            PlanOutcome::kExecute);
}

TEST_F(ScalePlannerTest, ScaleToCurrentCountIsNoop) {
  auto state = State({Ready("web-a"), Ready("web-b"), WithState("web-s", InstanceState::kStopped)});
  auto plan = Plan(state, Policy(), 2);
  EXPECT_EQ(plan.outcome, PlanOutcome::kNoop);
  EXPECT_FALSE(plan.ShouldExecute());
  EXPECT_THAT(plan.actions, IsEmpty());
  EXPECT_THAT(plan.message, HasSubstr("already has 2 instance(s)"));
}

TEST_F(ScalePlannerTest, ConcurrentScaleRefused) {
  auto state = State({Ready("web-a")});
  state.active_scale_request_id = "req-0";
  auto plan = Plan(state, Policy(), 3);
  EXPECT_EQ(plan.outcome, PlanOutcome::kRefused);
  EXPECT_THAT(plan.message, HasSubstr("another scale request (req-0) of pool web is in progress"));
  state.active_scale_request_id = "req-1";
  plan = Plan(state, Policy(), 3);
  EXPECT_EQ(plan.outcome, PlanOutcome::kRefused);
  EXPECT_THAT(plan.message, HasSubstr("scale request req-1 of pool web is already in progress"));
}

TEST_F(ScalePlannerTest, NegativeTargetRefused) {
  auto plan = Plan(State({}), Policy(), -2);
  EXPECT_EQ(plan.outcome, PlanOutcome::kRefused);
  EXPECT_THAT(plan.message, HasSubstr("must not be negative, got -2"));
}

TEST_F(ScalePlannerTest, ScaleOutWithoutImageRefusedNamingTheKey) {
  auto policy = ParsePoolPolicy({{"node_class", "web"}});  // Status works without an image
  auto plan = Plan(State({}), policy, 2);
  EXPECT_EQ(plan.outcome, PlanOutcome::kRefused);
  EXPECT_THAT(plan.message, HasSubstr("instance_image_name: required to scale out"));
  // Scaling in needs no image.
  EXPECT_EQ(Plan(State({Ready("web-a")}), policy, 0).outcome, PlanOutcome::kExecute);
}

TEST_F(ScalePlannerTest, NeverRegisteredInstanceReplacedOnScaleOut) {
  auto state = State({Ready("web-a"), Unregistered("web-never", std::chrono::minutes(15))});
  auto plan = Plan(state, Policy(), 3);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  EXPECT_THAT(DeletedNames(plan), ElementsAre("web-never"));
  EXPECT_THAT(std::get<DeleteAction>(plan.actions[0]).reason, HasSubstr("replaced"));
  EXPECT_EQ(ActionsOf<LaunchAction>(plan).size(), 2u);  // 1 missing + 1 replacement
}

TEST_F(ScalePlannerTest, InstanceStillRegisteringIsNotReplaced) {
  auto state = State({Ready("web-a"), Unregistered("web-new", std::chrono::minutes(2))});
  auto plan = Plan(state, Policy(), 3);
  EXPECT_THAT(DeletedNames(plan), IsEmpty());
  EXPECT_EQ(ActionsOf<LaunchAction>(plan).size(), 1u);
}

TEST_F(ScalePlannerTest, BackoffAfterRepeatedFailuresAndRecovery) {
  auto state = State({Ready("web-a")});
  state.RecordLaunchFailure("launch failed: image not found", Now() - std::chrono::seconds(1));
  state.RecordLaunchFailure("launch failed: image not found", Now());
  state.RecordLaunchFailure("launch failed: image not found", Now());
  auto plan = Plan(state, Policy(), 3);
  EXPECT_EQ(plan.outcome, PlanOutcome::kBackingOff);
  EXPECT_FALSE(plan.ShouldExecute());
  EXPECT_THAT(plan.actions, IsEmpty());
  ASSERT_TRUE(plan.retry_at);
  EXPECT_EQ(*plan.retry_at, Now() + std::chrono::seconds(40));
  EXPECT_THAT(plan.message, HasSubstr("backing off until 2027-01-15T08:00:40Z after 3 "
                                      "consecutive launch failure(s)"));
  EXPECT_THAT(plan.message, HasSubstr("image not found"));
  // Scaling in is not blocked by launch backoff.
  EXPECT_EQ(Plan(state, Policy(), 0).outcome, PlanOutcome::kExecute);
  // After the backoff the launch is planned again.
  plan = Plan(state, Policy(), 3, false, Now() + std::chrono::seconds(40));
  EXPECT_EQ(plan.outcome, PlanOutcome::kExecute);
  EXPECT_EQ(ActionsOf<LaunchAction>(plan).size(), 2u);
  // A success clears the backoff.
  state.RecordLaunchSuccess();
  EXPECT_EQ(Plan(state, Policy(), 3).outcome, PlanOutcome::kExecute);
}

TEST_F(ScalePlannerTest, DryRunPlansButDoesNotExecute) {
  auto plan = Plan(State({Ready("web-a")}), Policy(), 3, true);
  EXPECT_EQ(plan.outcome, PlanOutcome::kExecute);
  EXPECT_TRUE(plan.dry_run);
  EXPECT_FALSE(plan.ShouldExecute());
  EXPECT_EQ(ActionsOf<LaunchAction>(plan).size(), 2u);

  // The policy's dry-run key has the same effect.
  plan = Plan(State({Ready("web-a")}), Policy({{"dry-run", "true"}}), 3);
  EXPECT_TRUE(plan.dry_run);
  EXPECT_FALSE(plan.ShouldExecute());

  // A dry-run never conflicts with a running Scale: it changes nothing.
  auto busy = State({Ready("web-a")});
  busy.active_scale_request_id = "req-0";
  EXPECT_EQ(Plan(busy, Policy(), 0, true).outcome, PlanOutcome::kExecute);

  // The autoscaler's dry-run count is -1: nothing to plan, and no error.
  plan = Plan(State({Ready("web-a")}), Policy(), -1, true);
  EXPECT_EQ(plan.outcome, PlanOutcome::kNoop);
  EXPECT_TRUE(plan.dry_run);
  EXPECT_THAT(plan.actions, IsEmpty());

  // Limits still apply, so the operator sees what a real run would do.
  EXPECT_EQ(Plan(State({}), Policy({{"max_instances", "2"}}), 5, true).outcome,
            PlanOutcome::kRefused);
}

TEST_F(ScalePlannerTest, StoppedInstancesAreStartedBeforeLaunching) {
  auto state = State({Ready("web-a"), WithState("web-s1", InstanceState::kStopped),
                      WithState("web-s2", InstanceState::kSuspended),
                      WithState("web-s3", InstanceState::kStopped)});
  auto plan = Plan(state, Policy(), 3);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute);
  auto starts = ActionsOf<StartAction>(plan);
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_EQ(starts[0].name, "web-s1");
  EXPECT_EQ(starts[1].name, "web-s2");
  EXPECT_THAT(ActionsOf<LaunchAction>(plan), IsEmpty());
  // Starts alone need no image and are not held back by launch backoff.
  auto no_image = ParsePoolPolicy({{"node_class", "web"}});
  state.RecordLaunchFailure("boom", Now());
  EXPECT_EQ(Plan(state, no_image, 3).outcome, PlanOutcome::kExecute);

  plan = Plan(State({WithState("web-s1", InstanceState::kStopped)}), Policy(), 3);
  EXPECT_EQ(ActionsOf<StartAction>(plan).size(), 1u);
  EXPECT_EQ(ActionsOf<LaunchAction>(plan).size(), 2u);
  ASSERT_EQ(plan.actions.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<StartAction>(plan.actions[0]));
}

TEST_F(ScalePlannerTest, StoppedInstancesAreLeftAloneOnScaleIn) {
  auto state = State({Ready("web-a"), Ready("web-b"), WithState("web-s", InstanceState::kStopped)});
  auto plan = Plan(state, Policy(), 1);
  EXPECT_THAT(DeletedNames(plan), IsEmpty());
  EXPECT_THAT(ActionsOf<SelectAndDrainAction>(plan)[0].candidates,
              UnorderedElementsAre("web-a", "web-b"));
}

TEST_F(ScalePlannerTest, MultipassUnreachableRefused) {
  auto state = State({});
  state.multipass = {false, "socket closed"};
  auto plan = Plan(state, Policy(), 1);
  EXPECT_EQ(plan.outcome, PlanOutcome::kRefused);
  EXPECT_THAT(plan.message, HasSubstr("multipassd unreachable: socket closed"));
}

// Issue 16, defect 8: with a wrong nomad_token Status was not ready, yet a
// Scale 2 -> 4 launched two VMs.
TEST_F(ScalePlannerTest, NothingChangesWhileNomadCannotBeRead) {
  auto state = State({Ready("web-a"), Ready("web-b")});
  state.nomad = {false, "HTTP 403 Permission denied"};
  for (int target : {4, 1}) {
    auto plan = Plan(state, Policy(), target);
    EXPECT_EQ(plan.outcome, PlanOutcome::kRefused) << target;
    EXPECT_THAT(plan.actions, IsEmpty());
    EXPECT_THAT(plan.message, HasSubstr("Nomad unreachable: HTTP 403 Permission denied"));
  }
  // A dry run still shows what would happen.
  EXPECT_EQ(Plan(state, Policy(), 4, true).outcome, PlanOutcome::kExecute);
}

TEST_F(ScalePlannerTest, ReconcileReplacesNothingWhileNomadCannotBeRead) {
  auto state = State({Ready("web-a"), Unregistered("web-never", std::chrono::minutes(30))});
  state.nomad = {false, "connection refused"};
  auto plan = planner_.ReconcilePlan(state, Policy(), Now(), namer_);
  EXPECT_THAT(DeletedNames(plan), IsEmpty());
  EXPECT_THAT(ActionsOf<LaunchAction>(plan), IsEmpty());
}

TEST_F(ScalePlannerTest, ReconcileReplacesCleansAndPurges) {
  auto state = State({Ready("web-a"), Unregistered("web-never", std::chrono::minutes(30)),
                      WithState("web-d", InstanceState::kDeleted), Ready("webapp-x")});
  state.failed_launch_leftovers = {"web-half", "other-1"};
  state.orphan_nodes = {Node("node-gone", NodeStatus::kDown)};
  auto plan = planner_.ReconcilePlan(state, Policy({{"node_purge", "true"}}), Now(), namer_);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  EXPECT_EQ(plan.target, plan.current_count);
  EXPECT_THAT(DeletedNames(plan), ElementsAre("web-never", "web-half", "web-d"));
  auto launches = ActionsOf<LaunchAction>(plan);
  ASSERT_EQ(launches.size(), 1u);
  EXPECT_TRUE(BelongsToPool("web", launches[0].name));
  auto purges = ActionsOf<PurgeNodesAction>(plan);
  ASSERT_EQ(purges.size(), 1u);
  EXPECT_THAT(purges[0].node_ids, ElementsAre("node-gone"));
}

TEST_F(ScalePlannerTest, ReconcileDoesNotLaunchWhileBackingOff) {
  auto state = State({Unregistered("web-never", std::chrono::minutes(30))});
  state.RecordLaunchFailure("quota", Now());
  auto plan = planner_.ReconcilePlan(state, Policy(), Now(), namer_);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute);
  EXPECT_THAT(DeletedNames(plan), ElementsAre("web-never"));
  EXPECT_THAT(ActionsOf<LaunchAction>(plan), IsEmpty());
  EXPECT_THAT(plan.message, HasSubstr("no replacement launched: backing off"));
}

TEST_F(ScalePlannerTest, ReconcileIsNoopWhenHealthyOrWhileScaling) {
  auto state = State({Ready("web-a"), Unregistered("web-new", std::chrono::minutes(1))});
  EXPECT_EQ(planner_.ReconcilePlan(state, Policy(), Now(), namer_).outcome, PlanOutcome::kNoop);
  state.instances[1] = Unregistered("web-new", std::chrono::minutes(30));
  state.active_scale_request_id = "req-5";
  auto plan = planner_.ReconcilePlan(state, Policy(), Now(), namer_);
  EXPECT_EQ(plan.outcome, PlanOutcome::kNoop);
  EXPECT_THAT(plan.message, HasSubstr("req-5"));
}

TEST_F(ScalePlannerTest, InstancesWithOperationsAreNotTouched) {
  auto state =
      State({Ready("web-a"), Ready("web-b"), Unregistered("web-c", std::chrono::hours(1))});
  state.operations.push_back({OperationKind::kDelete, "web-c", Now(), "rec-1"});
  // web-c is being deleted: not counted, not deleted again.
  auto plan = Plan(state, Policy(), 1);
  EXPECT_EQ(plan.current_count, 2);
  EXPECT_THAT(DeletedNames(plan), IsEmpty());
  EXPECT_EQ(ActionsOf<SelectAndDrainAction>(plan)[0].count, 1);
}

// -- Warm pools (issue 14) --------------------------------------------------

Instance WarmStopped(std::string name) {
  auto i = WithState(std::move(name), InstanceState::kStopped);
  i.node = Node("node-" + i.name, NodeStatus::kDown);
  i.node->eligible = false;
  return i;
}

PoolState WarmState(std::vector<Instance> instances, std::vector<std::string> warm,
                    std::vector<std::string> warming = {}) {
  auto s = State(std::move(instances));
  for (auto& n : warm) s.warm[n] = WarmPhase::kWarm;
  for (auto& n : warming) s.warm[n] = WarmPhase::kWarming;
  return s;
}

TEST_F(ScalePlannerTest, WarmInstancesAreNeitherCountedNorReady) {
  auto state = WarmState({Ready("web-1"), WarmStopped("web-w1"), Unregistered("web-w2", 1h)},
                         {"web-w1"}, {"web-w2"});
  auto status = ComputeStatus(state, Policy({{"warm_pool_size", "2"}}), Now());
  EXPECT_EQ(status.count, 1);
  EXPECT_THAT(status.warm, ElementsAre("web-w1"));
  EXPECT_THAT(status.warming, ElementsAre("web-w2"));
  EXPECT_TRUE(status.stopped.empty());
  EXPECT_TRUE(status.ready) << ::testing::PrintToString(status.reasons);
  EXPECT_EQ(status.Meta().at(kMetaWarm), "web-w1");
  EXPECT_EQ(status.Meta().at(kMetaWarming), "web-w2");
}

TEST_F(ScalePlannerTest, WarmLaunchInFlightIsWarmingNotCounted) {
  auto state = WarmState({}, {}, {"web-w1"});
  state.operations.push_back({OperationKind::kLaunch, "web-w1", Now(), "reconcile-1"});
  auto status = ComputeStatus(state, Policy({{"warm_pool_size", "1"}}), Now());
  EXPECT_EQ(status.count, 0);
  EXPECT_THAT(status.warming, ElementsAre("web-w1"));
  EXPECT_TRUE(status.ready);
}

TEST_F(ScalePlannerTest, ScaleOutTakesWarmFirstThenLaunchesCold) {
  auto policy = Policy({{"warm_pool_size", "3"}});
  auto state = WarmState({WarmStopped("web-w1"), WarmStopped("web-w2"), WarmStopped("web-w3")},
                         {"web-w1", "web-w2", "web-w3"});
  auto plan = Plan(state, policy, 5);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  auto starts = ActionsOf<StartAction>(plan);
  ASSERT_EQ(starts.size(), 3u);
  std::set<std::string> replacements;
  for (const auto& s : starts) {
    EXPECT_TRUE(s.warm);
    EXPECT_TRUE(BelongsToPool("web", s.replacement));
    replacements.insert(s.replacement);
  }
  auto launches = ActionsOf<LaunchAction>(plan);
  ASSERT_EQ(launches.size(), 2u);
  for (const auto& l : launches) {
    EXPECT_FALSE(l.warm);
    EXPECT_FALSE(replacements.contains(l.name)) << "a reserved name launched twice";
  }
  EXPECT_EQ(replacements.size(), 3u);
  EXPECT_THAT(plan.message, HasSubstr("3 from the warm pool"));
}

TEST_F(ScalePlannerTest, ScaleInNeverSelectsWarmInstances) {
  auto state = WarmState({Ready("web-1"), Ready("web-2"), WarmStopped("web-w1")}, {"web-w1"});
  auto plan = Plan(state, Policy({{"warm_pool_size", "1"}}), 1);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  auto drains = ActionsOf<SelectAndDrainAction>(plan);
  ASSERT_EQ(drains.size(), 1u);
  EXPECT_THAT(drains[0].candidates, UnorderedElementsAre("web-1", "web-2"));
  EXPECT_EQ(drains[0].reuse, 0);
}

TEST_F(ScalePlannerTest, ScaleInWithReuseReturnsUpToTheWarmPoolsRoom) {
  auto policy = Policy({{"warm_pool_size", "3"}, {"warm_pool_reuse_on_scale_in", "true"}});
  auto state = WarmState(
      {Ready("web-1"), Ready("web-2"), Ready("web-3"), Ready("web-4"), Ready("web-5")}, {});
  auto plan = Plan(state, policy, 2);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  auto drains = ActionsOf<SelectAndDrainAction>(plan);
  ASSERT_EQ(drains.size(), 1u);
  EXPECT_EQ(drains[0].count, 3);
  EXPECT_EQ(drains[0].reuse, 3);

  state.warm["web-x"] = WarmPhase::kWarm;  // one slot taken
  plan = Plan(state, policy, 2);
  EXPECT_EQ(ActionsOf<SelectAndDrainAction>(plan)[0].reuse, 2);
}

TEST_F(ScalePlannerTest, RefillLaunchesWarmUpToSizeAsBackgroundWork) {
  auto policy = Policy({{"warm_pool_size", "3"}});
  auto plan = planner_.ReconcilePlan(WarmState({Ready("web-1")}, {}), policy, Now(), namer_);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  EXPECT_TRUE(plan.background);
  auto launches = ActionsOf<LaunchAction>(plan);
  ASSERT_EQ(launches.size(), 3u);
  for (const auto& l : launches) EXPECT_TRUE(l.warm);
}

TEST_F(ScalePlannerTest, RefillNeverPassesMaxPreparedNorMaxInstances) {
  auto policy = Policy({{"warm_pool_size", "3"}, {"max_instances", "4"}});
  auto plan = planner_.ReconcilePlan(WarmState({Ready("web-1"), Ready("web-2")}, {}), policy, Now(),
                                     namer_);
  EXPECT_EQ(ActionsOf<LaunchAction>(plan).size(), 2u);

  policy = Policy({{"warm_pool_size", "3"}, {"warm_pool_max_prepared", "3"}});
  plan = planner_.ReconcilePlan(WarmState({Ready("web-1"), Ready("web-2")}, {}), policy, Now(),
                                namer_);
  EXPECT_EQ(ActionsOf<LaunchAction>(plan).size(), 1u);
}

TEST_F(ScalePlannerTest, WhileAScaleRunsOnlyTheRefillIsPlannedAndInTheBackground) {
  // A counted instance that never registered: a repair, but not while the
  // Scale owns the pool.
  auto state = WarmState({Unregistered("web-1", 2h)}, {});
  state.active_scale_request_id = "req-9";
  auto policy = Policy({{"warm_pool_size", "3"}});
  auto plan = planner_.ReconcilePlan(state, policy, Now(), namer_);
  ASSERT_EQ(plan.outcome, PlanOutcome::kExecute) << plan.message;
  EXPECT_TRUE(plan.background);  // it does not take the pool's Scale slot
  auto launches = ActionsOf<LaunchAction>(plan);
  EXPECT_EQ(launches.size(), 3u);
  EXPECT_EQ(launches.size(), plan.actions.size());
  for (const auto& l : launches) EXPECT_TRUE(l.warm);

  // Instances the Scale is draining may come back to the warm pool
  // (reuse) and are still capacity until deleted: the refill leaves room.
  state = WarmState({Ready("web-1"), Ready("web-2")}, {});
  state.active_scale_request_id = "req-9";
  state.operations.push_back({OperationKind::kDrain, "web-1", Now(), "req-9"});
  state.operations.push_back({OperationKind::kDrain, "web-2", Now(), "req-9"});
  policy = Policy(
      {{"warm_pool_size", "3"}, {"max_instances", "4"}, {"warm_pool_reuse_on_scale_in", "true"}});
  plan = planner_.ReconcilePlan(state, policy, Now(), namer_);
  EXPECT_EQ(ActionsOf<LaunchAction>(plan).size(), 1u) << plan.message;
}

TEST_F(ScalePlannerTest, RefillWaitsForOtherRepairsAndBackoff) {
  auto policy = Policy({{"warm_pool_size", "2"}});
  auto state = WarmState({Unregistered("web-1", 2h)}, {});
  auto plan = planner_.ReconcilePlan(state, policy, Now(), namer_);
  EXPECT_FALSE(plan.background);
  for (const auto& l : ActionsOf<LaunchAction>(plan)) EXPECT_FALSE(l.warm);

  state = WarmState({}, {});
  state.launch_failures.consecutive = 1;
  state.launch_failures.next_retry_at = Now() + 10s;
  plan = planner_.ReconcilePlan(state, policy, Now(), namer_);
  EXPECT_TRUE(ActionsOf<LaunchAction>(plan).empty());
  EXPECT_THAT(plan.message, HasSubstr("warm pool not refilled"));
}

TEST_F(ScalePlannerTest, WarmingInstanceNobodyPreparesIsFinished) {
  auto warming = Ready("web-w1");
  auto plan = planner_.ReconcilePlan(WarmState({warming}, {}, {"web-w1"}),
                                     Policy({{"warm_pool_size", "1"}}), Now(), namer_);
  auto prepare = ActionsOf<PrepareWarmAction>(plan);
  ASSERT_EQ(prepare.size(), 1u);
  EXPECT_EQ(prepare[0].name, "web-w1");
  EXPECT_TRUE(ActionsOf<LaunchAction>(plan).empty());
}

TEST_F(ScalePlannerTest, WarmInstancesBeyondTheSizeAreDeleted) {
  auto plan = planner_.ReconcilePlan(
      WarmState({WarmStopped("web-w1"), WarmStopped("web-w2")}, {"web-w1", "web-w2"}),
      Policy({{"warm_pool_size", "1"}}), Now(), namer_);
  EXPECT_THAT(DeletedNames(plan), ElementsAre("web-w2"));
}

TEST_F(ScalePlannerTest, DownNodeOfAWarmInstanceIsNoOrphan) {
  auto state = WarmState({WarmStopped("web-w1")}, {"web-w1"});
  auto plan = planner_.ReconcilePlan(
      state, Policy({{"warm_pool_size", "1"}, {"node_purge", "true"}}), Now(), namer_);
  EXPECT_TRUE(ActionsOf<PurgeNodesAction>(plan).empty());
  EXPECT_TRUE(plan.actions.empty()) << plan.message;
}

}  // namespace
}  // namespace mps::scaling
