#pragma once
// Nomad's HTTP API over libcurl: one easy handle per call, so one NomadApi may
// be shared by many threads. Every call has a timeout; blocking reads get
// wait + wait/16 + the normal timeout. Every call is cancellable: it runs on
// its own multi handle whose poll a Cancellation wakes, so a blocking query
// of minutes ends within milliseconds of Cancel(). Failures throw NomadError
// (Kind::cancelled once cancelled, also for calls started afterwards).
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nomad/cancellation.h"
#include "nomad/nomad_config.h"
#include "nomad/nomad_models.h"

namespace mps::nomad {

// A blocking query: answer when the index moves past `index` or `wait` elapses.
struct BlockingQuery {
  std::uint64_t index = 0;
  std::chrono::milliseconds wait{0};  // 0 = the config's block_query_wait
};

template <class T>
struct Indexed {
  T value;
  std::uint64_t index = 0;  // X-Nomad-Index
};

struct DrainSpec {
  std::int64_t deadline_ns = 0;  // > 0 deadline, 0 none, < 0 force now
  bool ignore_system_jobs = false;
};

class NomadApi {
 public:
  // `cancel` may be null (the calls are then only bounded by their timeouts).
  explicit NomadApi(NomadConnectionConfig config,
                    std::chrono::milliseconds request_timeout = std::chrono::seconds(30),
                    std::shared_ptr<const Cancellation> cancel = nullptr);

  const NomadConnectionConfig& config() const { return config_; }
  // Null when the calls are not cancellable.
  const std::shared_ptr<const Cancellation>& cancellation() const { return cancel_; }

  std::vector<NodeStub> ListNodes(bool resources,
                                  const std::optional<std::string>& filter = std::nullopt) const;
  // GET /v1/nodes as a blocking query: answers when the node table's index
  // moves past `block.index` (at once for index 0) or `block.wait` elapses.
  Indexed<std::vector<NodeStub>> WatchNodes(const BlockingQuery& block) const;
  // A node that does not exist throws node_gone.
  Indexed<Node> GetNode(const std::string& node_id,
                        const std::optional<BlockingQuery>& block = std::nullopt) const;
  Indexed<std::vector<Allocation>> GetNodeAllocations(
      const std::string& node_id, const std::optional<BlockingQuery>& block = std::nullopt) const;
  // Returns the write index (the starting point for monitoring).
  std::uint64_t DrainNode(const std::string& node_id, const DrainSpec& spec,
                          const std::map<std::string, std::string>& meta) const;
  std::uint64_t CancelDrain(const std::string& node_id, bool mark_eligible) const;
  std::uint64_t SetEligibility(const std::string& node_id, bool eligible) const;
  std::uint64_t PurgeNode(const std::string& node_id) const;
  Allocation GetAllocation(const std::string& alloc_id) const;
  nlohmann::json AgentSelf() const;
  // GET /v1/status/leader, which needs no ACL: the leader's RPC address.
  std::string Leader() const;
  // GET /v1/acl/token/self; nullopt when Nomad's ACLs are disabled.
  std::optional<nlohmann::json> AclTokenSelf() const;
  // GET /v1/acl/policy/:name (RulesJSON is the parsed policy); nullopt = no such policy.
  std::optional<nlohmann::json> AclPolicy(const std::string& name) const;
  // GET /v1/acl/role/:id; nullopt = no such role.
  std::optional<nlohmann::json> AclRole(const std::string& id) const;
  // GET /v1/namespaces: the names of the namespaces the token can see.
  std::vector<std::string> ListNamespaces() const;
  // Whether the token has read-job in `ns`: GET /v1/job/:id of an ID no job
  // has answers 404 with it and 403 without.
  bool CanReadJobs(const std::string& ns) const;

 private:
  std::optional<nlohmann::json> AclObject(const std::string& path) const;
  struct Response {
    long status = 0;
    std::string body;
    std::uint64_t index = 0;
  };
  // `capability` names the ACL a 403 means is missing; `node_id` makes
  // "node not found" answers node_gone.
  Response Call(const std::string& method, const std::string& path,
                std::vector<std::pair<std::string, std::string>> params,
                const std::optional<std::string>& body, const std::optional<BlockingQuery>& block,
                const char* capability, const std::string& node_id) const;
  nlohmann::json ParseBody(const Response& r, const std::string& what) const;
  // curl_easy_perform, but on a multi handle that Cancel() wakes.
  int Perform(void* easy, const std::string& what) const;
  [[noreturn]] void ThrowCancelled(const std::string& what) const;

  NomadConnectionConfig config_;
  std::chrono::milliseconds request_timeout_;
  std::shared_ptr<const Cancellation> cancel_;
};

}  // namespace mps::nomad
