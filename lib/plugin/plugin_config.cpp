#include "plugin/plugin_config.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>

#include <spdlog/spdlog.h>

#include "config/bus_values.h"
#include "config/go_values.h"
#include "config/hosts_file.h"
#include "plugin/plugin_error.h"

namespace mps::plugin {
namespace {

namespace fs = std::filesystem;
using Raw = std::map<std::string, std::string>;

constexpr std::array kSplitKeys{"hostd_address", "hostd_server_key_path", "bus_key_path",
                                "hosts_file"};
constexpr std::array kDirectKeys{"multipass_address", "client_cert_path", "client_key_path",
                                 "passphrase"};
constexpr std::array kOptionalKeys{
    "multipass_ca_path",           "multipass_server_name", "state_dir",
    "max_parallel_launches",       "status_address",        "status_server_key_path",
    "status_authorized_keys_path", "metrics_address"};
constexpr std::array kNomadKeys{
    "nomad_address",         "nomad_region",      "nomad_namespace",
    "nomad_token",           "nomad_http-auth",   "nomad_ca-cert",
    "nomad_ca-path",         "nomad_client-cert", "nomad_client-key",
    "nomad_tls-server-name", "nomad_skip-verify", "nomad_block-query-wait-time",
    "nomad_config_inherit"};

template <size_t N>
bool Contains(const std::array<const char*, N>& keys, const std::string& key) {
  return std::find_if(keys.begin(), keys.end(), [&](const char* k) { return key == k; }) !=
         keys.end();
}

template <size_t N>
std::string JoinKeys(const std::array<const char*, N>& keys) {
  std::string out;
  for (const char* k : keys) {
    if (!out.empty()) out += ", ";
    out += k;
  }
  return out;
}

// Empty values count as absent: the agent merges only non-empty values, and
// an empty path or address is never meant.
const std::string* Value(const Raw& raw, const std::string& key) {
  auto it = raw.find(key);
  if (it == raw.end() || it->second.empty()) return nullptr;
  return &it->second;
}

class Validator {
 public:
  explicit Validator(const Raw& raw) : raw_(raw) {}

  void Problem(std::string key, std::string expected) {
    problems_.push_back({std::move(key), std::move(expected)});
  }

  const std::string* Required(const std::string& key, const std::string& expected) {
    const std::string* v = Value(raw_, key);
    if (v == nullptr) Problem(key, "missing; expected " + expected);
    return v;
  }

  // A regular file this process can read; returns it when valid.
  std::optional<fs::path> ReadableFile(const std::string& key, const std::string& what,
                                       bool required) {
    const std::string* v = required ? Required(key, "the path of " + what) : Value(raw_, key);
    if (v == nullptr) return std::nullopt;
    std::error_code ec;
    fs::path p(*v);
    if (!fs::exists(p, ec)) {
      Problem(key, "file \"" + *v + "\" does not exist; expected the path of " + what);
      return std::nullopt;
    }
    if (!fs::is_regular_file(p, ec)) {
      Problem(key, "\"" + *v + "\" is not a regular file; expected the path of " + what);
      return std::nullopt;
    }
    if (::access(p.c_str(), R_OK) != 0) {
      Problem(key, "file \"" + *v + "\" is not readable by this process; expected " + what);
      return std::nullopt;
    }
    return p;
  }

  // A CurveZMQ key file: 40 z85 characters, trailing whitespace allowed.
  std::optional<std::string> Z85KeyFile(const std::string& key, const std::string& what) {
    const std::string* v = Required(key, "the path of " + what + " (z85 text file, 40 characters)");
    if (v == nullptr) return std::nullopt;
    try {
      return config::ReadZ85KeyFile(*v, what);
    } catch (const config::KeyFileError& e) {
      Problem(key, e.what());
      return std::nullopt;
    }
  }

  std::vector<ConfigProblem> TakeProblems() { return std::move(problems_); }
  bool ok() const { return problems_.empty(); }

 private:
  const Raw& raw_;
  std::vector<ConfigProblem> problems_;
};

// What grpc-go's Dial accepts in the Go plugin: host:port or unix:/unix:///path.
bool ValidGrpcAddress(const std::string& v) {
  if (v.rfind("unix:", 0) == 0) return v.find_first_not_of('/', 5) != std::string::npos;
  auto colon = v.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string port = v.substr(colon + 1);
  int n = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  return ec == std::errc() && ptr == port.data() + port.size() && n >= 1 && n <= 65535;
}

bool AnyPresent(const Raw& raw, const auto& keys) {
  return std::any_of(keys.begin(), keys.end(),
                     [&](const char* k) { return Value(raw, k) != nullptr; });
}

}  // namespace

PluginConfigParse ParsePluginConfig(const Raw& raw) {
  PluginConfigParse result;
  Validator v(raw);
  PluginConfig cfg;

  bool split = AnyPresent(raw, kSplitKeys);
  bool direct = AnyPresent(raw, kDirectKeys);
  if (split && direct) {
    v.Problem("hostd_address/multipass_address",
              "both split mode keys (" + JoinKeys(kSplitKeys) + ") and direct mode keys (" +
                  JoinKeys(kDirectKeys) + ") are set; expected exactly one of the two sets");
  } else if (!split && !direct) {
    v.Problem("hostd_address/multipass_address",
              "no mode configured; expected either the split mode keys (" + JoinKeys(kSplitKeys) +
                  ") or the direct mode keys (" + JoinKeys(kDirectKeys) + ")");
  } else if (split) {
    SplitModeConfig s;
    const std::string* hosts_file = Value(raw, "hosts_file");
    std::string single_keys;
    for (const char* key : {"hostd_address", "hostd_server_key_path"})
      if (Value(raw, key)) single_keys += (single_keys.empty() ? "" : "/") + std::string(key);
    if (hosts_file != nullptr && !single_keys.empty()) {
      v.Problem("hosts_file/" + single_keys,
                "both set; expected either hosts_file (a list of hosts) or hostd_address with "
                "hostd_server_key_path (one host), not both");
    } else if (hosts_file != nullptr) {
      try {
        s.hosts = config::ReadHostsFile(*hosts_file);
        s.hosts_file = *hosts_file;
        s.hostd_address = s.hosts.front().hostd_address;
        s.hostd_server_key_path = s.hosts.front().hostd_server_key_path;
        s.hostd_server_public_key = s.hosts.front().hostd_server_public_key;
      } catch (const config::HostsFileError& e) {
        for (const auto& problem : e.problems()) v.Problem("hosts_file", problem);
      }
    } else {
      if (const auto* a =
              v.Required("hostd_address",
                         "the hostd bus endpoint tcp://host:port or ipc:///path (or hosts_file)")) {
        if (config::IsBusEndpoint(*a)) {
          s.hostd_address = *a;
        } else {
          v.Problem("hostd_address", "\"" + *a +
                                         "\" is not a bus endpoint; expected tcp://host:port or "
                                         "ipc:///path");
        }
      }
      if (auto k = v.Z85KeyFile("hostd_server_key_path", "hostd's public key")) {
        s.hostd_server_public_key = *k;
        s.hostd_server_key_path = *Value(raw, "hostd_server_key_path");
      }
      config::HostEntry only;
      only.name = std::string(kSingleHostName);
      only.hostd_address = s.hostd_address;
      only.hostd_server_key_path = s.hostd_server_key_path;
      only.hostd_server_public_key = s.hostd_server_public_key;
      s.hosts.push_back(std::move(only));
    }
    if (auto k = v.Z85KeyFile("bus_key_path", "this plugin's secret key")) {
      s.bus_secret_key = *k;
      s.bus_key_path = *Value(raw, "bus_key_path");
    }
    cfg.mode = std::move(s);
  } else {
    DirectModeConfig d;
    if (const auto* a = v.Required("multipass_address",
                                   "multipassd's gRPC address host:port or unix:///path")) {
      if (ValidGrpcAddress(*a)) {
        d.multipass_address = *a;
      } else {
        v.Problem("multipass_address",
                  "\"" + *a + "\" is not a gRPC address; expected host:port or unix:///path");
      }
    }
    if (auto p = v.ReadableFile("client_cert_path", "the PEM client certificate", true)) {
      d.client_cert_path = *p;
    }
    if (auto p = v.ReadableFile("client_key_path", "the PEM client private key", true)) {
      d.client_key_path = *p;
    }
    if (const auto* p = v.Required("passphrase", "multipassd's authentication passphrase")) {
      d.passphrase = *p;
    }
    cfg.mode = std::move(d);
  }

  cfg.multipass_ca_path = v.ReadableFile("multipass_ca_path", "the PEM CA bundle", false);
  if (const auto* s = Value(raw, "multipass_server_name")) cfg.multipass_server_name = *s;
  if (const auto* s = Value(raw, "state_dir")) {
    std::error_code ec;
    if (fs::exists(*s, ec) && !fs::is_directory(*s, ec)) {
      v.Problem("state_dir", "\"" + *s + "\" exists and is not a directory; expected a directory");
    } else {
      cfg.state_dir = *s;
    }
  }
  if (const auto* s = Value(raw, "max_parallel_launches")) {
    int n = 0;
    auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
    if (ec != std::errc() || ptr != s->data() + s->size() || n < 1 ||
        n > PluginConfig::kMaxMaxParallelLaunches) {
      v.Problem("max_parallel_launches", "\"" + *s +
                                             "\" is not valid; expected an integer from 1 to " +
                                             std::to_string(PluginConfig::kMaxMaxParallelLaunches));
    } else {
      cfg.max_parallel_launches = n;
    }
  }

  if (const auto* a = Value(raw, "metrics_address")) {
    // A bare port, or host:port; the HTTP server is started by the backend.
    std::string address = *a;
    if (address.find(':') == std::string::npos) address = "127.0.0.1:" + address;
    auto colon = address.rfind(':');
    std::string port = address.substr(colon + 1);
    int n = -1;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (colon == 0 || ec != std::errc() || ptr != port.data() + port.size() || n < 0 || n > 65535) {
      v.Problem("metrics_address",
                "\"" + *a + "\" is not an address; expected host:port or a port (on 127.0.0.1)");
    } else {
      cfg.metrics_address = address;
    }
  }

  if (const auto* a = Value(raw, "status_address")) {
    if (!config::IsBusEndpoint(*a)) {
      v.Problem("status_address",
                "\"" + *a + "\" is not a bus endpoint; expected tcp://host:port or ipc:///path");
    } else {
      StatusEndpointConfig st;
      st.address = *a;
      bool tcp = a->rfind("tcp://", 0) == 0;
      if (tcp || Value(raw, "status_server_key_path")) {
        if (auto k = v.Z85KeyFile("status_server_key_path", "the status endpoint's secret key")) {
          st.server_secret_key = *k;
        }
      }
      if (const auto* d = tcp ? v.Required("status_authorized_keys_path",
                                           "a directory of subscriber public keys (*.pub)")
                              : Value(raw, "status_authorized_keys_path")) {
        std::error_code ec;
        if (!fs::is_directory(*d, ec)) {
          v.Problem("status_authorized_keys_path",
                    "\"" + *d + "\" is not a directory; expected a directory of *.pub key files");
        } else {
          st.authorized_keys_dir = *d;
        }
      }
      cfg.status = std::move(st);
    }
  } else {
    for (const char* key : {"status_server_key_path", "status_authorized_keys_path"}) {
      if (Value(raw, key)) v.Problem(key, "set without status_address; expected both or neither");
    }
  }

  for (const auto& [key, value] : raw) {
    bool nomad = key.rfind("nomad_", 0) == 0;
    if (nomad) cfg.nomad[key] = value;
    if (!Contains(kSplitKeys, key) && !Contains(kDirectKeys, key) &&
        !Contains(kOptionalKeys, key) && !Contains(kNomadKeys, key)) {
      result.unknown_keys.push_back(key);
    }
  }
  for (const char* key : {"nomad_skip-verify", "nomad_config_inherit"}) {
    if (const auto* s = Value(raw, key); s && !config::ParseGoBool(*s)) {
      v.Problem(key, "\"" + *s + "\" is not a boolean; expected true or false (Go ParseBool)");
    }
  }
  if (const auto* s = Value(raw, "nomad_block-query-wait-time");
      s && !config::ParseGoDuration(*s)) {
    v.Problem("nomad_block-query-wait-time",
              "\"" + *s + "\" is not a duration; expected a Go duration such as 5m0s or 30s");
  }

  result.problems = v.TakeProblems();
  if (result.problems.empty()) result.config = std::move(cfg);
  return result;
}

std::vector<std::string> KnownPluginConfigKeys() {
  std::vector<std::string> keys;
  keys.insert(keys.end(), kSplitKeys.begin(), kSplitKeys.end());
  keys.insert(keys.end(), kDirectKeys.begin(), kDirectKeys.end());
  keys.insert(keys.end(), kOptionalKeys.begin(), kOptionalKeys.end());
  keys.insert(keys.end(), kNomadKeys.begin(), kNomadKeys.end());
  return keys;
}

std::string DescribeProblems(const std::vector<ConfigProblem>& problems) {
  std::string out = "invalid plugin config (" + std::to_string(problems.size()) + " problem" +
                    (problems.size() == 1 ? "" : "s") + "): ";
  for (size_t i = 0; i < problems.size(); ++i) {
    if (i > 0) out += "; ";
    out += problems[i].key + ": " + problems[i].expected;
  }
  return out;
}

PluginConfig PluginConfig::Parse(const Raw& raw) {
  PluginConfigParse parsed = ParsePluginConfig(raw);
  for (const auto& key : parsed.unknown_keys) {
    spdlog::warn("ignoring unknown plugin config key \"{}\"", key);
  }
  if (!parsed.problems.empty()) {
    throw PluginError(PluginError::Code::invalid_argument, DescribeProblems(parsed.problems));
  }
  return std::move(*parsed.config);
}

}  // namespace mps::plugin
