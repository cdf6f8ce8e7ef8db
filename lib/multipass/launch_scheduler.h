#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "multipass/multipass_client.h"
#include "multipass/multipass_error.h"

namespace mps::multipass {

// Runs launches in parallel on its own threads, at most max_parallel at once.
// The first launch of an image this process has not launched successfully yet
// runs alone (other launches of that image wait; other images proceed): two
// concurrent first launches make multipassd download the image twice and fail
// with "Cannot resize instance image". When that first launch fails, the next
// waiting launch of the image becomes the first.
class LaunchScheduler {
 public:
  using Clock = std::chrono::steady_clock;
  // Performs one launch and returns the instance name; throws MultipassError.
  using Launcher = std::function<std::string(const LaunchSpec&)>;
  // error is empty on success. Called on a worker thread (or, for launches
  // cancelled by Shutdown, on the thread calling Shutdown), never under a lock.
  using Completion =
      std::function<void(const LaunchSpec& spec, const std::optional<MultipassError>& error)>;

  struct InFlight {
    std::string name;
    std::string image;
    Clock::time_point submitted_at;
    std::optional<Clock::time_point> started_at;  // empty while waiting for a slot/first launch
  };

  // first_of_an_image_alone false: jobs that are no launches (starts of
  // stopped instances) run in submission order with no image rule.
  LaunchScheduler(Launcher launcher, std::size_t max_parallel, bool first_of_an_image_alone = true);
  // Launches through client.Launch (no progress callback).
  LaunchScheduler(MultipassClient& client, std::size_t max_parallel);
  ~LaunchScheduler();  // Shutdown()
  LaunchScheduler(const LaunchScheduler&) = delete;
  LaunchScheduler& operator=(const LaunchScheduler&) = delete;

  // Queues a launch. spec.name is required (it is how in-flight launches are
  // reported); throws MultipassError invalid_name for a bad name, name_taken
  // when a launch of that name is already queued or running, cancelled after
  // Shutdown.
  void Submit(LaunchSpec spec, Completion done);

  // Queued and running launches: the instances multipassd may not list yet.
  std::vector<InFlight> InFlightLaunches() const;
  std::size_t max_parallel() const { return max_parallel_; }

  // Refuses new launches (Submit throws `cancelled`), reports the queued ones
  // that have not started as `cancelled`, and waits up to `grace` for the
  // running ones, which it does not interrupt itself (cancel their calls to
  // end them sooner). Returns the names still running after the grace.
  std::vector<std::string> Stop(std::chrono::milliseconds grace);

  // Stop() without a time limit (running launches report their real
  // outcome), then joins the threads. Idempotent.
  void Shutdown();

 private:
  struct Job {
    LaunchSpec spec;
    Completion done;
    Clock::time_point submitted_at;
    std::optional<Clock::time_point> started_at;
  };

  void WorkerLoop();
  // The first queued job allowed to start now, or jobs_.end(). Needs mutex_.
  std::deque<Job>::iterator NextRunnable();

  Launcher launcher_;
  std::size_t max_parallel_;
  bool first_of_an_image_alone_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;                       // waiting, in submission order
  std::map<std::string, Job> running_;          // by instance name
  std::set<std::string> proven_images_;         // launched successfully at least once
  std::set<std::string> first_launch_running_;  // images whose first launch is running
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace mps::multipass
