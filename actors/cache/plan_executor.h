#pragma once
// Carries out a ScalePlan with bus requests to the Multipass session and the
// Nomad actor, reporting every operation to the state cache before and after
// it runs. Blocking: runs on the Scale call's thread, or on a background
// thread for reconciliation and resumed operations.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bus/client.h"
#include "cache/state_cache.h"

namespace mps::cache {

struct ExecutorLinks {
  std::shared_ptr<bus::BusClient> multipass;
  std::string multipass_where;  // "multipass-hostd at tcp://...", for messages
  std::shared_ptr<bus::BusClient> nomad;
  std::string nomad_where;
};

// One Scale's failures, each naming the instance or node and why.
class ExecutionError : public std::runtime_error {
 public:
  ExecutionError(std::string message, bool unavailable)
      : std::runtime_error(std::move(message)), unavailable_(unavailable) {}
  // True when only unreachable peers failed it (a retry may succeed).
  bool unavailable() const { return unavailable_; }

 private:
  bool unavailable_;
};

class PlanExecutor {
 public:
  PlanExecutor(ExecutorLinks links, StateCache cache);

  // Executes a plan the cache made (answer.plan.ShouldExecute()) and tells
  // the cache when it is over. Returns a summary; throws ExecutionError.
  std::string Execute(const PlanAnswer& answer, const ConfigMap& policy_config);

  // Drives operations nobody drives (TakeUndriven), given the latest
  // multipass.list and nomad.pool_nodes replies of the pool.
  void Resume(const std::string& pool, const scaling::PoolPolicy& policy,
              const ConfigMap& policy_config, const std::vector<scaling::Operation>& ops,
              const nlohmann::json& instances, const nlohmann::json& nodes);

 private:
  struct Run;
  void Finish(Run& run, const std::string& summary);
  void Delete(Run& run, const std::string& instance, const std::string& reason);
  void Start(Run& run, const std::string& instance);
  void Launch(Run& run, const scaling::LaunchAction& launch);
  void LaunchAll(Run& run, const std::vector<scaling::LaunchAction>& launches, int parallel);
  void SelectAndDrain(Run& run, const scaling::SelectAndDrainAction& drain);
  void Drain(Run& run, const std::vector<std::pair<std::string, std::string>>& nodes,
             bool purge_nodes);
  void Purge(Run& run, const std::vector<std::string>& node_ids);
  bool InstanceExists(const std::string& instance);

  ExecutorLinks links_;
  StateCache cache_;
};

// The launch request of a LaunchAction (cloud-init read from its file).
// Throws std::runtime_error naming cloud_init_user_data_path.
nlohmann::json LaunchPayload(const scaling::LaunchAction& launch,
                             std::chrono::nanoseconds startup_timeout);

}  // namespace mps::cache
