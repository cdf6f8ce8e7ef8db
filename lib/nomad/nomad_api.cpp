#include "nomad/nomad_api.h"

#include <curl/curl.h>
#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>
#include <type_traits>

#include "nomad/nomad_error.h"

namespace mps::nomad {
namespace {

using Kind = NomadError::Kind;

// libcurl, loaded on the first Nomad call rather than at exec. With it come
// some 25 libraries (GnuTLS, Kerberos, LDAP, SSH, ...), and mapping and
// relocating them was a third of multipass-target's start-up before its
// go-plugin handshake, which needs none of them.
struct CurlLib {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_escape) easy_escape;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_free) free;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
  decltype(&curl_multi_init) multi_init;
  decltype(&curl_multi_cleanup) multi_cleanup;
  decltype(&curl_multi_add_handle) multi_add_handle;
  decltype(&curl_multi_remove_handle) multi_remove_handle;
  decltype(&curl_multi_perform) multi_perform;
  decltype(&curl_multi_info_read) multi_info_read;
  decltype(&curl_multi_poll) multi_poll;
  decltype(&curl_multi_wakeup) multi_wakeup;
  std::string error;  // why it could not be loaded; empty when loaded
};

CurlLib LoadCurl() {
  CurlLib lib{};
  void* h = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);  // never closed
  if (!h) {
    const char* why = ::dlerror();
    lib.error = std::string("cannot load libcurl.so.4: ") + (why ? why : "unknown error");
    return lib;
  }
  auto sym = [&](auto& slot, const char* name) {
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(::dlsym(h, name));
    if (!slot && lib.error.empty()) lib.error = std::string("libcurl.so.4 lacks ") + name;
  };
  sym(lib.global_init, "curl_global_init");
  sym(lib.easy_init, "curl_easy_init");
  sym(lib.easy_cleanup, "curl_easy_cleanup");
  sym(lib.easy_setopt, "curl_easy_setopt");
  sym(lib.easy_getinfo, "curl_easy_getinfo");
  sym(lib.easy_escape, "curl_easy_escape");
  sym(lib.easy_strerror, "curl_easy_strerror");
  sym(lib.free, "curl_free");
  sym(lib.slist_append, "curl_slist_append");
  sym(lib.slist_free_all, "curl_slist_free_all");
  sym(lib.multi_init, "curl_multi_init");
  sym(lib.multi_cleanup, "curl_multi_cleanup");
  sym(lib.multi_add_handle, "curl_multi_add_handle");
  sym(lib.multi_remove_handle, "curl_multi_remove_handle");
  sym(lib.multi_perform, "curl_multi_perform");
  sym(lib.multi_info_read, "curl_multi_info_read");
  sym(lib.multi_poll, "curl_multi_poll");
  sym(lib.multi_wakeup, "curl_multi_wakeup");
  if (lib.error.empty()) lib.global_init(CURL_GLOBAL_DEFAULT);
  return lib;
}

// The loaded library (loaded and initialised once, thread-safe); throws
// NomadError(unreachable) when libcurl is missing.
const CurlLib& Curl() {
  static const CurlLib lib = LoadCurl();
  if (!lib.error.empty()) throw NomadError(Kind::unreachable, 0, lib.error);
  return lib;
}

std::size_t AppendBody(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::size_t ReadIndexHeader(char* data, std::size_t size, std::size_t n, void* out) {
  std::string_view line(data, size * n);
  constexpr std::string_view kName = "x-nomad-index:";
  if (line.size() > kName.size()) {
    bool match = true;
    for (std::size_t i = 0; i < kName.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(line[i])) != kName[i]) {
        match = false;
        break;
      }
    }
    if (match) {
      std::uint64_t v = 0;
      for (char c : line.substr(kName.size())) {
        if (c >= '0' && c <= '9') v = v * 10 + static_cast<std::uint64_t>(c - '0');
      }
      *static_cast<std::uint64_t*>(out) = v;
    }
  }
  return size * n;
}

std::string Trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

const char* CapabilityHint(const char* capability) {
  std::string_view c = capability;
  if (c == "node:read") return "node { policy = \"read\" }";
  if (c == "node:write") return "node { policy = \"write\" }";
  if (c == "read-job") return "namespace \"*\" { capabilities = [\"read-job\"] } plus node:read";
  if (c == "agent:read") return "agent { policy = \"read\" }";
  if (c == "acl:read-own") return "any valid token may read itself and its own policies";
  return "";
}

struct CurlDeleter {
  void operator()(CURL* c) const { Curl().easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { Curl().slist_free_all(l); }
};
struct MultiDeleter {
  void operator()(CURLM* m) const { Curl().multi_cleanup(m); }
};

// The longest a poll sleeps without news; Cancel() wakes it at once anyway.
constexpr int kPollMs = 1000;

}  // namespace

NomadApi::NomadApi(NomadConnectionConfig config, std::chrono::milliseconds request_timeout,
                   std::shared_ptr<const Cancellation> cancel)
    : config_(std::move(config)), request_timeout_(request_timeout), cancel_(std::move(cancel)) {}

void NomadApi::ThrowCancelled(const std::string& what) const {
  throw NomadError(Kind::cancelled, 0, what + " to Nomad at " + config_.address + " cancelled");
}

int NomadApi::Perform(void* easy, const std::string& what) const {
  const CurlLib& lib = Curl();
  std::unique_ptr<CURLM, MultiDeleter> multi(lib.multi_init());
  if (!multi) throw NomadError(Kind::unreachable, 0, "cannot create a libcurl multi handle");
  CURLM* m = multi.get();
  if (lib.multi_add_handle(m, easy) != CURLM_OK)
    throw NomadError(Kind::unreachable, 0, "cannot add a libcurl handle for " + what);
  // Declared after `multi`, so it is gone (and no wake-up can run) before the
  // multi handle is cleaned up. curl_multi_wakeup is safe from any thread.
  Cancellation::Registration wake;
  if (cancel_) wake = cancel_->OnCancel([&lib, m] { lib.multi_wakeup(m); });
  CURLcode result = CURLE_OK;
  bool cancelled = false;
  for (;;) {
    // Checked before every poll: a Cancel() between the check and the poll
    // leaves a pending wake-up, so that poll returns at once.
    if (cancel_ && cancel_->cancelled()) {
      cancelled = true;
      break;
    }
    int running = 0;
    CURLMcode mc = lib.multi_perform(m, &running);
    if (mc != CURLM_OK) {
      result = CURLE_RECV_ERROR;
      break;
    }
    bool done = false;
    int left = 0;
    while (CURLMsg* msg = lib.multi_info_read(m, &left)) {
      if (msg->msg == CURLMSG_DONE) {
        result = msg->data.result;
        done = true;
      }
    }
    if (done) break;
    mc = lib.multi_poll(m, nullptr, 0, kPollMs, nullptr);
    if (mc != CURLM_OK) {
      result = CURLE_RECV_ERROR;
      break;
    }
  }
  lib.multi_remove_handle(m, easy);
  if (cancelled) ThrowCancelled(what);
  return static_cast<int>(result);
}

NomadApi::Response NomadApi::Call(const std::string& method, const std::string& path,
                                  std::vector<std::pair<std::string, std::string>> params,
                                  const std::optional<std::string>& body,
                                  const std::optional<BlockingQuery>& block, const char* capability,
                                  const std::string& node_id) const {
  if (cancel_ && cancel_->cancelled()) ThrowCancelled(method + " " + path);
  const CurlLib& lib = Curl();
  std::unique_ptr<CURL, CurlDeleter> curl(lib.easy_init());
  if (!curl) throw NomadError(Kind::unreachable, 0, "cannot create a libcurl handle");
  CURL* h = curl.get();

  auto timeout = request_timeout_;
  if (!config_.region.empty()) params.emplace_back("region", config_.region);
  const bool has_namespace = std::any_of(params.begin(), params.end(),
                                         [](const auto& p) { return p.first == "namespace"; });
  if (!config_.namespace_name.empty() && !has_namespace)
    params.emplace_back("namespace", config_.namespace_name);
  if (block) {
    auto wait =
        block->wait.count() > 0
            ? block->wait
            : std::chrono::duration_cast<std::chrono::milliseconds>(config_.block_query_wait);
    params.emplace_back("index", std::to_string(block->index));
    params.emplace_back("wait", std::to_string(wait.count()) + "ms");
    timeout += wait + wait / 16;
  }

  std::string base = config_.address;
  if (base.starts_with("unix://")) {
    lib.easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, base.substr(7).c_str());
    base = "http://localhost";
  }
  std::string query;
  for (auto& [k, v] : params) {
    char* esc = lib.easy_escape(h, v.c_str(), static_cast<int>(v.size()));
    query += (query.empty() ? "?" : "&") + k + "=" + (esc ? esc : "");
    lib.free(esc);
  }
  std::string url = base + path + query;

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&](const std::string& line) {
    headers.reset(lib.slist_append(headers.release(), line.c_str()));
  };
  if (!config_.token.empty()) add_header("X-Nomad-Token: " + config_.token);
  if (body) add_header("Content-Type: application/json");

  Response r;
  lib.easy_setopt(h, CURLOPT_URL, url.c_str());
  lib.easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (body) {
    lib.easy_setopt(h, CURLOPT_POSTFIELDS, body->c_str());
    lib.easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
  } else if (method != "GET") {
    lib.easy_setopt(h, CURLOPT_POSTFIELDS, "");
    lib.easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
  }
  lib.easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  lib.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  lib.easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  lib.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request_timeout_.count()));
  lib.easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");  // gzip when the server offers it
  lib.easy_setopt(h, CURLOPT_WRITEFUNCTION, AppendBody);
  lib.easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
  lib.easy_setopt(h, CURLOPT_HEADERFUNCTION, ReadIndexHeader);
  lib.easy_setopt(h, CURLOPT_HEADERDATA, &r.index);
  if (!config_.http_auth_user.empty()) {
    lib.easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    lib.easy_setopt(h, CURLOPT_USERNAME, config_.http_auth_user.c_str());
    lib.easy_setopt(h, CURLOPT_PASSWORD, config_.http_auth_password.value_or("").c_str());
  }
  if (!config_.ca_cert.empty()) lib.easy_setopt(h, CURLOPT_CAINFO, config_.ca_cert.c_str());
  if (!config_.ca_path.empty()) lib.easy_setopt(h, CURLOPT_CAPATH, config_.ca_path.c_str());
  if (!config_.client_cert.empty()) {
    lib.easy_setopt(h, CURLOPT_SSLCERT, config_.client_cert.c_str());
    lib.easy_setopt(h, CURLOPT_SSLKEY, config_.client_key.c_str());
  }
  // A server name that differs from the URL host: verify against that name
  // while still connecting to the address (what Go's tls.Config.ServerName does).
  std::unique_ptr<curl_slist, SlistDeleter> connect_to;
  if (!config_.tls_server_name.empty() && config_.address.starts_with("https://")) {
    std::string rest = config_.address.substr(8);
    rest = rest.substr(0, rest.find('/'));
    std::string host = rest, port = "443";
    if (auto colon = rest.rfind(':'); colon != std::string::npos && rest.back() != ']') {
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
    }
    url = "https://" + config_.tls_server_name + ":" + port + path + query;
    lib.easy_setopt(h, CURLOPT_URL, url.c_str());
    connect_to.reset(lib.slist_append(
        nullptr, (config_.tls_server_name + ":" + port + ":" + host + ":" + port).c_str()));
    lib.easy_setopt(h, CURLOPT_CONNECT_TO, connect_to.get());
  }
  if (config_.skip_verify) {
    lib.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    lib.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }

  const std::string what = method + " " + path;
  const auto rc = static_cast<CURLcode>(Perform(h, what));
  if (rc != CURLE_OK) {
    std::string detail = lib.easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      throw NomadError(Kind::timeout, 0,
                       "Nomad at " + config_.address + " did not answer " + what + " within " +
                           std::to_string(timeout.count()) + " ms");
    }
    throw NomadError(Kind::unreachable, 0,
                     "cannot reach Nomad at " + config_.address + " for " + what + ": " + detail);
  }
  lib.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  if (r.status >= 200 && r.status < 300) return r;

  const std::string said = Trimmed(r.body);
  const std::string nomad_said = "Nomad answered " + what + " with " + std::to_string(r.status) +
                                 (said.empty() ? std::string() : " \"" + said + "\"");
  const int code = static_cast<int>(r.status);
  if (code == 403) {
    throw NomadError(Kind::forbidden, code,
                     nomad_said + ": the token (nomad_token / NOMAD_TOKEN) needs the " +
                         capability + " capability (" + CapabilityHint(capability) + ")");
  }
  if (!node_id.empty() && (code == 404 || said.ends_with("node not found"))) {
    throw NomadError(Kind::node_gone, code, nomad_said + ": node " + node_id + " no longer exists");
  }
  if (code == 404) throw NomadError(Kind::not_found, code, nomad_said);
  if (code == 400 || code == 405) throw NomadError(Kind::bad_request, code, nomad_said);
  if (code >= 500) throw NomadError(Kind::server_error, code, nomad_said);
  throw NomadError(Kind::bad_response, code, nomad_said);
}

nlohmann::json NomadApi::ParseBody(const Response& r, const std::string& what) const {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded()) {
    throw NomadError(Kind::bad_response, static_cast<int>(r.status),
                     "Nomad answered " + what + " with a body that is not JSON (" +
                         std::to_string(r.body.size()) + " bytes)");
  }
  return j;
}

std::vector<NodeStub> NomadApi::ListNodes(bool resources,
                                          const std::optional<std::string>& filter) const {
  std::vector<std::pair<std::string, std::string>> params;
  if (resources) params.emplace_back("resources", "true");
  if (filter && !filter->empty()) params.emplace_back("filter", *filter);
  auto r = Call("GET", "/v1/nodes", params, std::nullopt, std::nullopt, "node:read", "");
  return ParseNodeList(ParseBody(r, "GET /v1/nodes"));
}

Indexed<std::vector<NodeStub>> NomadApi::WatchNodes(const BlockingQuery& block) const {
  auto r = Call("GET", "/v1/nodes", {}, std::nullopt, block, "node:read", "");
  return {ParseNodeList(ParseBody(r, "GET /v1/nodes")), r.index};
}

Indexed<Node> NomadApi::GetNode(const std::string& node_id,
                                const std::optional<BlockingQuery>& block) const {
  std::string path = "/v1/node/" + node_id;
  auto r = Call("GET", path, {}, std::nullopt, block, "node:read", node_id);
  return {ParseNode(ParseBody(r, "GET " + path)), r.index};
}

Indexed<std::vector<Allocation>> NomadApi::GetNodeAllocations(
    const std::string& node_id, const std::optional<BlockingQuery>& block) const {
  std::string path = "/v1/node/" + node_id + "/allocations";
  // An unknown node gives [] here, so no node_id: a 404 would be a route problem.
  auto r = Call("GET", path, {}, std::nullopt, block, "read-job", "");
  return {ParseAllocationList(ParseBody(r, "GET " + path)), r.index};
}

std::uint64_t NomadApi::DrainNode(const std::string& node_id, const DrainSpec& spec,
                                  const std::map<std::string, std::string>& meta) const {
  nlohmann::json body = {
      {"NodeID", node_id},
      {"DrainSpec",
       {{"Deadline", spec.deadline_ns}, {"IgnoreSystemJobs", spec.ignore_system_jobs}}},
      {"MarkEligible", false},
      {"Meta", meta}};
  auto r = Call("PUT", "/v1/node/" + node_id + "/drain", {}, body.dump(), std::nullopt,
                "node:write", node_id);
  return r.index;
}

std::uint64_t NomadApi::CancelDrain(const std::string& node_id, bool mark_eligible) const {
  nlohmann::json body = {
      {"NodeID", node_id}, {"DrainSpec", nullptr}, {"MarkEligible", mark_eligible}};
  auto r = Call("PUT", "/v1/node/" + node_id + "/drain", {}, body.dump(), std::nullopt,
                "node:write", node_id);
  return r.index;
}

std::uint64_t NomadApi::SetEligibility(const std::string& node_id, bool eligible) const {
  nlohmann::json body = {{"NodeID", node_id},
                         {"Eligibility", eligible ? "eligible" : "ineligible"}};
  auto r = Call("PUT", "/v1/node/" + node_id + "/eligibility", {}, body.dump(), std::nullopt,
                "node:write", node_id);
  return r.index;
}

std::uint64_t NomadApi::PurgeNode(const std::string& node_id) const {
  auto r = Call("PUT", "/v1/node/" + node_id + "/purge", {}, std::nullopt, std::nullopt,
                "node:write", node_id);
  return r.index;
}

Allocation NomadApi::GetAllocation(const std::string& alloc_id) const {
  std::string path = "/v1/allocation/" + alloc_id;
  auto r = Call("GET", path, {}, std::nullopt, std::nullopt, "read-job", "");
  return ParseAllocation(ParseBody(r, "GET " + path));
}

nlohmann::json NomadApi::AgentSelf() const {
  auto r = Call("GET", "/v1/agent/self", {}, std::nullopt, std::nullopt, "agent:read", "");
  auto j = ParseBody(r, "GET /v1/agent/self");
  if (!j.is_object()) {
    throw NomadError(Kind::bad_response, 200, "Nomad response key agent/self: expected an object");
  }
  return j;
}

std::string NomadApi::Leader() const {
  auto r = Call("GET", "/v1/status/leader", {}, std::nullopt, std::nullopt, "", "");
  auto j = ParseBody(r, "GET /v1/status/leader");
  if (!j.is_string()) {
    throw NomadError(Kind::bad_response, 200, "Nomad response of status/leader: expected a string");
  }
  return j.get<std::string>();
}

std::optional<nlohmann::json> NomadApi::AclTokenSelf() const {
  try {
    auto r = Call("GET", "/v1/acl/token/self", {}, std::nullopt, std::nullopt, "acl:read-own", "");
    auto j = ParseBody(r, "GET /v1/acl/token/self");
    if (!j.is_object()) {
      throw NomadError(Kind::bad_response, 200,
                       "Nomad response of acl/token/self: expected an object");
    }
    return j;
  } catch (const NomadError& e) {
    if (e.kind == Kind::bad_request && e.message.find("ACL support disabled") != std::string::npos)
      return std::nullopt;
    throw;
  }
}

// GET of an ACL object under `path`: the object, or nullopt when Nomad has none.
std::optional<nlohmann::json> NomadApi::AclObject(const std::string& path) const {
  try {
    auto r = Call("GET", path, {}, std::nullopt, std::nullopt, "acl:read-own", "");
    auto j = ParseBody(r, "GET " + path);
    if (!j.is_object()) {
      throw NomadError(Kind::bad_response, 200,
                       "Nomad response of " + path + ": expected an object");
    }
    return j;
  } catch (const NomadError& e) {
    if (e.kind == Kind::not_found) return std::nullopt;
    throw;
  }
}

std::optional<nlohmann::json> NomadApi::AclPolicy(const std::string& name) const {
  return AclObject("/v1/acl/policy/" + name);
}

std::optional<nlohmann::json> NomadApi::AclRole(const std::string& id) const {
  return AclObject("/v1/acl/role/" + id);
}

std::vector<std::string> NomadApi::ListNamespaces() const {
  auto r = Call("GET", "/v1/namespaces", {}, std::nullopt, std::nullopt, "namespace read", "");
  auto j = ParseBody(r, "GET /v1/namespaces");
  std::vector<std::string> names;
  if (j.is_null()) return names;
  if (!j.is_array()) {
    throw NomadError(Kind::bad_response, 200, "Nomad response of namespaces: expected an array");
  }
  for (const auto& ns : j) {
    if (ns.is_object() && ns.contains("Name") && ns["Name"].is_string())
      names.push_back(ns["Name"].get<std::string>());
  }
  return names;
}

bool NomadApi::CanReadJobs(const std::string& ns) const {
  // An ID no job has: Nomad checks read-job before it looks the job up.
  const std::string path = "/v1/job/mpscale-read-job-probe-00000000";
  try {
    Call("GET", path, {{"namespace", ns}}, std::nullopt, std::nullopt, "read-job", "");
    return true;  // such a job exists after all: readable
  } catch (const NomadError& e) {
    if (e.kind == Kind::not_found) return true;
    if (e.kind == Kind::forbidden) return false;
    throw;
  }
}

}  // namespace mps::nomad
