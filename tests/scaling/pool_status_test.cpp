#include "scaling/pool_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "pool_fixture.h"

namespace mps::scaling {
namespace {

using namespace mps::scaling::testing;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(PoolStatus, AllReadyPool) {
  auto state = State({Ready("web-a"), Ready("web-b"), Ready("web-c")});
  state.last_event_ns = 1'700'000'000'123'456'789;
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_EQ(status.count, 3);
  EXPECT_TRUE(status.ready);
  EXPECT_THAT(status.reasons, IsEmpty());
  EXPECT_EQ(status.last_event_ns, 1'700'000'000'123'456'789);
  auto meta = status.Meta();
  EXPECT_EQ(meta.at("nomad_autoscaler.last_event"), "1700000000123456789");
  EXPECT_EQ(meta.size(), 1u);
}

TEST(PoolStatus, NoLastEventMeansNoMetaKey) {
  auto status = ComputeStatus(State({}), Policy(), Now());
  EXPECT_EQ(status.count, 0);
  EXPECT_TRUE(status.ready);
  EXPECT_FALSE(status.Meta().contains(kMetaLastEvent));
}

TEST(PoolStatus, OnlyThePoolsInstancesCount) {
  auto status =
      ComputeStatus(State({Ready("web-a"), Ready("webapp-1"), Ready("api-1")}), Policy(), Now());
  EXPECT_EQ(status.count, 1);
  EXPECT_THAT(status.counted, ElementsAre("web-a"));
}

TEST(PoolStatus, StoppedSuspendedDeletedUnknownAreListedNotCounted) {
  auto state = State({Ready("web-a"), WithState("web-s", InstanceState::kStopped),
                      WithState("web-p", InstanceState::kSuspended),
                      WithState("web-d", InstanceState::kDeleted),
                      WithState("web-u", InstanceState::kUnknown)});
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_EQ(status.count, 1);
  EXPECT_TRUE(status.ready);
  EXPECT_THAT(status.stopped, ElementsAre("web-s"));
  EXPECT_THAT(status.suspended, ElementsAre("web-p"));
  EXPECT_THAT(status.deleted, ElementsAre("web-d"));
  EXPECT_THAT(status.unknown, ElementsAre("web-u"));
  auto meta = status.Meta();
  EXPECT_EQ(meta.at(kMetaStopped), "web-s");
  EXPECT_EQ(meta.at(kMetaDeleted), "web-d");
}

TEST(PoolStatus, LaunchInFlightCountsAndIsNotReady) {
  auto state = State({Ready("web-a")});
  state.operations.push_back(
      {OperationKind::kLaunch, "web-new", Now() - std::chrono::seconds(42), "req-1"});
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_EQ(status.count, 2);  // requested, not listed yet
  EXPECT_FALSE(status.ready);
  EXPECT_THAT(status.reasons, ElementsAre("launch of web-new in flight for 42s (request req-1)"));
  EXPECT_EQ(status.Meta().at(kMetaNotReady), status.reasons[0]);
}

TEST(PoolStatus, ListedLaunchIsCountedOnce) {
  auto state = State({WithState("web-new", InstanceState::kStarting)});
  state.operations.push_back({OperationKind::kLaunch, "web-new", Now(), "req-1"});
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_EQ(status.count, 1);
  EXPECT_FALSE(status.ready);
}

TEST(PoolStatus, DrainAndDeleteInFlightAreNotCountedAndNotReady) {
  auto state = State({Ready("web-a"), Ready("web-b"), Ready("web-c")});
  state.operations.push_back({OperationKind::kDrain, "web-b", Now(), "req-2"});
  state.operations.push_back({OperationKind::kDelete, "web-c", Now(), "req-2"});
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_EQ(status.count, 1);
  EXPECT_FALSE(status.ready);
  EXPECT_EQ(status.reasons.size(), 2u);
  EXPECT_THAT(status.reasons[0], HasSubstr("drain of web-b"));
  EXPECT_THAT(status.reasons[1], HasSubstr("delete of web-c"));
}

TEST(PoolStatus, StartInFlightCountsTheStoppedInstance) {
  auto state = State({WithState("web-s", InstanceState::kStopped)});
  state.operations.push_back({OperationKind::kStart, "web-s", Now(), "req-3"});
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_EQ(status.count, 1);
  EXPECT_THAT(status.stopped, IsEmpty());
  EXPECT_FALSE(status.ready);
}

TEST(PoolStatus, RunningWithoutNodeIsNotReady) {
  auto state = State({Ready("web-a"), Unregistered("web-b", std::chrono::seconds(90))});
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_EQ(status.count, 2);
  EXPECT_FALSE(status.ready);
  EXPECT_THAT(status.reasons,
              ElementsAre("web-b is running, its Nomad node has not registered yet (waiting for "
                          "1m30s)"));
}

TEST(PoolStatus, NeverRegisteredIsReportedForReplacement) {
  auto state = State({Unregistered("web-b", std::chrono::minutes(11))});
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_FALSE(status.ready);
  EXPECT_THAT(status.reasons,
              ElementsAre("web-b has not registered as a Nomad node within 10m0s; it will be "
                          "replaced"));
  EXPECT_TRUE(RegistrationTimedOut(state, state.instances[0], Policy(), Now()));
  EXPECT_FALSE(RegistrationTimedOut(state, state.instances[0],
                                    Policy({{"node_registration_timeout", "12m"}}), Now()));
}

TEST(PoolStatus, StartingInstanceIsNotReady) {
  auto state = State({WithState("web-a", InstanceState::kStarting)});
  state.instances[0].launched_at = Now() - std::chrono::minutes(1);
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_EQ(status.count, 1);
  EXPECT_FALSE(status.ready);
  EXPECT_THAT(status.reasons, ElementsAre("web-a is starting"));
}

TEST(PoolStatus, InitializingOrForeignDrainingNodeIsNotReady) {
  auto state = State({Ready("web-a"), Ready("web-b")});
  state.instances[0].node->status = NodeStatus::kInitializing;
  state.instances[1].node->draining = true;
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_FALSE(status.ready);
  EXPECT_THAT(status.reasons, ElementsAre("Nomad node node-web-a of web-a is initializing",
                                          "Nomad node node-web-b of web-b is draining"));
}

// Issue 16, defect 9: with state.db emptied between runs, a node our lost
// drain had made ineligible was counted as ready capacity.
TEST(PoolStatus, AnIneligibleNodeWithoutARecordedDrainIsNotReadyCapacity) {
  auto state = State({Ready("web-a"), Ready("web-b")});
  state.instances[1].node->eligible = false;
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_FALSE(status.ready);
  ASSERT_EQ(status.reasons.size(), 1u);
  EXPECT_THAT(status.reasons[0], HasSubstr("node-web-b of web-b is ineligible and no drain"));
}

TEST(PoolStatus, UnreachableBackendsAreNotReady) {
  auto state = State({Ready("web-a")});
  state.multipass = {false, "connect: no such file /run/multipass_socket"};
  state.nomad = {false, "HTTP 503 from http://127.0.0.1:4646"};
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_EQ(status.count, 1);  // from the cache, not a live query
  EXPECT_FALSE(status.ready);
  EXPECT_THAT(status.reasons,
              ElementsAre("multipassd unreachable: connect: no such file /run/multipass_socket",
                          "Nomad unreachable: HTTP 503 from http://127.0.0.1:4646"));
}

TEST(PoolStatus, ActiveScaleRequestIsNotReady) {
  auto state = State({Ready("web-a")});
  state.active_scale_request_id = "req-9";
  auto status = ComputeStatus(state, Policy(), Now());
  EXPECT_FALSE(status.ready);
  EXPECT_THAT(status.reasons, ElementsAre("scale request req-9 in progress"));
}

TEST(PoolStatus, LaunchBackoffIsNotReadyUntilRetryTime) {
  auto state = State({Ready("web-a")});
  state.RecordLaunchFailure("image \"jammy\" not found", Now());
  auto status = ComputeStatus(state, Policy(), Now() + std::chrono::seconds(5));
  EXPECT_FALSE(status.ready);
  ASSERT_EQ(status.reasons.size(), 1u);
  EXPECT_THAT(status.reasons[0], HasSubstr("launch backoff until 2027-01-15T08:00:10Z"));
  EXPECT_THAT(status.reasons[0], HasSubstr("1 consecutive launch failure(s)"));
  EXPECT_THAT(status.reasons[0], HasSubstr("image \"jammy\" not found"));
  // Once the backoff expires the autoscaler may ask again.
  EXPECT_TRUE(ComputeStatus(state, Policy(), Now() + std::chrono::seconds(10)).ready);
}

TEST(LaunchBackoff, DoublesFromTenSecondsCappedAtFiveMinutes) {
  EXPECT_EQ(LaunchBackoff(0), std::chrono::seconds(0));
  EXPECT_EQ(LaunchBackoff(1), std::chrono::seconds(10));
  EXPECT_EQ(LaunchBackoff(2), std::chrono::seconds(20));
  EXPECT_EQ(LaunchBackoff(5), std::chrono::seconds(160));
  EXPECT_EQ(LaunchBackoff(6), std::chrono::seconds(300));
  EXPECT_EQ(LaunchBackoff(1000), std::chrono::seconds(300));
  PoolState state;
  state.RecordLaunchFailure("a", Now());
  state.RecordLaunchFailure("b", Now());
  EXPECT_EQ(state.launch_failures.consecutive, 2);
  EXPECT_EQ(state.launch_failures.last_error, "b");
  EXPECT_EQ(state.launch_failures.next_retry_at, Now() + std::chrono::seconds(20));
  state.RecordLaunchSuccess();
  EXPECT_EQ(state.launch_failures.consecutive, 0);
  EXPECT_FALSE(state.launch_failures.next_retry_at);
}

// Issue 16, defect 5: six launches of one request failing at once (one
// cause) froze the pool in a 5-minute backoff; they count as one failure.
TEST(LaunchBackoffTest, FailuresOfOneRequestCountOnce) {
  PoolState state;
  for (int i = 0; i < 6; ++i) state.RecordLaunchFailure("daemon restarted", Now(), "req-1");
  EXPECT_EQ(state.launch_failures.consecutive, 1);
  EXPECT_EQ(state.launch_failures.next_retry_at, Now() + std::chrono::seconds(10));
  state.RecordLaunchFailure("again", Now(), "req-2");
  EXPECT_EQ(state.launch_failures.consecutive, 2);
  EXPECT_EQ(state.launch_failures.last_error, "again");
}

}  // namespace
}  // namespace mps::scaling
