#include "nomad/nomad_config.h"

#include <cstdlib>

#include "config/go_values.h"
#include "nomad/nomad_error.h"

namespace mps::nomad {

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

EnvLookup EnvFromMap(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

namespace {

struct Source {
  std::string value;
  std::string origin;  // the key or env variable it came from, for errors
};

// A non-empty config value wins, then a non-empty env value (the autoscaler
// itself only copies non-empty agent values).
std::optional<Source> Lookup(const std::map<std::string, std::string>& keys, const EnvLookup& env,
                             const std::string& key, const char* env_name) {
  if (auto it = keys.find(key); it != keys.end() && !it->second.empty()) {
    return Source{it->second, key};
  }
  if (env_name != nullptr && env) {
    if (auto v = env(env_name); v && !v->empty()) return Source{*v, env_name};
  }
  return std::nullopt;
}

std::string ValueOr(const std::optional<Source>& s, std::string fallback) {
  return s ? s->value : std::move(fallback);
}

}  // namespace

NomadConnectionConfig FromConfigMap(const std::map<std::string, std::string>& keys,
                                    const EnvLookup& env) {
  NomadConnectionConfig c;
  if (auto addr = Lookup(keys, env, "nomad_address", "NOMAD_ADDR")) {
    const auto& a = addr->value;
    bool known = a.starts_with("http://") || a.starts_with("https://") || a.starts_with("unix://");
    if (!known || a.ends_with("://")) {
      throw NomadConfigError(addr->origin,
                             "expected an http://, https:// or unix:// address, got \"" + a + "\"");
    }
    c.address = a;
    while (c.address.size() > 8 && c.address.back() == '/' && !c.address.starts_with("unix://")) {
      c.address.pop_back();
    }
  }
  c.region = ValueOr(Lookup(keys, env, "nomad_region", "NOMAD_REGION"), "");
  c.namespace_name = ValueOr(Lookup(keys, env, "nomad_namespace", "NOMAD_NAMESPACE"), "");
  c.token = ValueOr(Lookup(keys, env, "nomad_token", "NOMAD_TOKEN"), "");
  if (auto auth = Lookup(keys, env, "nomad_http-auth", "NOMAD_HTTP_AUTH")) {
    auto colon = auth->value.find(':');
    c.http_auth_user = auth->value.substr(0, colon);
    if (c.http_auth_user.empty()) {
      throw NomadConfigError(auth->origin, "expected user or user:password, the user is empty");
    }
    if (colon != std::string::npos) c.http_auth_password = auth->value.substr(colon + 1);
  }
  c.ca_cert = ValueOr(Lookup(keys, env, "nomad_ca-cert", "NOMAD_CACERT"), "");
  c.ca_path = ValueOr(Lookup(keys, env, "nomad_ca-path", "NOMAD_CAPATH"), "");
  c.client_cert = ValueOr(Lookup(keys, env, "nomad_client-cert", "NOMAD_CLIENT_CERT"), "");
  c.client_key = ValueOr(Lookup(keys, env, "nomad_client-key", "NOMAD_CLIENT_KEY"), "");
  if (c.client_cert.empty() != c.client_key.empty()) {
    throw NomadConfigError(c.client_cert.empty() ? "nomad_client-cert" : "nomad_client-key",
                           "a client certificate and its key must be given together");
  }
  c.tls_server_name =
      ValueOr(Lookup(keys, env, "nomad_tls-server-name", "NOMAD_TLS_SERVER_NAME"), "");
  if (auto sv = Lookup(keys, env, "nomad_skip-verify", "NOMAD_SKIP_VERIFY")) {
    auto b = config::ParseGoBool(sv->value);
    if (!b)
      throw NomadConfigError(sv->origin,
                             "expected a boolean (true/false/1/0), got \"" + sv->value + "\"");
    c.skip_verify = *b;
  }
  if (auto w = Lookup(keys, env, "nomad_block-query-wait-time", nullptr)) {
    auto d = config::ParseGoDuration(w->value);
    if (!d || *d <= std::chrono::nanoseconds::zero()) {
      throw NomadConfigError(
          w->origin, "expected a positive Go duration such as 5m or 30s, got \"" + w->value + "\"");
    }
    c.block_query_wait = *d;
  }
  return c;
}

std::string NomadConnectionConfig::Describe() const {
  std::string s = "address=" + address;
  if (!region.empty()) s += " region=" + region;
  if (!namespace_name.empty()) s += " namespace=" + namespace_name;
  s += token.empty() ? " token=none" : " token=set";
  if (!http_auth_user.empty()) s += " http-auth-user=" + http_auth_user;
  if (!ca_cert.empty()) s += " ca-cert=" + ca_cert;
  if (!ca_path.empty()) s += " ca-path=" + ca_path;
  if (!client_cert.empty()) s += " client-cert=" + client_cert;
  if (!tls_server_name.empty()) s += " tls-server-name=" + tls_server_name;
  if (skip_verify) s += " skip-verify=true";
  s += " block-query-wait=" + config::FormatGoDuration(block_query_wait);
  return s;
}

std::string_view KindName(NomadError::Kind kind) {
  switch (kind) {
    case NomadError::Kind::unreachable:
      return "unreachable";
    case NomadError::Kind::forbidden:
      return "forbidden";
    case NomadError::Kind::not_found:
      return "not_found";
    case NomadError::Kind::node_gone:
      return "node_gone";
    case NomadError::Kind::bad_request:
      return "bad_request";
    case NomadError::Kind::server_error:
      return "server_error";
    case NomadError::Kind::bad_response:
      return "bad_response";
    case NomadError::Kind::timeout:
      return "timeout";
    case NomadError::Kind::cancelled:
      return "cancelled";
  }
  return "unknown";
}

}  // namespace mps::nomad
