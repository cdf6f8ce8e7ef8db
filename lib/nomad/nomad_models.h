#pragma once
// Nomad API objects, reduced to what node selection and draining need.
// Parsers tolerate null and missing keys; a key of the wrong type throws
// NomadError(bad_response) naming the key path.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mps::nomad {

struct NodeCapacity {
  std::int64_t cpu_shares = 0;  // MHz
  std::int64_t memory_mb = 0;
};

// An entry of GET /v1/nodes.
struct NodeStub {
  std::string id;
  std::string name;
  std::string address;
  std::string datacenter;
  std::string node_class;
  std::string node_pool;
  std::string version;
  bool drain = false;
  std::string scheduling_eligibility;  // eligible / ineligible
  std::string status;                  // initializing / ready / down / disconnected
  std::string status_description;
  std::uint64_t create_index = 0;
  std::uint64_t modify_index = 0;
  std::optional<NodeCapacity> node_resources;      // only with resources=true
  std::optional<NodeCapacity> reserved_resources;  // only with resources=true
};

struct DrainStrategy {
  std::int64_t deadline_ns = 0;
  bool ignore_system_jobs = false;
  std::string force_deadline;
  std::string started_at;
};

struct DrainMetadata {
  std::string status;  // draining / complete / canceled
  std::string started_at;
  std::string updated_at;
  std::map<std::string, std::string> meta;
};

// GET /v1/node/:id. The full node has no `Drain` key: draining is
// `drain_strategy.has_value()`.
struct Node {
  std::string id;
  std::string name;
  std::string datacenter;
  std::string node_class;
  std::string node_pool;
  std::string status;
  std::string scheduling_eligibility;
  std::map<std::string, std::string> attributes;
  std::map<std::string, std::string> meta;
  std::optional<NodeCapacity> node_resources;
  std::optional<NodeCapacity> reserved_resources;
  std::optional<DrainStrategy> drain_strategy;
  std::optional<DrainMetadata> last_drain;
  std::uint64_t create_index = 0;
  std::uint64_t modify_index = 0;
};

struct Allocation {
  std::string id;
  std::string namespace_name;
  std::string node_id;
  std::string job_id;
  std::string job_type;  // service / batch / system / sysbatch; empty when the job is absent
  std::string client_status;
  std::string desired_status;
  std::int64_t cpu = 0;  // Resources.CPU, MHz
  std::int64_t memory_mb = 0;
  std::uint64_t create_index = 0;
  std::uint64_t modify_index = 0;

  // ClientStatus complete/failed/lost or DesiredStatus stop/evict.
  bool Terminal() const;
  // pending or running: what a drain waits for.
  bool Live() const;
};

NodeStub ParseNodeStub(const nlohmann::json& j, const std::string& where = "node");
std::vector<NodeStub> ParseNodeList(const nlohmann::json& j);
Node ParseNode(const nlohmann::json& j);
Allocation ParseAllocation(const nlohmann::json& j, const std::string& where = "allocation");
std::vector<Allocation> ParseAllocationList(const nlohmann::json& j);

}  // namespace mps::nomad
