#include "nomad/drain_coordinator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <thread>

#include "config/go_values.h"
#include "nomad/acl_check.h"
#include "nomad/nomad_error.h"

namespace mps::nomad {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

milliseconds Since(Clock::time_point t) {
  return duration_cast<milliseconds>(Clock::now() - t);
}

}  // namespace

DrainOptions DrainOptions::FromPolicyConfig(const std::map<std::string, std::string>& config) {
  DrainOptions o;
  if (auto it = config.find("node_drain_deadline"); it != config.end() && !it->second.empty()) {
    auto d = config::ParseGoDuration(it->second);
    if (!d) {
      throw NomadConfigError(
          "node_drain_deadline",
          "expected a Go duration such as 15m, 0 or -1s, got \"" + it->second + "\"");
    }
    o.deadline = *d;
  }
  if (auto it = config.find("node_drain_ignore_system_jobs");
      it != config.end() && !it->second.empty()) {
    auto b = config::ParseGoBool(it->second);
    if (!b) {
      throw NomadConfigError("node_drain_ignore_system_jobs",
                             "expected a boolean (true/false/1/0), got \"" + it->second + "\"");
    }
    o.ignore_system_jobs = *b;
  }
  return o;
}

DrainSpec DrainOptions::Spec() const {
  return DrainSpec{deadline.count(), ignore_system_jobs};
}

milliseconds DrainOptions::Guard() const {
  if (deadline.count() > 0) return duration_cast<milliseconds>(deadline) + grace;
  if (deadline.count() < 0) return grace;
  return no_deadline_limit;
}

std::string_view OutcomeName(DrainOutcome o) {
  switch (o) {
    case DrainOutcome::drained:
      return "drained";
    case DrainOutcome::drain_failed:
      return "drain_failed";
    case DrainOutcome::gone:
      return "gone";
  }
  return "unknown";
}

DrainCoordinator::DrainCoordinator(const NomadApi& api, DrainOptions options, DrainEventSink events)
    : api_(api), options_(options), events_(std::move(events)) {}

void DrainCoordinator::Emit(const char* type, const std::string& node_id,
                            nlohmann::json fields) const {
  if (events_) events_(type, node_id, std::move(fields));
}

std::vector<NodeDrainResult> DrainCoordinator::DrainAll(
    const std::vector<std::string>& node_ids) const {
  if (options_.require_job_read_everywhere && !node_ids.empty()) {
    auto gap = ReadTokenCapabilities(api_).JobReadGap();
    if (!gap.empty()) {
      throw NomadError(NomadError::Kind::forbidden, 403,
                       "refusing to drain " + std::to_string(node_ids.size()) + " node(s): " + gap +
                           ", so the drain watch could call a node drained while its "
                           "allocations still run");
    }
  }
  std::vector<NodeDrainResult> results(node_ids.size());
  std::vector<std::exception_ptr> errors(node_ids.size());
  std::vector<std::thread> workers;
  workers.reserve(node_ids.size());
  for (std::size_t i = 0; i < node_ids.size(); ++i) {
    workers.emplace_back([this, &results, &errors, &node_ids, i] {
      try {
        results[i] = Drain(node_ids[i]);
      } catch (...) {
        errors[i] = std::current_exception();
      }
    });
  }
  // Each worker waits in a blocking query: a Cancel() ends them all at once.
  for (auto& w : workers) w.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  return results;
}

NodeDrainResult DrainCoordinator::Drain(const std::string& node_id) const {
  const auto start = Clock::now();
  const auto guard_end = start + options_.Guard();
  const milliseconds query_wait = options_.query_wait.count() > 0
                                      ? options_.query_wait
                                      : duration_cast<milliseconds>(api_.config().block_query_wait);
  NodeDrainResult r;
  r.node_id = node_id;

  auto fail = [&](std::string reason) {
    r.outcome = DrainOutcome::drain_failed;
    r.reason = std::move(reason);
    r.elapsed = Since(start);
    spdlog::warn("drain of node {} failed: {}", node_id, r.reason);
    Emit("node.drain_failed", node_id, {{"reason", r.reason}, {"elapsed_ms", r.elapsed.count()}});
    return r;
  };
  auto gone = [&](const std::string& when) {
    r.outcome = DrainOutcome::gone;
    r.reason = "node no longer exists (" + when + ")";
    r.elapsed = Since(start);
    spdlog::info("node {} is gone ({})", node_id, when);
    return r;
  };
  // The wait for one blocking round: never past the guard.
  auto next_wait = [&]() -> std::optional<milliseconds> {
    auto left = duration_cast<milliseconds>(guard_end - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    return std::max(milliseconds(1), std::min(query_wait, left));
  };
  auto guard_text = [&] {
    return "not drained within " + config::FormatGoDuration(options_.Guard()) +
           (options_.deadline.count() > 0
                ? " (deadline " + config::FormatGoDuration(options_.deadline) + " + grace)"
                : std::string());
  };

  Emit("node.draining", node_id,
       {{"deadline", config::FormatGoDuration(options_.deadline)},
        {"ignore_system_jobs", options_.ignore_system_jobs}});
  std::uint64_t index = 0;
  try {
    index = api_.DrainNode(node_id, options_.Spec(), {{"drained_by", "nomad-autoscaler"}});
  } catch (const NomadError& e) {
    if (e.kind == NomadError::Kind::cancelled) throw;  // stopping: not a failed drain
    if (e.kind == NomadError::Kind::node_gone) return gone("at drain");
    return fail(e.message);
  }

  try {
    // Node side: done when DrainStrategy is null.
    for (;;) {
      auto wait = next_wait();
      if (!wait) return fail(guard_text());
      auto node = api_.GetNode(node_id, BlockingQuery{index, *wait});
      if (!node.value.drain_strategy) {
        if (node.value.last_drain && node.value.last_drain->status == "canceled") {
          return fail("the drain was canceled by someone else");
        }
        break;
      }
      if (node.value.status == "down") spdlog::warn("node {} is down while draining", node_id);
      index = node.index < index ? 0 : node.index;  // backwards index: start over
    }
    // Allocation side: done when nothing pending/running is left.
    std::optional<BlockingQuery> block;
    for (;;) {
      auto allocs = api_.GetNodeAllocations(node_id, block);
      std::size_t live =
          std::count_if(allocs.value.begin(), allocs.value.end(), [&](const auto& a) {
            if (a.job_type.empty()) return false;
            if (options_.ignore_system_jobs && a.job_type == "system") return false;
            return a.Live();
          });
      if (live == 0) break;
      auto wait = next_wait();
      if (!wait)
        return fail(guard_text() + ": " + std::to_string(live) + " allocations still live");
      std::uint64_t from = block ? block->index : 0;
      block = BlockingQuery{allocs.index < from ? 0 : allocs.index, *wait};
    }
  } catch (const NomadError& e) {
    // Stopping: the drain goes on in Nomad; the next process watches it again.
    if (e.kind == NomadError::Kind::cancelled) throw;
    if (e.kind == NomadError::Kind::node_gone) return gone("while draining");
    return fail(e.message);
  }

  r.outcome = DrainOutcome::drained;
  r.elapsed = Since(start);
  r.deadline_reached = options_.deadline.count() != 0 && r.elapsed >= options_.deadline;
  if (r.deadline_reached) {
    r.reason = options_.deadline.count() < 0
                   ? "forced drain: allocations were stopped at once"
                   : "drain deadline reached: Nomad stopped the remaining allocations";
  }
  spdlog::info("node {} drained in {} ms{}", node_id, r.elapsed.count(),
               r.deadline_reached ? " (deadline reached)" : "");
  Emit("node.drained", node_id,
       {{"elapsed_ms", r.elapsed.count()}, {"deadline_reached", r.deadline_reached}});
  return r;
}

bool DrainCoordinator::Purge(const std::string& node_id) const {
  bool purged = true;
  try {
    api_.PurgeNode(node_id);
  } catch (const NomadError& e) {
    if (e.kind != NomadError::Kind::node_gone) throw;
    purged = false;
  }
  Emit("node.purged", node_id, {{"already_gone", !purged}});
  return purged;
}

bool DrainCoordinator::MarkEligible(const std::string& node_id) const {
  try {
    auto node = api_.GetNode(node_id);
    if (node.value.drain_strategy) {
      api_.CancelDrain(node_id, true);
    } else {
      api_.SetEligibility(node_id, true);
    }
    return true;
  } catch (const NomadError& e) {
    if (e.kind == NomadError::Kind::node_gone) return false;
    throw;
  }
}

}  // namespace mps::nomad
