#pragma once
// The agent's SetConfig map for multipass-target, parsed and validated in one
// pass so that one error names every missing or invalid key.
//
// Two modes:
//  - split: bus_key_path (our secret key, z85 file) and either one host,
//    hostd_address (bus endpoint tcp://host:port or ipc:///path) with
//    hostd_server_key_path (hostd's public key, z85 file), or several,
//    hosts_file (config/hosts_file.h);
//  - direct (the existing Go plugin's keys): multipass_address,
//    client_cert_path, client_key_path, passphrase.
// Optional in both: multipass_ca_path, multipass_server_name, state_dir,
// max_parallel_launches, status_address (+ status_server_key_path,
// status_authorized_keys_path), metrics_address (Prometheus /metrics and
// /ready, host:port or a bare port on loopback). nomad_* keys are kept raw for the Nomad client
// config; only their cheap formats (bool, Go duration) are checked here.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/hosts_file.h"

namespace mps::plugin {

// The name of the one host configured with hostd_address and
// hostd_server_key_path (what Status, events and a `hosts` policy call it).
inline constexpr std::string_view kSingleHostName = "default";

struct SplitModeConfig {
  // Every host, in the hosts file's order; one (kSingleHostName) when
  // configured with hostd_address and hostd_server_key_path.
  std::vector<config::HostEntry> hosts;
  std::optional<std::filesystem::path> hosts_file;
  // The first host's address and key.
  std::string hostd_address;
  std::filesystem::path hostd_server_key_path;
  std::filesystem::path bus_key_path;
  std::string hostd_server_public_key;  // z85, 40 chars
  std::string bus_secret_key;           // z85, 40 chars; never log it
};

struct DirectModeConfig {
  std::string multipass_address;
  std::filesystem::path client_cert_path;
  std::filesystem::path client_key_path;
  std::string passphrase;  // never log it
};

// Where multipass-target serves `mpscale status` / `mpscale events`
// (status_address; events on the endpoint EventsEndpointFor gives). Only
// reads are served there, so every key admitted is a read-only key.
struct StatusEndpointConfig {
  std::string address;                        // tcp://host:port or ipc:///path
  std::string server_secret_key;              // z85; required for tcp; never log it
  std::filesystem::path authorized_keys_dir;  // *.pub; required for tcp
};

struct ConfigProblem {
  std::string key;       // the config key (or both key sets for mode errors)
  std::string expected;  // what a valid value looks like, and what was wrong
};

struct PluginConfig {
  static constexpr int kDefaultMaxParallelLaunches = 4;
  static constexpr int kMaxMaxParallelLaunches = 64;

  std::variant<SplitModeConfig, DirectModeConfig> mode;
  std::optional<std::filesystem::path> multipass_ca_path;
  std::optional<std::string> multipass_server_name;
  std::optional<std::filesystem::path> state_dir;
  int max_parallel_launches = kDefaultMaxParallelLaunches;
  std::optional<StatusEndpointConfig> status;
  std::optional<std::string> metrics_address;  // host:port (a bare port: 127.0.0.1:port)
  std::map<std::string, std::string> nomad;    // every nomad_* key, raw

  bool split() const { return std::holds_alternative<SplitModeConfig>(mode); }

  // Throws PluginError{invalid_argument} whose message names every problem.
  // Unknown keys are logged as a warning.
  static PluginConfig Parse(const std::map<std::string, std::string>& raw);
};

struct PluginConfigParse {
  std::optional<PluginConfig> config;  // set only when problems is empty
  std::vector<ConfigProblem> problems;
  std::vector<std::string> unknown_keys;
};

// The non-throwing form behind PluginConfig::Parse.
PluginConfigParse ParsePluginConfig(const std::map<std::string, std::string>& raw);

// Every key ParsePluginConfig knows (the README documents exactly these).
std::vector<std::string> KnownPluginConfigKeys();

// "invalid plugin config: <key>: <expected>; <key>: <expected>..."
std::string DescribeProblems(const std::vector<ConfigProblem>& problems);

}  // namespace mps::plugin
