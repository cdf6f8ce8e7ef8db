#include "cluster_sim/nomad/nomad_sim.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>

#include "cluster_sim/nomad/node_filter_expression.h"
#include "config/glob_match.h"
#include "config/go_values.h"

namespace mps::sim {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using std::chrono::milliseconds;

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(ns % 1000000000));
  return buf;
}

std::string Rfc3339Now() {
  return Rfc3339(std::chrono::system_clock::now());
}

std::int64_t UnixNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct SimAlloc {
  std::string id, node_id, job_id, job_type, client_status, desired_status;
  std::string ns = "default";
  bool migrate = false;
  std::int64_t cpu = 0, memory_mb = 0;
  std::uint64_t create_index = 0, modify_index = 0;
  std::int64_t create_time = 0, modify_time = 0;

  bool Terminal() const {
    return client_status == "complete" || client_status == "failed" || client_status == "lost" ||
           desired_status == "stop" || desired_status == "evict";
  }
};

struct SimNode {
  std::string id, instance, node_class, datacenter, pool;
  std::string status = "initializing", eligibility = "eligible";
  std::int64_t cpu = 0, memory_mb = 0;
  json drain_strategy;  // null or object
  json last_drain;      // null or object
  std::vector<json> events;
  std::uint64_t create_index = 0, modify_index = 0;
  std::int64_t status_updated_at = 0;
  Clock::time_point ready_at;
  Clock::time_point registered_at = Clock::now();
  std::optional<milliseconds> migration_delay;
  std::optional<Clock::time_point> migrate_at, force_at;
};

void PlainError(httplib::Response& res, int status, const std::string& msg) {
  res.status = status;
  res.set_content(msg, "text/plain");
}

// Who is calling: ACLs off, a management token, a client token, or no token
// (Nomad's anonymous token, which the sim gives no policy).
struct Caller {
  bool acl_disabled = false;
  bool management = false;
  const SimAclToken* token = nullptr;

  bool ReadsJobs(const std::string& ns) const {
    if (acl_disabled || management) return true;
    if (!token) return false;
    return std::any_of(token->read_job_namespaces.begin(), token->read_job_namespaces.end(),
                       [&](const std::string& p) { return mps::config::GlobMatch(p, ns); });
  }
  bool Node(bool write) const {
    if (acl_disabled || management) return true;
    if (!token) return false;
    return token->node_policy == "write" || (!write && token->node_policy == "read");
  }
};

std::string PolicyName(const SimAclToken& t) {
  return "sim-policy-" + std::to_string(std::hash<std::string>{}(t.secret) % 100000);
}

// The policy as Nomad stores it (HCL) and as GET /v1/acl/policy/:name parses it.
nlohmann::json PolicyJson(const SimAclToken& t) {
  nlohmann::json namespaces = nlohmann::json::array();
  std::string rules;
  for (const auto& ns : t.read_job_namespaces) {
    namespaces.push_back({{"Name", ns},
                          {"Policy", ""},
                          {"Capabilities", {"list-jobs", "read-job"}},
                          {"Variables", nullptr}});
    rules += "namespace \"" + ns + "\" {\n  capabilities = [\"list-jobs\", \"read-job\"]\n}\n";
  }
  rules += "node {\n  policy = \"" + t.node_policy + "\"\n}\n";
  return {{"Name", PolicyName(t)},
          {"Description", "cluster-sim --nomad-token"},
          {"Rules", rules},
          {"RulesJSON",
           {{"Namespaces", namespaces},
            {"NodePools", nullptr},
            {"HostVolumes", nullptr},
            {"Agent", nullptr},
            {"Node", {{"Policy", t.node_policy}}},
            {"Operator", nullptr},
            {"Quota", nullptr},
            {"Plugin", nullptr}}},
          {"JobACL", nullptr},
          {"CreateIndex", 5},
          {"ModifyIndex", 5}};
}

}  // namespace

struct NomadSim::State {
  explicit State(NomadSimOptions o) : options(std::move(o)), rng(std::random_device{}()) {}

  NomadSimOptions options;
  mutable std::mutex mu;
  std::condition_variable changed;
  bool stopping = false;
  std::map<std::string, SimNode> nodes;  // by ID: the list order of GET /v1/nodes
  // instance → the node ID its Nomad client keeps in its data dir: a client
  // that comes back re-registers under it, even after its node was purged.
  std::map<std::string, std::string> client_node_ids;
  std::map<std::string, SimAlloc> allocs;
  std::uint64_t raft_index = 10;
  std::uint64_t nodes_index = 10, allocs_index = 10;
  std::mt19937_64 rng;

  httplib::Server server;
  std::thread listener, ticker;
  int port = 0;

  // Faults set through POST /sim/faults (tests): every /v1/ request is
  // answered 500 "No cluster leader" (outage) or 403 (forbidden).
  bool outage = false, forbidden = false;
  std::function<void(const json&)> fault_hook;
  // Instances deleted while their live node was still eligible (never drained).
  std::vector<json> undrained_deletions;

  // --- helpers, all under mu ---
  std::string NewId() {
    std::uniform_int_distribution<int> hex(0, 15);
    std::string id;
    for (int i = 0; i < 32; ++i) {
      if (i == 8 || i == 12 || i == 16 || i == 20) id += '-';
      id += "0123456789abcdef"[hex(rng)];
    }
    return id;
  }
  std::uint64_t BumpNode(SimNode& n) {
    n.modify_index = nodes_index = ++raft_index;
    changed.notify_all();
    return n.modify_index;
  }
  std::uint64_t BumpAlloc(SimAlloc& a) {
    a.modify_index = allocs_index = ++raft_index;
    a.modify_time = UnixNanos();
    changed.notify_all();
    return a.modify_index;
  }
  void NodeEvent(SimNode& n, const std::string& subsystem, const std::string& msg) {
    n.events.push_back({{"Message", msg},
                        {"Subsystem", subsystem},
                        {"Details", nullptr},
                        {"Timestamp", Rfc3339Now()},
                        {"CreateIndex", raft_index}});
  }
  std::uint64_t AllocIndexOf(const std::string& node_id) const {
    std::uint64_t idx = 0;
    for (auto& [_, a] : allocs) {
      if (a.node_id == node_id) idx = std::max(idx, a.modify_index);
    }
    return idx == 0 ? allocs_index : idx;
  }

  json ResourcesJson(const SimNode& n) const {
    return {{"Cpu",
             {{"CpuShares", n.cpu}, {"TotalCpuCores", 1}, {"ReservableCpuCores", json::array()}}},
            {"Memory", {{"MemoryMB", n.memory_mb}}},
            {"Disk", {{"DiskMB", 4096}}},
            {"Networks", nullptr},
            {"Devices", nullptr},
            {"MinDynamicPort", 20000},
            {"MaxDynamicPort", 32000}};
  }
  static json ReservedJson() {
    return {{"Cpu", {{"CpuShares", 0}}},
            {"Memory", {{"MemoryMB", 0}}},
            {"Disk", {{"DiskMB", 0}}},
            {"Networks", {{"ReservedHostPorts", ""}}}};
  }
  json FullNode(const SimNode& n) const {
    return {{"ID", n.id},
            {"SecretID", ""},
            {"Datacenter", n.datacenter},
            {"Name", n.instance},
            {"HTTPAddr", "127.0.0.1:4646"},
            {"TLSEnabled", false},
            {"Attributes",
             {{"unique.hostname", n.instance},
              {"os.name", "ubuntu"},
              {"kernel.name", "linux"},
              {"nomad.version", "1.7.7"},
              {"cpu.numcores", "1"}}},
            {"NodeResources", ResourcesJson(n)},
            {"ReservedResources", ReservedJson()},
            {"Links", json::object()},
            {"Meta", json::object()},
            {"NodeClass", n.node_class},
            {"NodePool", n.pool},
            {"ComputedClass", "v1:sim"},
            {"DrainStrategy", n.drain_strategy},
            {"SchedulingEligibility", n.eligibility},
            {"Status", n.status},
            {"StatusDescription", ""},
            {"StatusUpdatedAt", n.status_updated_at},
            {"Events", n.events},
            {"Drivers", json::object()},
            {"HostVolumes", nullptr},
            {"HostNetworks", nullptr},
            {"CSIControllerPlugins", nullptr},
            {"CSINodePlugins", nullptr},
            {"LastDrain", n.last_drain},
            {"NodeMaxAllocs", 0},
            {"CreateIndex", n.create_index},
            {"ModifyIndex", n.modify_index}};
  }
  json Stub(const SimNode& n, bool resources) const {
    json j = {{"Address", "127.0.0.1"},
              {"ID", n.id},
              {"Datacenter", n.datacenter},
              {"Name", n.instance},
              {"NodeClass", n.node_class},
              {"NodePool", n.pool},
              {"Version", "1.7.7"},
              {"Drain", !n.drain_strategy.is_null()},
              {"SchedulingEligibility", n.eligibility},
              {"Status", n.status},
              {"StatusDescription", ""},
              {"Drivers", json::object()},
              {"HostVolumes", nullptr},
              {"LastDrain", n.last_drain},
              {"CreateIndex", n.create_index},
              {"ModifyIndex", n.modify_index}};
    if (resources) {
      j["NodeResources"] = ResourcesJson(n);
      j["ReservedResources"] = ReservedJson();
    }
    return j;
  }
  json AllocJson(const SimAlloc& a) const {
    return {
        {"ID", a.id},
        {"Namespace", a.ns},
        {"EvalID", ""},
        {"Name", a.job_id + ".group[0]"},
        {"NodeID", a.node_id},
        {"JobID", a.job_id},
        {"Job", {{"ID", a.job_id}, {"Name", a.job_id}, {"Namespace", a.ns}, {"Type", a.job_type}}},
        {"TaskGroup", "group"},
        {"Resources",
         {{"CPU", a.cpu},
          {"Cores", 0},
          {"MemoryMB", a.memory_mb},
          {"MemoryMaxMB", 0},
          {"DiskMB", 0},
          {"Networks", nullptr},
          {"Devices", nullptr}}},
        {"AllocatedResources",
         {{"Tasks",
           {{"task",
             {{"Cpu", {{"CpuShares", a.cpu}}},
              {"Memory", {{"MemoryMB", a.memory_mb}, {"MemoryMaxMB", 0}}}}}}},
          {"Shared", {{"DiskMB", 0}}}}},
        {"DesiredStatus", a.desired_status},
        {"DesiredDescription", ""},
        {"DesiredTransition", {{"Migrate", a.migrate}}},
        {"ClientStatus", a.client_status},
        {"ClientDescription", ""},
        {"CreateIndex", a.create_index},
        {"ModifyIndex", a.modify_index},
        {"AllocModifyIndex", a.modify_index},
        {"CreateTime", a.create_time},
        {"ModifyTime", a.modify_time}};
  }

  // Allocations a drain must move: live ones, minus system jobs when ignored.
  bool Movable(const SimAlloc& a, bool ignore_system) const {
    return !a.Terminal() && !(ignore_system && a.job_type == "system");
  }

  // Drain progress; called by the ticker under mu.
  void Advance() {
    auto now = Clock::now();
    for (auto& [id, n] : nodes) {
      if (n.status == "initializing" && now >= n.ready_at) {
        n.status = "ready";
        n.status_updated_at = UnixNanos() / 1000000000;
        NodeEvent(n, "Cluster", "Node ready");
        BumpNode(n);
      }
      if (n.drain_strategy.is_null()) continue;
      bool ignore_system = n.drain_strategy.value("IgnoreSystemJobs", false);
      bool forced = n.force_at && now >= *n.force_at;
      bool migrated = n.migrate_at && now >= *n.migrate_at;
      std::size_t left = 0;
      for (auto& [_, a] : allocs) {
        if (a.node_id != id || !Movable(a, ignore_system)) continue;
        if (forced || migrated) {
          // Replacements are not placed elsewhere: the sim only models this node.
          a.desired_status = "stop";
          a.client_status = "complete";
          a.migrate = true;
          BumpAlloc(a);
        } else {
          ++left;
        }
      }
      if (left == 0) {
        n.drain_strategy = nullptr;
        n.last_drain["Status"] = "complete";
        n.last_drain["UpdatedAt"] = Rfc3339Now();
        n.migrate_at.reset();
        n.force_at.reset();
        NodeEvent(
            n, "Drain",
            forced && !migrated ? "Node drain complete (deadline reached)" : "Node drain complete");
        BumpNode(n);
      }
    }
  }

  // Blocking query: waits (mu held through `lock`) while index_fn() <= min.
  template <class F>
  void Block(std::unique_lock<std::mutex>& lock, const httplib::Request& req, F index_fn) {
    if (!req.has_param("index")) return;
    std::uint64_t min = std::stoull(req.get_param_value("index"));
    milliseconds wait = milliseconds(300000);
    if (req.has_param("wait")) {
      auto d = config::ParseGoDuration(req.get_param_value("wait"));
      wait = std::chrono::duration_cast<milliseconds>(*d);
    }
    wait = std::min(wait, options.max_block);
    auto until = Clock::now() + wait;
    changed.wait_until(lock, until, [&] { return stopping || index_fn() > min; });
  }

  // 400 for a bad index/wait; false = answered already.
  static bool CheckQueryParams(const httplib::Request& req, httplib::Response& res) {
    if (req.has_param("index")) {
      const auto& v = req.get_param_value("index");
      if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos) {
        PlainError(res, 400, "Invalid index");
        return false;
      }
    }
    if (req.has_param("wait") && !config::ParseGoDuration(req.get_param_value("wait"))) {
      PlainError(res, 400, "Invalid wait time");
      return false;
    }
    return true;
  }

  bool AclEnabled() const { return !options.acl_token.empty() || !options.tokens.empty(); }

  // nullopt: answered 403 "ACL token not found".
  std::optional<Caller> Identify(const httplib::Request& req, httplib::Response& res) const {
    Caller c;
    if (!AclEnabled()) {
      c.acl_disabled = true;
      return c;
    }
    std::string token = req.get_header_value("X-Nomad-Token");
    if (token.empty()) {
      auto auth = req.get_header_value("Authorization");
      if (auth.size() > 7 && (auth.rfind("Bearer ", 0) == 0 || auth.rfind("bearer ", 0) == 0)) {
        token = auth.substr(7);
      }
    }
    if (token.empty()) return c;  // anonymous
    if (token == options.acl_token) {
      c.management = true;
      return c;
    }
    for (const auto& t : options.tokens) {
      if (t.secret != token) continue;
      c.management = t.management;
      c.token = &t;
      return c;
    }
    PlainError(res, 403, "ACL token not found");
    return std::nullopt;
  }

  enum class Need { node_read, node_write, any };
  // The node endpoints: node:read or node:write, else 403 "Permission denied".
  std::optional<Caller> Authorized(const httplib::Request& req, httplib::Response& res,
                                   Need need = Need::node_read) const {
    auto c = Identify(req, res);
    if (!c) return std::nullopt;
    if (need != Need::any && !c->Node(need == Need::node_write)) {
      PlainError(res, 403, "Permission denied");
      return std::nullopt;
    }
    return c;
  }

  std::string Register(const std::string& instance, const std::string& node_class,
                       const std::string& dc, const std::string& pool, std::int64_t cpu,
                       std::int64_t mem) {
    std::lock_guard lock(mu);
    for (auto& [_, n] : nodes) {
      if (n.instance == instance && n.status != "down") {
        throw std::invalid_argument("instance " + instance + " already has live node " + n.id);
      }
    }
    return RegisterLocked(instance, node_class, dc, pool, cpu, mem, NewId());
  }

  std::string RegisterLocked(const std::string& instance, const std::string& node_class,
                             const std::string& dc, const std::string& pool, std::int64_t cpu,
                             std::int64_t mem, const std::string& id_to_use) {
    SimNode n;
    n.id = id_to_use;
    client_node_ids[instance] = n.id;
    n.instance = instance;
    n.node_class = node_class;
    n.datacenter = dc.empty() ? "dc1" : dc;
    n.pool = pool.empty() ? "default" : pool;
    n.cpu = cpu;
    n.memory_mb = mem;
    n.ready_at = Clock::now() + options.ready_delay;
    n.status_updated_at = UnixNanos() / 1000000000;
    NodeEvent(n, "Cluster", "Node registered");
    n.create_index = ++raft_index;
    n.modify_index = nodes_index = n.create_index;
    std::string id = n.id;
    nodes.emplace(id, std::move(n));
    changed.notify_all();
    return id;
  }

  std::string AddAlloc(const std::string& node_id, const std::string& job_type,
                       const std::string& client_status, std::int64_t cpu, std::int64_t mem,
                       const std::string& ns) {
    std::lock_guard lock(mu);
    if (!nodes.count(node_id)) throw std::invalid_argument("unknown node " + node_id);
    SimAlloc a;
    a.id = NewId();
    a.node_id = node_id;
    a.ns = ns.empty() ? "default" : ns;
    a.job_type = job_type;
    a.job_id = job_type + "-job-" + a.id.substr(0, 8);
    a.client_status = client_status;
    a.desired_status = "run";
    a.cpu = cpu;
    a.memory_mb = mem;
    a.create_index = ++raft_index;
    a.create_time = UnixNanos();
    BumpAlloc(a);
    std::string id = a.id;
    allocs.emplace(id, std::move(a));
    return id;
  }

  void Routes();
};

void NomadSim::State::Routes() {
  auto& s = server;
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    std::lock_guard lock(mu);
    if (outage) {
      PlainError(res, 500, "No cluster leader");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (forbidden) {
      PlainError(res, 403, "Permission denied");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.Get("/v1/nodes", [this](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req, res) || !CheckQueryParams(req, res)) return;
    bool resources = false;
    if (req.has_param("resources")) {
      auto b = config::ParseGoBool(req.get_param_value("resources"));
      if (!b) return PlainError(res, 400, "Failed to parse value of \"resources\"");
      resources = *b;
    }
    std::optional<NodeFilterExpression> filter;
    if (req.has_param("filter") && !req.get_param_value("filter").empty()) {
      try {
        filter = NodeFilterExpression::Parse(req.get_param_value("filter"));
      } catch (const FilterSyntaxError& e) {
        return PlainError(res, 400, std::string("failed to read result page: ") + e.what());
      }
    }
    std::string prefix = req.has_param("prefix") ? req.get_param_value("prefix") : "";
    std::unique_lock lock(mu);
    Block(lock, req, [&] { return nodes_index; });
    json out = json::array();
    for (auto& [id, n] : nodes) {
      if (!id.starts_with(prefix)) continue;
      if (filter && !filter->Matches(FullNode(n))) continue;
      out.push_back(Stub(n, resources));
    }
    res.set_header("X-Nomad-Index", std::to_string(nodes_index));
    res.set_content(out.dump(), "application/json");
  });

  s.Get(R"(/v1/node/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req, res) || !CheckQueryParams(req, res)) return;
    std::string id = req.matches[1];
    std::unique_lock lock(mu);
    Block(lock, req, [&] {
      auto it = nodes.find(id);
      return it == nodes.end() ? nodes_index : it->second.modify_index;
    });
    auto it = nodes.find(id);
    if (it == nodes.end()) return PlainError(res, 404, "node not found");
    res.set_header("X-Nomad-Index", std::to_string(it->second.modify_index));
    res.set_content(FullNode(it->second).dump(), "application/json");
  });

  s.Get(R"(/v1/node/([^/]+)/allocations)",
        [this](const httplib::Request& req, httplib::Response& res) {
          auto caller = Authorized(req, res);
          if (!caller || !CheckQueryParams(req, res)) return;
          std::string id = req.matches[1];
          std::unique_lock lock(mu);
          Block(lock, req, [&] { return AllocIndexOf(id); });
          // Nomad's GetAllocs: namespaces without read-job are left out, no 403.
          json out = json::array();
          for (auto& [_, a] : allocs) {
            if (a.node_id == id && caller->ReadsJobs(a.ns)) out.push_back(AllocJson(a));
          }
          res.set_header("X-Nomad-Index", std::to_string(AllocIndexOf(id)));
          res.set_content(out.dump(), "application/json");
        });

  auto write_reply = [](httplib::Response& res, std::uint64_t index) {
    json body = {{"NodeModifyIndex", index},
                 {"EvalIDs", json::array()},
                 {"EvalCreateIndex", 0},
                 {"Index", index}};
    res.set_header("X-Nomad-Index", std::to_string(index));
    res.set_content(body.dump(), "application/json");
  };

  auto drain = [this, write_reply](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req, res, Need::node_write)) return;
    std::string id = req.matches[1];
    auto body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      return PlainError(res, 400, "invalid JSON body for node drain");
    }
    std::lock_guard lock(mu);
    auto it = nodes.find(id);
    if (it == nodes.end()) return PlainError(res, 500, "node not found");
    SimNode& n = it->second;
    const json spec = body.value("DrainSpec", json());
    if (spec.is_null()) {
      if (!n.drain_strategy.is_null()) {
        n.drain_strategy = nullptr;
        n.last_drain["Status"] = "canceled";
        n.last_drain["UpdatedAt"] = Rfc3339Now();
        NodeEvent(n, "Drain", "Node drain strategy cleared");
      }
      n.migrate_at.reset();
      n.force_at.reset();
      if (body.value("MarkEligible", false)) n.eligibility = "eligible";
      return write_reply(res, BumpNode(n));
    }
    if (!spec.is_object() || !spec.value("Deadline", json(0)).is_number_integer()) {
      return PlainError(res, 400, "DrainSpec.Deadline must be an integer of nanoseconds");
    }
    std::int64_t deadline = spec.value("Deadline", std::int64_t{0});
    bool ignore_system = spec.value("IgnoreSystemJobs", false);
    auto now = Clock::now();
    std::string started = n.drain_strategy.is_null()
                              ? Rfc3339Now()
                              : n.drain_strategy.value("StartedAt", Rfc3339Now());
    n.drain_strategy = {{"Deadline", deadline},
                        {"IgnoreSystemJobs", ignore_system},
                        {"ForceDeadline", "0001-01-01T00:00:00Z"},
                        {"StartedAt", started}};
    n.migrate_at = now + n.migration_delay.value_or(options.migration_delay);
    n.force_at.reset();
    if (deadline > 0) {
      n.force_at = now + std::chrono::nanoseconds(deadline);
      n.drain_strategy["ForceDeadline"] =
          Rfc3339(std::chrono::system_clock::now() + std::chrono::nanoseconds(deadline));
    } else if (deadline < 0) {
      n.force_at = now;
    }
    json meta = body.value("Meta", json::object());
    n.last_drain = {{"StartedAt", started},
                    {"UpdatedAt", Rfc3339Now()},
                    {"Status", "draining"},
                    {"AccessorID", ""},
                    {"Meta", meta.is_object() ? meta : json::object()}};
    n.eligibility = "ineligible";
    NodeEvent(n, "Drain", "Node drain strategy set");
    write_reply(res, BumpNode(n));
  };
  s.Put(R"(/v1/node/([^/]+)/drain)", drain);
  s.Post(R"(/v1/node/([^/]+)/drain)", drain);

  auto eligibility = [this, write_reply](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req, res, Need::node_write)) return;
    std::string id = req.matches[1];
    auto body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      return PlainError(res, 400, "invalid JSON body for node eligibility");
    }
    std::lock_guard lock(mu);
    auto it = nodes.find(id);
    if (it == nodes.end()) return PlainError(res, 500, "node not found");
    std::string want = body.value("Eligibility", std::string());
    if (want != "eligible" && want != "ineligible") {
      return PlainError(res, 500, "invalid scheduling eligibility \"" + want + "\"");
    }
    if (want == "eligible" && !it->second.drain_strategy.is_null()) {
      return PlainError(
          res, 500, "can not set node's scheduling eligibility to eligible while it is draining");
    }
    it->second.eligibility = want;
    write_reply(res, BumpNode(it->second));
  };
  s.Put(R"(/v1/node/([^/]+)/eligibility)", eligibility);
  s.Post(R"(/v1/node/([^/]+)/eligibility)", eligibility);

  auto purge = [this, write_reply](const httplib::Request& req, httplib::Response& res) {
    if (!Authorized(req, res, Need::node_write)) return;
    std::string id = req.matches[1];
    std::lock_guard lock(mu);
    auto it = nodes.find(id);
    if (it == nodes.end()) return PlainError(res, 500, "node not found");
    nodes.erase(it);
    for (auto& [_, a] : allocs) {
      if (a.node_id == id && !a.Terminal()) {
        a.client_status = "lost";
        a.desired_status = "stop";
        BumpAlloc(a);
      }
    }
    nodes_index = ++raft_index;
    changed.notify_all();
    write_reply(res, nodes_index);
  };
  s.Put(R"(/v1/node/([^/]+)/purge)", purge);
  s.Post(R"(/v1/node/([^/]+)/purge)", purge);

  s.Get(R"(/v1/allocation/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto caller = Authorized(req, res, Need::any);
    if (!caller) return;
    std::lock_guard lock(mu);
    auto it = allocs.find(req.matches[1]);
    if (it == allocs.end()) return PlainError(res, 404, "alloc not found");
    if (!caller->ReadsJobs(it->second.ns)) return PlainError(res, 403, "Permission denied");
    res.set_header("X-Nomad-Index", std::to_string(it->second.modify_index));
    res.set_content(AllocJson(it->second).dump(), "application/json");
  });

  s.Get("/v1/agent/self", [this](const httplib::Request& req, httplib::Response& res) {
    auto caller = Authorized(req, res, Need::any);
    if (!caller) return;
    // agent:read: the sim grants it to every known token, never to anonymous.
    if (!caller->acl_disabled && !caller->management && !caller->token)
      return PlainError(res, 403, "Permission denied");
    json body = {
        {"config",
         {{"Region", options.region}, {"Datacenter", "dc1"}, {"Version", {{"Version", "1.7.7"}}}}},
        {"member", {{"Name", "nomad-sim.global"}, {"Addr", "127.0.0.1"}, {"Status", "alive"}}},
        {"stats", {{"nomad", {{"leader", "true"}, {"server", "true"}}}}}};
    res.set_content(body.dump(), "application/json");
  });

  // No ACL, like Nomad's: where a client checks that Nomad answers at all.
  s.Get("/v1/status/leader", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("\"127.0.0.1:4647\"", "application/json");
  });

  s.Get("/v1/acl/token/self", [this](const httplib::Request& req, httplib::Response& res) {
    if (!AclEnabled()) return PlainError(res, 400, "ACL support disabled");
    auto caller = Identify(req, res);
    if (!caller) return;
    json token = {{"AccessorID", "00000000-0000-0000-0000-000000000000"},
                  {"SecretID", ""},
                  {"Name", "Anonymous Token"},
                  {"Type", "client"},
                  {"Policies", json::array({"anonymous"})},
                  {"Roles", json::array()},
                  {"Global", false},
                  {"CreateIndex", 0},
                  {"ModifyIndex", 0}};
    if (caller->management || caller->token) {
      token["AccessorID"] = "11111111-2222-3333-4444-" + std::string(12, '5');
      token["Name"] = caller->management ? "sim management token" : "sim client token";
      token["Type"] = caller->management ? "management" : "client";
      token["Policies"] =
          caller->management ? json::array() : json::array({PolicyName(*caller->token)});
    }
    res.set_content(token.dump(), "application/json");
  });

  // A policy may be read by a management token or a token that has it.
  s.Get(R"(/v1/acl/policy/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    if (!AclEnabled()) return PlainError(res, 400, "ACL support disabled");
    auto caller = Identify(req, res);
    if (!caller) return;
    std::string name = req.matches[1];
    if (name == "anonymous") return PlainError(res, 404, "ACL policy not found");
    for (const auto& t : options.tokens) {
      if (t.management || PolicyName(t) != name) continue;
      if (!caller->management && caller->token != &t)
        return PlainError(res, 403, "Permission denied");
      return res.set_content(PolicyJson(t).dump(), "application/json");
    }
    if (!caller->management) return PlainError(res, 403, "Permission denied");
    PlainError(res, 404, "ACL policy not found");
  });

  // The namespaces the caller has any capability in (here: read-job).
  s.Get("/v1/namespaces", [this](const httplib::Request& req, httplib::Response& res) {
    auto caller = Authorized(req, res, Need::any);
    if (!caller) return;
    std::set<std::string> names = {"default"};
    {
      std::lock_guard lock(mu);
      for (auto& [_, a] : allocs) names.insert(a.ns);
    }
    json out = json::array();
    for (const auto& n : names) {
      if (!caller->ReadsJobs(n)) continue;
      out.push_back({{"Name", n}, {"Description", ""}, {"CreateIndex", 1}, {"ModifyIndex", 1}});
    }
    res.set_header("X-Nomad-Index", "1");
    res.set_content(out.dump(), "application/json");
  });

  // Jobs exist only as the allocations' job IDs; enough for a read-job probe.
  s.Get(R"(/v1/job/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto caller = Authorized(req, res, Need::any);
    if (!caller) return;
    std::string ns = req.has_param("namespace") ? req.get_param_value("namespace") : "default";
    if (!caller->ReadsJobs(ns)) return PlainError(res, 403, "Permission denied");
    std::lock_guard lock(mu);
    for (auto& [_, a] : allocs) {
      if (a.job_id != req.matches[1] || a.ns != ns) continue;
      json job = {{"ID", a.job_id}, {"Name", a.job_id}, {"Namespace", a.ns}, {"Type", a.job_type}};
      return res.set_content(job.dump(), "application/json");
    }
    PlainError(res, 404, "job not found");
  });

  // --- admin surface, not part of Nomad's API ---
  s.Post("/sim/nodes", [this](const httplib::Request& req, httplib::Response& res) {
    auto b = json::parse(req.body, nullptr, false);
    if (b.is_discarded() || !b.is_object() || !b.value("instance", json()).is_string()) {
      return PlainError(res, 400,
                        "expected {\"instance\": string, \"node_class\"?, \"datacenter\"?, "
                        "\"node_pool\"?, \"cpu\"?, \"memory_mb\"?}");
    }
    try {
      auto id = Register(b["instance"], b.value("node_class", ""), b.value("datacenter", "dc1"),
                         b.value("node_pool", "default"), b.value("cpu", std::int64_t{2500}),
                         b.value("memory_mb", std::int64_t{2048}));
      res.set_content(json{{"ID", id}}.dump(), "application/json");
    } catch (const std::exception& e) {
      PlainError(res, 409, e.what());
    }
  });
  s.Post(R"(/sim/nodes/([^/]+)/down)", [this](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    for (auto& [_, n] : nodes) {
      if (n.instance == req.matches[1] && n.status != "down") {
        n.status = "down";
        BumpNode(n);
        return res.set_content("{}", "application/json");
      }
    }
    PlainError(res, 404, "no live node for instance");
  });
  // {"outage"?: bool, "forbidden"?: bool, "migration_delay_ms"?: int, ...}:
  // what is given changes; the rest of the body goes to the fault hook
  // (cluster-sim passes launch faults on to its Multipass world).
  s.Post("/sim/faults", [this](const httplib::Request& req, httplib::Response& res) {
    auto b = json::parse(req.body, nullptr, false);
    if (b.is_discarded() || !b.is_object()) return PlainError(res, 400, "expected an object");
    std::function<void(const json&)> hook;
    {
      std::lock_guard lock(mu);
      if (b.contains("outage")) outage = b["outage"].get<bool>();
      if (b.contains("forbidden")) forbidden = b["forbidden"].get<bool>();
      if (b.contains("migration_delay_ms")) {
        options.migration_delay = milliseconds(b["migration_delay_ms"].get<std::int64_t>());
      }
      hook = fault_hook;
    }
    try {
      if (hook) hook(b);
    } catch (const std::exception& e) {
      return PlainError(res, 400, e.what());
    }
    res.set_content("{}", "application/json");
  });
  s.Get("/sim/undrained_deletions", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu);
    res.set_content(json(undrained_deletions).dump(), "application/json");
  });
  s.Post("/sim/allocations", [this](const httplib::Request& req, httplib::Response& res) {
    auto b = json::parse(req.body, nullptr, false);
    if (b.is_discarded() || !b.is_object() || !b.value("node_id", json()).is_string()) {
      return PlainError(res, 400,
                        "expected {\"node_id\": string, \"job_type\"?, \"client_status\"?, "
                        "\"cpu\"?, \"memory_mb\"?, \"namespace\"?}");
    }
    try {
      auto id = AddAlloc(b["node_id"], b.value("job_type", "service"),
                         b.value("client_status", "running"), b.value("cpu", std::int64_t{100}),
                         b.value("memory_mb", std::int64_t{256}), b.value("namespace", "default"));
      res.set_content(json{{"ID", id}}.dump(), "application/json");
    } catch (const std::exception& e) {
      PlainError(res, 404, e.what());
    }
  });
}

NomadSim::NomadSim(NomadSimOptions options) : state_(std::make_unique<State>(std::move(options))) {
  state_->Routes();
  // Blocking queries hold a worker each: more than httplib's default pool.
  state_->server.new_task_queue = [] { return new httplib::ThreadPool(64); };
  state_->server.set_keep_alive_timeout(1);
}

NomadSim::~NomadSim() {
  Stop();
}

namespace {

// Debian's compiled cpp-httplib 0.11 listens with a backlog of 5: more
// simultaneous connects (16 parallel drains) overflow it and the client's SYN
// is retried a whole second later. listen() again on the bound socket raises
// the backlog; the socket is found by its port since httplib keeps it private.
void WidenListenBacklog(int port) {
  for (int fd = 3; fd < 4096; ++fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_in addr{};
    socklen_t alen = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) == 0 &&
        addr.sin_family == AF_INET && ntohs(addr.sin_port) == port) {
      listen(fd, 256);
      return;
    }
  }
}

}  // namespace

int NomadSim::Start(int port) {
  State& s = *state_;
  if (s.listener.joinable()) return s.port;
  if (port == 0) {
    s.port = s.server.bind_to_any_port("127.0.0.1");
  } else {
    s.port = s.server.bind_to_port("127.0.0.1", port) ? port : -1;
  }
  if (s.port <= 0)
    throw std::runtime_error("NomadSim: cannot bind 127.0.0.1:" + std::to_string(port));
  WidenListenBacklog(s.port);
  {
    std::lock_guard lock(s.mu);
    s.stopping = false;
  }
  s.listener = std::thread([&s] { s.server.listen_after_bind(); });
  // httplib's stop() does nothing until the server runs: wait, so that a
  // Stop() right after Start() cannot leave the listener thread behind.
  for (int i = 0; i < 5000 && !s.server.is_running(); ++i)
    std::this_thread::sleep_for(milliseconds(1));
  s.ticker = std::thread([&s] {
    std::unique_lock lock(s.mu);
    while (!s.stopping) {
      s.Advance();
      s.changed.wait_for(lock, milliseconds(5));
    }
  });
  spdlog::info("simulated Nomad listening on 127.0.0.1:{}", s.port);
  return s.port;
}

void NomadSim::Stop() {
  State& s = *state_;
  {
    std::lock_guard lock(s.mu);
    s.stopping = true;
    s.changed.notify_all();
  }
  s.server.stop();
  if (s.listener.joinable()) s.listener.join();
  if (s.ticker.joinable()) s.ticker.join();
}

int NomadSim::port() const {
  return state_->port;
}
std::string NomadSim::address() const {
  return "http://127.0.0.1:" + std::to_string(state_->port);
}

std::string NomadSim::RegisterNode(const std::string& instance_name, const std::string& node_class,
                                   const std::string& datacenter, const std::string& node_pool,
                                   std::int64_t cpu_shares, std::int64_t memory_mb) {
  return state_->Register(instance_name, node_class, datacenter, node_pool, cpu_shares, memory_mb);
}

std::string NomadSim::Rejoin(const std::string& instance_name, const std::string& node_class) {
  std::lock_guard lock(state_->mu);
  auto& s = *state_;
  auto known = s.client_node_ids.find(instance_name);
  if (known == s.client_node_ids.end())
    return s.RegisterLocked(instance_name, node_class, "dc1", "default", 2500, 2048, s.NewId());
  auto it = s.nodes.find(known->second);
  if (it == s.nodes.end())
    return s.RegisterLocked(instance_name, node_class, "dc1", "default", 2500, 2048, known->second);
  SimNode& n = it->second;
  // Still up (it came back before its heartbeat was missed): nothing changes.
  if (n.status != "down") return n.id;
  // Nomad keeps a re-registering node's eligibility and drain: the server
  // owns them, not the client.
  n.status = "initializing";
  n.ready_at = Clock::now() + s.options.ready_delay;
  n.status_updated_at = UnixNanos() / 1000000000;
  s.NodeEvent(n, "Cluster", "Node re-registered");
  s.BumpNode(n);
  s.changed.notify_all();
  return n.id;
}

bool NomadSim::MarkDown(const std::string& instance_name, bool record_undrained) {
  std::lock_guard lock(state_->mu);
  for (auto& [_, n] : state_->nodes) {
    if (n.instance == instance_name && n.status != "down") {
      if (record_undrained && n.eligibility == "eligible" && n.status == "ready") {
        auto age = std::chrono::duration_cast<milliseconds>(Clock::now() - n.registered_at);
        state_->undrained_deletions.push_back({{"instance", instance_name},
                                               {"node_id", n.id},
                                               {"at", Rfc3339Now()},
                                               {"node_age_ms", age.count()}});
      }
      n.status = "down";
      state_->NodeEvent(n, "Cluster", "Node heartbeat missed");
      state_->BumpNode(n);
      return true;
    }
  }
  return false;
}

std::string NomadSim::AddAllocation(const std::string& node_id, const std::string& job_type,
                                    const std::string& client_status, std::int64_t cpu,
                                    std::int64_t memory_mb, const std::string& ns) {
  return state_->AddAlloc(node_id, job_type, client_status, cpu, memory_mb, ns);
}

void NomadSim::OnFault(std::function<void(const nlohmann::json&)> hook) {
  std::lock_guard lock(state_->mu);
  state_->fault_hook = std::move(hook);
}

void NomadSim::SetMigrationDelay(std::chrono::milliseconds delay) {
  std::lock_guard lock(state_->mu);
  state_->options.migration_delay = delay;
}

bool NomadSim::SetNodeMigrationDelay(const std::string& node_id, std::chrono::milliseconds delay) {
  std::lock_guard lock(state_->mu);
  auto it = state_->nodes.find(node_id);
  if (it == state_->nodes.end()) return false;
  it->second.migration_delay = delay;
  return true;
}

std::optional<nlohmann::json> NomadSim::NodeJson(const std::string& node_id) const {
  std::lock_guard lock(state_->mu);
  auto it = state_->nodes.find(node_id);
  if (it == state_->nodes.end()) return std::nullopt;
  return state_->FullNode(it->second);
}

std::vector<nlohmann::json> NomadSim::AllocationsJson(const std::string& node_id) const {
  std::lock_guard lock(state_->mu);
  std::vector<json> out;
  for (auto& [_, a] : state_->allocs) {
    if (a.node_id == node_id) out.push_back(state_->AllocJson(a));
  }
  return out;
}

std::size_t NomadSim::NodeCount() const {
  std::lock_guard lock(state_->mu);
  return state_->nodes.size();
}

SimAclToken ParseSimAclToken(const std::string& spec) {
  SimAclToken t;
  auto eq = spec.find('=');
  t.secret = spec.substr(0, eq);
  if (t.secret.empty()) throw std::invalid_argument("empty token secret in \"" + spec + "\"");
  if (eq == std::string::npos) {
    t.management = true;
    return t;
  }
  std::string rest = spec.substr(eq + 1);
  std::string namespaces = rest;
  if (auto semi = rest.find(';'); semi != std::string::npos) {
    namespaces = rest.substr(0, semi);
    std::string node = rest.substr(semi + 1);
    if (!node.starts_with("node="))
      throw std::invalid_argument("expected ;node=read|write|deny after the namespaces, got \"" +
                                  node + "\"");
    t.node_policy = node.substr(5);
    if (t.node_policy != "read" && t.node_policy != "write" && t.node_policy != "deny")
      throw std::invalid_argument("node policy must be read, write or deny, got \"" +
                                  t.node_policy + "\"");
  }
  std::size_t start = 0;
  while (start <= namespaces.size() && !namespaces.empty()) {
    auto comma = namespaces.find(',', start);
    auto ns =
        namespaces.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (ns.empty()) throw std::invalid_argument("empty namespace in \"" + spec + "\"");
    t.read_job_namespaces.push_back(ns);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return t;
}

}  // namespace mps::sim
