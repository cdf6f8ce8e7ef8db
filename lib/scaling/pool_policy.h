#pragma once
// A scaling policy's target block, parsed and validated once. Status and Scale
// both receive the same map; Status must not fail for keys only Scale needs
// (instance_image_name), so such checks happen in the planner.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/hosts_file.h"
#include "config/multipass_size.h"
#include "scaling/host_placement.h"

namespace mps::scaling {

enum class NodeSelectorStrategy {
  kLeastBusy,
  kEmpty,
  kEmptyIgnoreSystem,
  kNewestCreateIndex,
  kOldestCreateIndex,
};

// The policy spelling ("least_busy", ...).
// The one table of strategy names (policy values, events, codecs).
inline constexpr std::array<std::pair<NodeSelectorStrategy, std::string_view>, 5> EnumNames(
    NodeSelectorStrategy) {
  return {{{NodeSelectorStrategy::kLeastBusy, "least_busy"},
           {NodeSelectorStrategy::kEmpty, "empty"},
           {NodeSelectorStrategy::kEmptyIgnoreSystem, "empty_ignore_system"},
           {NodeSelectorStrategy::kNewestCreateIndex, "newest_create_index"},
           {NodeSelectorStrategy::kOldestCreateIndex, "oldest_create_index"}}};
}
std::string_view ToString(NodeSelectorStrategy s);

// Safety cap on instances of one pool when the policy sets none: a single
// Multipass host rarely fits more VMs, and a runaway strategy must not be able
// to launch until the host runs out of disk.
inline constexpr int kDefaultMaxInstances = 10;
// A pool's ceiling: far above what Multipass hosts hold, low enough that a
// typo (1000000000) cannot plan, record and launch a flood (issue 16).
inline constexpr int kMaxMaxInstances = 1000;
inline constexpr int kDefaultMaxParallelLaunches = 4;

struct PoolPolicy {
  // Nomad pool filters (ANDed); at least one is set.
  std::string node_class;
  std::string datacenter;
  std::string node_pool;

  // Every instance of the pool is named "<instance_name_prefix>-<suffix>".
  std::string instance_name_prefix;

  // Launch parameters. Empty image: the pool can be observed and scaled in,
  // but a scale out is refused.
  std::string instance_image_name;
  std::optional<int> instance_cpus;
  std::optional<std::uint64_t> instance_memory_bytes;  // >= 512 MiB
  std::optional<std::uint64_t> instance_disk_bytes;    // >= 1 GiB
  std::string cloud_init_user_data_path;               // read at launch time

  int max_instances = kDefaultMaxInstances;
  int max_parallel_launches = kDefaultMaxParallelLaunches;
  std::chrono::nanoseconds startup_timeout = std::chrono::minutes(10);
  // How long the first launch of an image may spend downloading it: multipassd
  // does not count the download in startup_timeout, which it applies twice
  // (SSH-up, then cloud-init). A launch's deadline is the sum of the three.
  std::chrono::nanoseconds image_download_timeout = std::chrono::minutes(15);
  std::chrono::nanoseconds node_registration_timeout = std::chrono::minutes(10);
  // Nomad semantics: 0 = no deadline, negative = force drain.
  std::chrono::nanoseconds node_drain_deadline = std::chrono::minutes(15);
  bool node_drain_ignore_system_jobs = false;
  bool node_purge = false;
  NodeSelectorStrategy node_selector_strategy = NodeSelectorStrategy::kLeastBusy;
  std::string node_id_attribute = "unique.hostname";
  // Unset differs from false: scale-in treats an unset ignore_ineligible as
  // true, like the autoscaler SDK.
  std::optional<bool> node_filter_ignore_init;
  std::optional<bool> node_filter_ignore_drain;
  std::optional<bool> node_filter_ignore_ineligible;
  // The hosts (and zones) of the plugin's hosts_file this pool may be placed
  // on; empty: every host (every zone). Checked against the configured hosts
  // by CheckPlacementScope.
  std::set<std::string> hosts;
  std::set<std::string> zones;
  // `placement_strategy`: spread (the default) or pack, see host_placement.h.
  PlacementStrategy placement_strategy = PlacementStrategy::kSpread;
  bool dry_run = false;
  std::optional<std::chrono::nanoseconds> grpc_timeout;  // _nomad_autoscaler_grpc_timeout

  // Warm pool (issue 14): stopped instances the plugin prepared (launched,
  // node registered, node ineligible, VM stopped), kept beyond the count and
  // taken first by a scale out. 0 = no warm pool.
  int warm_pool_size = 0;
  // Cap on warm + running instances; never above max_instances. Unset:
  // max_instances.
  std::optional<int> warm_pool_max_prepared;
  // A drained instance of a scale in is stopped and returned to the warm
  // pool (up to warm_pool_size) instead of deleted.
  bool warm_pool_reuse_on_scale_in = false;
  // warm_pool_max_prepared, or max_instances when unset.
  int WarmMaxPrepared() const {
    return std::min(warm_pool_max_prepared.value_or(max_instances), max_instances);
  }

  // Keys that were not recognised (the autoscaler may pass extras).
  std::vector<std::string> warnings;
};

struct PolicyProblem {
  std::string key;
  std::string message;  // what was expected, and what was given
};

// Every problem of a target block at once, so one round trip fixes them all.
class PolicyError : public std::runtime_error {
 public:
  explicit PolicyError(std::vector<PolicyProblem> problems);
  const std::vector<PolicyProblem>& problems() const { return problems_; }

 private:
  std::vector<PolicyProblem> problems_;
};

// Every key ParsePoolPolicy reads (the README documents exactly these).
const std::set<std::string, std::less<>>& KnownPolicyKeys();

// Throws PolicyError. A key with an empty value counts as not set.
PoolPolicy ParsePoolPolicy(const std::map<std::string, std::string>& target_config);

// The policy's `hosts` and `zones` against the plugin's configured hosts:
// every name must be a configured host (zone), and together they must leave
// at least one host. Empty when the policy fits; each problem names its key
// and the unknown names.
std::vector<PolicyProblem> CheckPlacementScope(const PoolPolicy& policy,
                                               const std::vector<config::HostEntry>& hosts);

// Multipass size syntax (config/multipass_size.h).
using config::ParseMultipassSize;

// Shortest exact Multipass spelling ("4G", "512M", or plain bytes).
std::string FormatMultipassSize(std::uint64_t bytes);

struct InstanceSize {
  int cpus = 0;
  std::uint64_t memory_bytes = 0;
  std::optional<std::uint64_t> disk_bytes;
};

// "c2-m4" = 2 CPUs, 4 GiB; "c2-m4-d20" adds a 20 GiB disk.
std::optional<InstanceSize> ParseInstanceSize(std::string_view text);

}  // namespace mps::scaling
