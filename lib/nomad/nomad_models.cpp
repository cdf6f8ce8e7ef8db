#include "nomad/nomad_models.h"

#include "nomad/nomad_error.h"

namespace mps::nomad {
namespace {

using nlohmann::json;

[[noreturn]] void Bad(const std::string& path, const std::string& expected, const json& got) {
  throw NomadError(NomadError::Kind::bad_response, 0,
                   "Nomad response key " + path + ": expected " + expected + ", got " +
                       std::string(got.type_name()));
}

void RequireObject(const json& j, const std::string& path) {
  if (!j.is_object()) Bad(path, "an object", j);
}

const json* Field(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string Str(const json& obj, const char* key, const std::string& path) {
  const json* v = Field(obj, key);
  if (v == nullptr) return {};
  if (!v->is_string()) Bad(path + "." + key, "a string", *v);
  return v->get<std::string>();
}

bool Bool(const json& obj, const char* key, const std::string& path) {
  const json* v = Field(obj, key);
  if (v == nullptr) return false;
  if (!v->is_boolean()) Bad(path + "." + key, "a boolean", *v);
  return v->get<bool>();
}

std::int64_t Int(const json& obj, const char* key, const std::string& path) {
  const json* v = Field(obj, key);
  if (v == nullptr) return 0;
  if (!v->is_number_integer()) Bad(path + "." + key, "an integer", *v);
  return v->get<std::int64_t>();
}

std::uint64_t Index(const json& obj, const char* key, const std::string& path) {
  const json* v = Field(obj, key);
  if (v == nullptr) return 0;
  if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<std::int64_t>() >= 0)) {
    Bad(path + "." + key, "a non-negative integer", *v);
  }
  return v->get<std::uint64_t>();
}

std::string RequiredId(const json& obj, const std::string& path) {
  std::string id = Str(obj, "ID", path);
  if (id.empty()) {
    throw NomadError(NomadError::Kind::bad_response, 0,
                     "Nomad response key " + path + ".ID: missing or empty");
  }
  return id;
}

std::map<std::string, std::string> StringMap(const json& obj, const char* key,
                                             const std::string& path) {
  std::map<std::string, std::string> out;
  const json* v = Field(obj, key);
  if (v == nullptr) return out;
  if (!v->is_object()) Bad(path + "." + key, "an object of strings", *v);
  for (auto& [k, val] : v->items()) {
    if (val.is_null()) continue;
    if (!val.is_string()) Bad(path + "." + key + "[\"" + k + "\"]", "a string", val);
    out[k] = val.get<std::string>();
  }
  return out;
}

// NodeResources and ReservedResources share the Cpu.CpuShares / Memory.MemoryMB shape.
std::optional<NodeCapacity> Capacity(const json& obj, const char* key, const std::string& path) {
  const json* v = Field(obj, key);
  if (v == nullptr) return std::nullopt;
  std::string p = path + "." + key;
  RequireObject(*v, p);
  NodeCapacity c;
  if (const json* cpu = Field(*v, "Cpu")) {
    RequireObject(*cpu, p + ".Cpu");
    c.cpu_shares = Int(*cpu, "CpuShares", p + ".Cpu");
  }
  if (const json* mem = Field(*v, "Memory")) {
    RequireObject(*mem, p + ".Memory");
    c.memory_mb = Int(*mem, "MemoryMB", p + ".Memory");
  }
  return c;
}

}  // namespace

bool Allocation::Terminal() const {
  return client_status == "complete" || client_status == "failed" || client_status == "lost" ||
         desired_status == "stop" || desired_status == "evict";
}

bool Allocation::Live() const {
  return client_status == "pending" || client_status == "running";
}

NodeStub ParseNodeStub(const json& j, const std::string& where) {
  RequireObject(j, where);
  NodeStub n;
  n.id = RequiredId(j, where);
  n.name = Str(j, "Name", where);
  n.address = Str(j, "Address", where);
  n.datacenter = Str(j, "Datacenter", where);
  n.node_class = Str(j, "NodeClass", where);
  n.node_pool = Str(j, "NodePool", where);
  n.version = Str(j, "Version", where);
  n.drain = Bool(j, "Drain", where);
  n.scheduling_eligibility = Str(j, "SchedulingEligibility", where);
  n.status = Str(j, "Status", where);
  n.status_description = Str(j, "StatusDescription", where);
  n.create_index = Index(j, "CreateIndex", where);
  n.modify_index = Index(j, "ModifyIndex", where);
  n.node_resources = Capacity(j, "NodeResources", where);
  n.reserved_resources = Capacity(j, "ReservedResources", where);
  return n;
}

std::vector<NodeStub> ParseNodeList(const json& j) {
  std::vector<NodeStub> out;
  if (j.is_null()) return out;
  if (!j.is_array()) Bad("nodes", "an array", j);
  out.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    out.push_back(ParseNodeStub(j[i], "nodes[" + std::to_string(i) + "]"));
  }
  return out;
}

Node ParseNode(const json& j) {
  const std::string where = "node";
  RequireObject(j, where);
  Node n;
  n.id = RequiredId(j, where);
  n.name = Str(j, "Name", where);
  n.datacenter = Str(j, "Datacenter", where);
  n.node_class = Str(j, "NodeClass", where);
  n.node_pool = Str(j, "NodePool", where);
  n.status = Str(j, "Status", where);
  n.scheduling_eligibility = Str(j, "SchedulingEligibility", where);
  n.attributes = StringMap(j, "Attributes", where);
  n.meta = StringMap(j, "Meta", where);
  n.node_resources = Capacity(j, "NodeResources", where);
  n.reserved_resources = Capacity(j, "ReservedResources", where);
  if (const json* ds = Field(j, "DrainStrategy")) {
    std::string p = where + ".DrainStrategy";
    RequireObject(*ds, p);
    DrainStrategy d;
    d.deadline_ns = Int(*ds, "Deadline", p);
    d.ignore_system_jobs = Bool(*ds, "IgnoreSystemJobs", p);
    d.force_deadline = Str(*ds, "ForceDeadline", p);
    d.started_at = Str(*ds, "StartedAt", p);
    n.drain_strategy = d;
  }
  if (const json* ld = Field(j, "LastDrain")) {
    std::string p = where + ".LastDrain";
    RequireObject(*ld, p);
    DrainMetadata m;
    m.status = Str(*ld, "Status", p);
    m.started_at = Str(*ld, "StartedAt", p);
    m.updated_at = Str(*ld, "UpdatedAt", p);
    m.meta = StringMap(*ld, "Meta", p);
    n.last_drain = m;
  }
  n.create_index = Index(j, "CreateIndex", where);
  n.modify_index = Index(j, "ModifyIndex", where);
  return n;
}

Allocation ParseAllocation(const json& j, const std::string& where) {
  RequireObject(j, where);
  Allocation a;
  a.id = RequiredId(j, where);
  a.namespace_name = Str(j, "Namespace", where);
  a.node_id = Str(j, "NodeID", where);
  a.job_id = Str(j, "JobID", where);
  a.client_status = Str(j, "ClientStatus", where);
  a.desired_status = Str(j, "DesiredStatus", where);
  if (const json* job = Field(j, "Job")) {
    RequireObject(*job, where + ".Job");
    a.job_type = Str(*job, "Type", where + ".Job");
  }
  if (const json* res = Field(j, "Resources")) {
    RequireObject(*res, where + ".Resources");
    a.cpu = Int(*res, "CPU", where + ".Resources");
    a.memory_mb = Int(*res, "MemoryMB", where + ".Resources");
  }
  a.create_index = Index(j, "CreateIndex", where);
  a.modify_index = Index(j, "ModifyIndex", where);
  return a;
}

std::vector<Allocation> ParseAllocationList(const json& j) {
  std::vector<Allocation> out;
  if (j.is_null()) return out;
  if (!j.is_array()) Bad("allocations", "an array", j);
  out.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) {
    out.push_back(ParseAllocation(j[i], "allocations[" + std::to_string(i) + "]"));
  }
  return out;
}

}  // namespace mps::nomad
