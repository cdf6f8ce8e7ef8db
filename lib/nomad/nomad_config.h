#pragma once
// How to reach Nomad: the nomad_* keys the autoscaler merges into SetConfig,
// with Nomad's own NOMAD_* environment variables as fallback.
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace mps::nomad {

// Looks up an environment variable; injected so tests never touch the real one.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// getenv(); empty values count as unset.
EnvLookup ProcessEnv();
EnvLookup EnvFromMap(std::map<std::string, std::string> vars);

struct NomadConnectionConfig {
  std::string address = "http://127.0.0.1:4646";  // http://, https:// or unix:///path
  std::string region;
  std::string namespace_name;
  std::string token;  // secret: never logged
  std::string http_auth_user;
  std::optional<std::string> http_auth_password;  // secret
  std::string ca_cert;
  std::string ca_path;
  std::string client_cert;
  std::string client_key;
  std::string tls_server_name;
  bool skip_verify = false;
  std::chrono::nanoseconds block_query_wait = std::chrono::minutes(5);

  // For logs: everything but the secrets.
  std::string Describe() const;
};

// Throws NomadConfigError naming the key (or env variable) that is wrong.
NomadConnectionConfig FromConfigMap(const std::map<std::string, std::string>& keys,
                                    const EnvLookup& env);

}  // namespace mps::nomad
