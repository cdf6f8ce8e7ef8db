#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "daemon_fixture.h"
#include "multipass/launch_scheduler.h"

namespace mps::multipass::testing {
namespace {

using ::testing::UnorderedElementsAre;
using Kind = MultipassError::Kind;
using State = FakeMultipassd::State;
using std::chrono::seconds;

// Collects scheduler completions so tests can wait for them.
class Outcomes {
 public:
  LaunchScheduler::Completion Callback() {
    return [this](const LaunchSpec& spec, const std::optional<MultipassError>& error) {
      std::lock_guard lock(mutex_);
      done_.insert_or_assign(spec.name, error);
      cv_.notify_all();
    };
  }
  bool WaitFor(std::size_t count, std::chrono::milliseconds timeout = seconds(10)) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return done_.size() >= count; });
  }
  bool WaitForName(const std::string& name) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, seconds(10), [&] { return done_.contains(name); });
  }
  std::optional<MultipassError> Get(const std::string& name) {
    std::lock_guard lock(mutex_);
    return done_.at(name);
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, std::optional<MultipassError>> done_;
};

LaunchSpec Spec(const std::string& name, const std::string& image) {
  LaunchSpec spec;
  spec.name = name;
  spec.image = image;
  return spec;
}

using SchedulerTest = DaemonTest;

TEST_F(SchedulerTest, ConcurrencyReachesButNeverExceedsTheBound) {
  MultipassClient client(Options());
  LaunchScheduler scheduler(client, 3);
  Outcomes outcomes;
  scheduler.Submit(Spec("warm", "noble"), outcomes.Callback());  // proves the image
  ASSERT_TRUE(outcomes.WaitFor(1));
  ASSERT_FALSE(outcomes.Get("warm"));

  fake_->With([](State& s) { s.hold_launches = true; });
  for (int i = 0; i < 8; ++i) {
    scheduler.Submit(Spec("w-" + std::to_string(i), "noble"), outcomes.Callback());
  }
  ASSERT_TRUE(fake_->WaitUntil([](const State& s) { return s.running_launches == 3; }));

  const auto in_flight = scheduler.InFlightLaunches();
  ASSERT_EQ(in_flight.size(), 8u);
  int started = 0;
  for (const auto& f : in_flight) {
    EXPECT_EQ(f.image, "noble");
    EXPECT_THAT(f.name, ::testing::StartsWith("w-"));
    if (f.started_at) {
      ++started;
      EXPECT_GE(*f.started_at, f.submitted_at);
    }
  }
  EXPECT_EQ(started, 3);

  fake_->ReleaseAll();
  ASSERT_TRUE(outcomes.WaitFor(9));
  for (int i = 0; i < 8; ++i) EXPECT_FALSE(outcomes.Get("w-" + std::to_string(i)));
  fake_->With([](State& s) { EXPECT_EQ(s.max_running_launches, 3); });
  EXPECT_TRUE(scheduler.InFlightLaunches().empty());
}

TEST_F(SchedulerTest, FirstLaunchOfAnImageRunsAloneOtherImagesProceed) {
  MultipassClient client(Options());
  LaunchScheduler scheduler(client, 4);
  Outcomes outcomes;
  fake_->With([](State& s) { s.hold_launches = true; });
  for (const char* n : {"n-1", "n-2", "n-3"})
    scheduler.Submit(Spec(n, "noble"), outcomes.Callback());
  scheduler.Submit(Spec("j-1", "jammy"), outcomes.Callback());

  // j-1 was queued after n-2/n-3 and started with free workers to spare: the
  // noble launches still waiting are held back by the first-launch rule.
  ASSERT_TRUE(fake_->WaitUntil([](const State& s) {
    return s.running_names.contains("n-1") && s.running_names.contains("j-1");
  }));
  fake_->With([](State& s) {
    EXPECT_EQ(s.running_launches, 2);
    EXPECT_EQ(s.running_by_image["noble"], 1);
  });

  fake_->Release("n-1");
  ASSERT_TRUE(outcomes.WaitForName("n-1"));
  EXPECT_FALSE(outcomes.Get("n-1"));
  ASSERT_TRUE(fake_->WaitUntil([](const State& s) {
    return s.running_names.contains("n-2") && s.running_names.contains("n-3");
  }));
  fake_->With([](State& s) { EXPECT_EQ(s.running_launches, 3); });  // n-2, n-3, j-1 together
  fake_->ReleaseAll();
  ASSERT_TRUE(outcomes.WaitFor(4));
}

TEST_F(SchedulerTest, WithoutTheImageRuleJobsOfOneImageRunTogether) {
  // As the session runs starts: the launcher is the caller's, and jobs of
  // the same (empty) image do not wait for a first one.
  MultipassClient client(Options());
  LaunchScheduler scheduler([&client](const LaunchSpec& spec) { return client.Launch(spec); }, 4,
                            /*first_of_an_image_alone=*/false);
  Outcomes outcomes;
  fake_->With([](State& s) { s.hold_launches = true; });
  for (const char* n : {"n-1", "n-2", "n-3"})
    scheduler.Submit(Spec(n, "noble"), outcomes.Callback());
  ASSERT_TRUE(fake_->WaitUntil([](const State& s) { return s.running_launches == 3; }));
  fake_->With([](State& s) { EXPECT_EQ(s.running_by_image["noble"], 3); });
  fake_->ReleaseAll();
  ASSERT_TRUE(outcomes.WaitFor(3));
}

TEST_F(SchedulerTest, FailedFirstLaunchHandsTheRoleToTheNextWaiting) {
  MultipassClient client(Options());
  LaunchScheduler scheduler(client, 4);
  Outcomes outcomes;
  fake_->With([](State& s) {
    s.hold_launches = true;
    s.launch_failures["f-1"] =
        grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "Cannot resize instance image");
  });
  for (const char* n : {"f-1", "f-2", "f-3"})
    scheduler.Submit(Spec(n, "focal"), outcomes.Callback());
  ASSERT_TRUE(fake_->WaitUntil([](const State& s) { return s.running_names.contains("f-1"); }));
  fake_->With([](State& s) { EXPECT_EQ(s.running_launches, 1); });

  fake_->Release("f-1");
  ASSERT_TRUE(outcomes.WaitForName("f-1"));
  ASSERT_TRUE(outcomes.Get("f-1"));
  EXPECT_EQ(outcomes.Get("f-1")->kind, Kind::image_not_found);
  ASSERT_TRUE(fake_->WaitUntil([](const State& s) { return s.running_launches == 1; }));
  fake_->With([](State& s) {
    EXPECT_THAT(s.running_names, UnorderedElementsAre("f-2"));  // the new first, alone
  });
  auto in_flight = scheduler.InFlightLaunches();
  ASSERT_EQ(in_flight.size(), 2u);

  fake_->Release("f-2");
  fake_->Release("f-3");
  ASSERT_TRUE(outcomes.WaitFor(3));
  EXPECT_FALSE(outcomes.Get("f-2"));
  EXPECT_FALSE(outcomes.Get("f-3"));
}

TEST_F(SchedulerTest, ShutdownCancelsQueuedAndWaitsForRunning) {
  MultipassClient client(Options());
  LaunchScheduler scheduler(client, 1);
  Outcomes outcomes;
  fake_->With([](State& s) { s.hold_launches = true; });
  scheduler.Submit(Spec("s-1", "noble"), outcomes.Callback());
  scheduler.Submit(Spec("s-2", "noble"), outcomes.Callback());
  ASSERT_TRUE(fake_->WaitUntil([](const State& s) { return s.running_names.contains("s-1"); }));

  std::thread stopper([&] { scheduler.Shutdown(); });
  ASSERT_TRUE(outcomes.WaitForName("s-2"));
  ASSERT_TRUE(outcomes.Get("s-2"));
  EXPECT_EQ(outcomes.Get("s-2")->kind, Kind::cancelled);
  fake_->Release("s-1");
  stopper.join();
  ASSERT_TRUE(outcomes.WaitForName("s-1"));
  EXPECT_FALSE(outcomes.Get("s-1"));  // finished, not interrupted
  fake_->With([](State& s) { EXPECT_EQ(s.launch_requests.size(), 1u); });
  try {
    scheduler.Submit(Spec("s-3", "noble"), outcomes.Callback());
    ADD_FAILURE() << "submit after shutdown accepted";
  } catch (const MultipassError& e) {
    EXPECT_EQ(e.kind, Kind::cancelled);
  }
}

TEST_F(SchedulerTest, RejectsBadAndDuplicateNames) {
  MultipassClient client(Options());
  LaunchScheduler scheduler(client, 1);
  Outcomes outcomes;
  fake_->With([](State& s) { s.hold_launches = true; });
  scheduler.Submit(Spec("d-1", "noble"), outcomes.Callback());
  try {
    scheduler.Submit(Spec("d-1", "noble"), outcomes.Callback());
    ADD_FAILURE() << "duplicate accepted";
  } catch (const MultipassError& e) {
    EXPECT_EQ(e.kind, Kind::name_taken);
  }
  try {
    scheduler.Submit(Spec("", "noble"), outcomes.Callback());
    ADD_FAILURE() << "empty name accepted";
  } catch (const MultipassError& e) {
    EXPECT_EQ(e.kind, Kind::invalid_name);
  }
  fake_->ReleaseAll();
  ASSERT_TRUE(outcomes.WaitFor(1));
}

}  // namespace
}  // namespace mps::multipass::testing
