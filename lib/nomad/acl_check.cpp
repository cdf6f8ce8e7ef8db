#include "nomad/acl_check.h"

#include "config/glob_match.h"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "nomad/nomad_api.h"
#include "nomad/nomad_error.h"

namespace mps::nomad {
namespace {

using nlohmann::json;

std::string StringAt(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return {};
  return j[key].get<std::string>();
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// deny > write > read, as Nomad merges a token's policies.
void MergeNodePolicy(std::string& into, const std::string& p) {
  auto rank = [](const std::string& v) {
    return v == "deny" ? 3 : v == "write" ? 2 : v == "read" ? 1 : 0;
  };
  if (rank(p) > rank(into)) into = p;
}

}  // namespace

bool NamespaceGlobMatch(const std::string& pattern, const std::string& name) {
  return config::GlobMatch(pattern, name);
}

bool TokenCapabilities::NodeRead() const {
  return acl_disabled || management || node_policy == "read" || node_policy == "write";
}

bool TokenCapabilities::NodeWrite() const {
  return acl_disabled || management || node_policy == "write";
}

bool TokenCapabilities::ReadsJobsEverywhere() const {
  if (acl_disabled || management) return true;
  // Nomad takes the exact name, else the closest glob: any pattern without
  // read-job shadows "*" for the namespaces it matches.
  return std::find(read_job.begin(), read_job.end(), "*") != read_job.end() && no_read_job.empty();
}

std::string TokenCapabilities::JobReadGap() const {
  if (ReadsJobsEverywhere()) return {};
  std::string who = "the Nomad token" + (token_name.empty() ? "" : " '" + token_name + "'");
  std::string where;
  const bool star = std::find(read_job.begin(), read_job.end(), "*") != read_job.end();
  if (!star) {
    where = read_job.empty() ? "any namespace" : "namespaces other than " + Join(read_job);
  }
  if (!no_read_job.empty()) {
    where += (where.empty() ? "" : ", nor in ") + std::string("namespace ") + Join(no_read_job);
  }
  std::string text = who + " lacks read-job in " + where +
                     ", so Nomad leaves their allocations out of a node's allocation list "
                     "without an error";
  if (!missing_policies.empty()) text += " (policies not found: " + Join(missing_policies) + ")";
  return text + "; grant it namespace \"*\" { policy = \"read\" } (read-job everywhere)";
}

TokenCapabilities ReadTokenCapabilities(const NomadApi& api) {
  TokenCapabilities caps;
  auto self = api.AclTokenSelf();
  if (!self) {
    caps.acl_disabled = true;
    return caps;
  }
  caps.token_name = StringAt(*self, "Name");
  if (StringAt(*self, "Type") == "management") {
    caps.management = true;
    return caps;
  }
  std::vector<std::string> policies;
  if (self->contains("Policies") && (*self)["Policies"].is_array()) {
    for (const auto& p : (*self)["Policies"])
      if (p.is_string()) policies.push_back(p.get<std::string>());
  }
  if (self->contains("Roles") && (*self)["Roles"].is_array()) {
    for (const auto& link : (*self)["Roles"]) {
      auto id = StringAt(link, "ID");
      if (id.empty()) continue;
      auto role = api.AclRole(id);
      if (!role || !role->contains("Policies") || !(*role)["Policies"].is_array()) continue;
      for (const auto& p : (*role)["Policies"]) {
        auto name = StringAt(p, "Name");
        if (!name.empty()) policies.push_back(name);
      }
    }
  }
  std::sort(policies.begin(), policies.end());
  policies.erase(std::unique(policies.begin(), policies.end()), policies.end());

  // Per namespace pattern: the union of its capabilities over every policy.
  std::map<std::string, std::set<std::string>> namespaces;
  for (const auto& name : policies) {
    auto policy = api.AclPolicy(name);
    if (!policy) {
      if (name != "anonymous") caps.missing_policies.push_back(name);
      continue;
    }
    const json rules = policy->value("RulesJSON", json());
    if (!rules.is_object()) {
      throw NomadError(NomadError::Kind::bad_response, 200,
                       "Nomad answered GET /v1/acl/policy/" + name +
                           " without RulesJSON (Nomad before 0.10): cannot tell what the token "
                           "may read");
    }
    if (rules.contains("Node") && rules["Node"].is_object())
      MergeNodePolicy(caps.node_policy, StringAt(rules["Node"], "Policy"));
    if (!rules.contains("Namespaces") || !rules["Namespaces"].is_array()) continue;
    for (const auto& ns : rules["Namespaces"]) {
      auto& set = namespaces[StringAt(ns, "Name")];
      auto short_policy = StringAt(ns, "Policy");
      if (short_policy == "read" || short_policy == "write") set.insert("read-job");
      if (short_policy == "deny") set.insert("deny");
      if (ns.contains("Capabilities") && ns["Capabilities"].is_array()) {
        for (const auto& c : ns["Capabilities"])
          if (c.is_string()) set.insert(c.get<std::string>());
      }
    }
  }
  for (const auto& [pattern, set] : namespaces) {
    const bool reads = set.count("read-job") && !set.count("deny");
    (reads ? caps.read_job : caps.no_read_job).push_back(pattern);
  }
  return caps;
}

}  // namespace mps::nomad
