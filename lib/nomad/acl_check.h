#pragma once
// What the configured Nomad token may do, read from Nomad itself
// (GET /v1/acl/token/self, then the parsed rules of its policies and roles'
// policies). It matters because GET /v1/node/:id/allocations silently leaves
// out the allocations of namespaces where the token lacks read-job: with such
// a token a busy node looks empty, so the `empty` selectors and the drain
// watch must refuse instead of trusting the list.
#include <string>
#include <vector>

namespace mps::nomad {

class NomadApi;

struct TokenCapabilities {
  bool acl_disabled = false;  // Nomad runs without ACLs: everything is allowed
  bool management = false;
  std::string token_name;
  std::string node_policy;  // merged: "deny", "write", "read" or "" (none)
  // Namespace names or globs of the token's policies, split by whether their
  // merged capabilities include read-job (and no deny).
  std::vector<std::string> read_job;
  std::vector<std::string> no_read_job;
  std::vector<std::string> missing_policies;  // listed on the token, not found

  bool NodeRead() const;
  bool NodeWrite() const;
  // Every namespace's allocations are visible to GET /v1/node/:id/allocations.
  bool ReadsJobsEverywhere() const;
  // Empty when ReadsJobsEverywhere(); else a sentence naming the namespaces
  // the token cannot read jobs in and the policy that fixes it.
  std::string JobReadGap() const;
};

// Throws NomadError (unreachable, forbidden for an unknown token, ...).
TokenCapabilities ReadTokenCapabilities(const NomadApi& api);

// Nomad's namespace globs ('*' = any run of characters).
bool NamespaceGlobMatch(const std::string& pattern, const std::string& name);

}  // namespace mps::nomad
