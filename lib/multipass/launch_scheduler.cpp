#include "multipass/launch_scheduler.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "multipass/launch_validation.h"

namespace mps::multipass {

LaunchScheduler::LaunchScheduler(Launcher launcher, std::size_t max_parallel,
                                 bool first_of_an_image_alone)
    : launcher_(std::move(launcher)),
      max_parallel_(std::max<std::size_t>(1, max_parallel)),
      first_of_an_image_alone_(first_of_an_image_alone) {
  workers_.reserve(max_parallel_);
  for (std::size_t i = 0; i < max_parallel_; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

LaunchScheduler::LaunchScheduler(MultipassClient& client, std::size_t max_parallel)
    : LaunchScheduler([&client](const LaunchSpec& spec) { return client.Launch(spec); },
                      max_parallel) {}

LaunchScheduler::~LaunchScheduler() {
  Shutdown();
}

void LaunchScheduler::Submit(LaunchSpec spec, Completion done) {
  ValidateInstanceName(spec.name);
  std::lock_guard lock(mutex_);
  if (stopping_) {
    throw MultipassError(MultipassError::Kind::cancelled,
                         "launch " + spec.name + ": the launch scheduler is shut down", spec.name);
  }
  const bool queued = std::any_of(queue_.begin(), queue_.end(),
                                  [&](const Job& j) { return j.spec.name == spec.name; });
  if (queued || running_.contains(spec.name)) {
    throw MultipassError(MultipassError::Kind::name_taken,
                         "launch " + spec.name + ": a launch of that name is already in flight",
                         spec.name);
  }
  queue_.push_back(Job{std::move(spec), std::move(done), Clock::now(), std::nullopt});
  wake_.notify_all();
}

std::vector<LaunchScheduler::InFlight> LaunchScheduler::InFlightLaunches() const {
  std::lock_guard lock(mutex_);
  std::vector<InFlight> out;
  for (const auto& [name, job] : running_) {
    out.push_back(InFlight{name, job.spec.image, job.submitted_at, job.started_at});
  }
  for (const auto& job : queue_) {
    out.push_back(InFlight{job.spec.name, job.spec.image, job.submitted_at, std::nullopt});
  }
  return out;
}

std::deque<LaunchScheduler::Job>::iterator LaunchScheduler::NextRunnable() {
  return std::find_if(queue_.begin(), queue_.end(), [&](const Job& j) {
    return !first_of_an_image_alone_ || proven_images_.contains(j.spec.image) ||
           !first_launch_running_.contains(j.spec.image);
  });
}

void LaunchScheduler::WorkerLoop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    auto it = queue_.end();
    wake_.wait(lock, [&] {
      if (stopping_) return true;
      it = NextRunnable();
      return it != queue_.end();
    });
    if (stopping_) return;

    Job job = std::move(*it);
    queue_.erase(it);
    const std::string image = job.spec.image;
    const bool first = first_of_an_image_alone_ && !proven_images_.contains(image);
    if (first) first_launch_running_.insert(image);
    job.started_at = Clock::now();
    const std::string name = job.spec.name;
    const LaunchSpec spec = job.spec;
    const Completion done = job.done;
    running_.emplace(name, std::move(job));
    lock.unlock();

    std::optional<MultipassError> error;
    try {
      launcher_(spec);
    } catch (const MultipassError& e) {
      error = e;
    } catch (const std::exception& e) {
      error =
          MultipassError(MultipassError::Kind::internal, "launch " + name + ": " + e.what(), name);
    }

    lock.lock();
    running_.erase(name);
    if (first) first_launch_running_.erase(image);
    if (!error && first_of_an_image_alone_) proven_images_.insert(image);
    if (first && error) {
      spdlog::info("first launch of image '{}' failed; the next launch of it runs alone",
                   image.empty() ? "(default)" : image);
    }
    wake_.notify_all();
    lock.unlock();
    if (done) done(spec, error);
    lock.lock();
  }
}

std::vector<std::string> LaunchScheduler::Stop(std::chrono::milliseconds grace) {
  std::deque<Job> cancelled;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    cancelled.swap(queue_);
    wake_.notify_all();
  }
  for (auto& job : cancelled) {
    if (!job.done) continue;
    job.done(job.spec, MultipassError(MultipassError::Kind::cancelled,
                                      "launch " + job.spec.name +
                                          ": cancelled before it started (scheduler shut down)",
                                      job.spec.name));
  }
  std::unique_lock lock(mutex_);
  // Workers notify wake_ whenever a launch ends.
  if (grace == std::chrono::milliseconds::max()) {
    wake_.wait(lock, [&] { return running_.empty(); });
  } else {
    wake_.wait_for(lock, grace, [&] { return running_.empty(); });
  }
  std::vector<std::string> still;
  for (const auto& [name, job] : running_) still.push_back(name);
  return still;
}

void LaunchScheduler::Shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && workers_.empty()) return;
  }
  Stop(std::chrono::milliseconds::max());
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  std::lock_guard lock(mutex_);
  workers_.clear();
}

}  // namespace mps::multipass
