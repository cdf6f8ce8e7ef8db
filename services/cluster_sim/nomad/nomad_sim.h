#pragma once
// A simulated Nomad HTTP API on 127.0.0.1 for tests and the demo: nodes,
// allocations, drains with a migration delay and a deadline, purge, blocking
// queries and ACL tokens, with the JSON shapes of the real API.
// The world API below and the admin surface under /sim/ are not Nomad's.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mps::sim {

// A token of the simulated ACL system. A management token may do anything; a
// client token has one policy: `read-job` in the namespaces listed (a name,
// or a glob with '*': "*" is every namespace) and a node policy. Like Nomad,
// GET /v1/node/:id/allocations silently leaves out the allocations of
// namespaces the token cannot read.
struct SimAclToken {
  std::string secret;
  bool management = false;
  std::vector<std::string> read_job_namespaces;
  std::string node_policy = "write";  // read, write or deny
};

// `SECRET` (a management token) or `SECRET=NS[,NS...][;node=read|write|deny]`
// (a client token; an empty namespace list reads no jobs). Throws
// std::invalid_argument naming what is wrong.
SimAclToken ParseSimAclToken(const std::string& spec);

struct NomadSimOptions {
  std::string acl_token;  // a management token; empty and no `tokens` = ACLs disabled
  std::vector<SimAclToken> tokens;
  // How long a drain takes to move a node's allocations away.
  std::chrono::milliseconds migration_delay{200};
  // How long a registered node stays "initializing".
  std::chrono::milliseconds ready_delay{0};
  // Cap on a blocking query's wait (Nomad's is 300 s).
  std::chrono::milliseconds max_block{std::chrono::seconds(10)};
  std::string region = "global";
};

class NomadSim {
 public:
  explicit NomadSim(NomadSimOptions options = {});
  ~NomadSim();
  NomadSim(const NomadSim&) = delete;
  NomadSim& operator=(const NomadSim&) = delete;

  // Binds 127.0.0.1:port (0 = ephemeral) and serves; returns the port.
  // Throws std::runtime_error when the port cannot be bound.
  int Start(int port = 0);
  void Stop();
  int port() const;
  std::string address() const;  // http://127.0.0.1:<port>

  // --- world ---
  // A new node (status initializing, ready after ready_delay) whose
  // Attributes["unique.hostname"] is the instance name. Throws
  // std::invalid_argument when the instance already has a node that is not down.
  std::string RegisterNode(const std::string& instance_name, const std::string& node_class,
                           const std::string& datacenter = "dc1",
                           const std::string& node_pool = "default", std::int64_t cpu_shares = 2500,
                           std::int64_t memory_mb = 2048);
  // The instance's Nomad client came back after a restart: its node (same
  // ID, eligibility and drain kept) is initializing again, then ready after
  // ready_delay. A node purged meanwhile is registered again under its old
  // ID; an instance that never had a node registers a new one. Returns the ID.
  std::string Rejoin(const std::string& instance_name, const std::string& node_class);
  // The instance's live node goes down (its VM vanished). false = no such node.
  // With record_undrained, a node still ready and eligible (never drained)
  // is listed in GET /sim/undrained_deletions.
  bool MarkDown(const std::string& instance_name, bool record_undrained = true);
  // Throws std::invalid_argument for an unknown node.
  std::string AddAllocation(const std::string& node_id, const std::string& job_type,
                            const std::string& client_status = "running", std::int64_t cpu = 100,
                            std::int64_t memory_mb = 256, const std::string& ns = "default");
  void SetMigrationDelay(std::chrono::milliseconds delay);
  // Called with the body of every POST /sim/faults (after the Nomad faults
  // it names are applied); a throw answers 400.
  void OnFault(std::function<void(const nlohmann::json&)> hook);
  bool SetNodeMigrationDelay(const std::string& node_id, std::chrono::milliseconds delay);

  // --- inspection (tests, demo) ---
  std::optional<nlohmann::json> NodeJson(const std::string& node_id) const;  // as GET /v1/node/:id
  std::vector<nlohmann::json> AllocationsJson(const std::string& node_id) const;
  std::size_t NodeCount() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace mps::sim
