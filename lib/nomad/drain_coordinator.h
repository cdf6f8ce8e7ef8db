#pragma once
// Drains nodes in parallel the way the Nomad Autoscaler SDK does, then
// watches each with blocking queries until it is done, with a wall-clock
// guard (deadline + grace) so a drain that never ends cannot hang a Scale.
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nomad/nomad_api.h"

namespace mps::nomad {

struct DrainOptions {
  std::chrono::nanoseconds deadline = std::chrono::minutes(15);  // 0 none, < 0 force
  bool ignore_system_jobs = false;
  // How long past the deadline to keep watching before calling it failed.
  std::chrono::milliseconds grace = std::chrono::seconds(30);
  // The guard when deadline is 0 (Nomad would wait forever).
  std::chrono::milliseconds no_deadline_limit = std::chrono::hours(1);
  // Per blocking query; 0 = the connection's block_query_wait.
  std::chrono::milliseconds query_wait{0};
  // Before draining, check that the token can read jobs in every namespace:
  // the watch ends when a node's allocation list is empty, which proves
  // nothing when Nomad leaves some namespaces out of it.
  bool require_job_read_everywhere = true;

  // node_drain_deadline (Go duration, default 15m) and
  // node_drain_ignore_system_jobs (bool); throws NomadConfigError naming the key.
  static DrainOptions FromPolicyConfig(const std::map<std::string, std::string>& config);
  DrainSpec Spec() const;
  // How long a drain is watched in all.
  std::chrono::milliseconds Guard() const;
};

enum class DrainOutcome { drained, drain_failed, gone };
std::string_view OutcomeName(DrainOutcome o);

struct NodeDrainResult {
  std::string node_id;
  DrainOutcome outcome = DrainOutcome::drain_failed;
  std::string reason;             // why it failed, or a note
  bool deadline_reached = false;  // Nomad force-stopped what was left at the deadline
  std::chrono::milliseconds elapsed{0};
};

// Called from worker threads: node.draining, node.drained, node.drain_failed, node.purged.
using DrainEventSink =
    std::function<void(std::string type, std::string node_id, nlohmann::json fields)>;

class DrainCoordinator {
 public:
  DrainCoordinator(const NomadApi& api, DrainOptions options, DrainEventSink events = {});

  // Starts all drains at once and returns when every node is settled, in input order.
  // With require_job_read_everywhere, first refuses (NomadError forbidden
  // naming the namespaces, nothing drained) a token that cannot read jobs in
  // every namespace.
  // Waits only in Nomad calls, so the API's Cancellation ends it promptly: then
  // it throws NomadError(cancelled) once every worker has returned (the drains
  // stay set in Nomad; no node.drain_failed is published for them).
  std::vector<NodeDrainResult> DrainAll(const std::vector<std::string>& node_ids) const;
  NodeDrainResult Drain(const std::string& node_id) const;

  // true = purged now, false = already gone (done as well). Other failures throw NomadError.
  bool Purge(const std::string& node_id) const;
  // Rollback after a failed delete: cancels a drain still set, else marks the
  // node eligible. false = node gone. Other failures throw NomadError.
  bool MarkEligible(const std::string& node_id) const;

 private:
  void Emit(const char* type, const std::string& node_id, nlohmann::json fields) const;

  const NomadApi& api_;
  DrainOptions options_;
  DrainEventSink events_;
};

}  // namespace mps::nomad
