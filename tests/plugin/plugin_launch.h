#pragma once
// How the plugin tests start multipass-target and HashiCorp's go-plugin host:
// with the environment the autoscaler gives its plugins, not ours.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/child_process.h"

namespace mps::test {

inline constexpr const char* kCookieName = "NOMAD_AUTOSCALER_PLUGIN_MAGIC_COOKIE";
inline constexpr const char* kCookieValue =
    "e082fa04d587a6525d683666fa253d6afda00f20c122c54a80a3ed57fec99ff3";

std::string PluginBinary();  // BinDir()/multipass-target

// Our environment without the go-plugin and plugin variables (PLUGIN_*,
// NOMAD_AUTOSCALER_*, MPS_PLUGIN_*), then PLUGIN_PROTOCOL_VERSIONS=1, the
// magic cookie (unless !with_cookie) and `extra` over them.
mps::testing::ChildOptions PluginOptions(const std::map<std::string, std::string>& extra = {},
                                         bool with_cookie = true);

// The plugin's handshake line split on '|'.
std::vector<std::string> SplitHandshake(const std::string& line);

// One run of goplugin-host with `script` ({"plugin", "steps"}) on its stdin,
// as the autoscaler runs the plugin (it passes its own environment on).
struct HostRun {
  std::vector<nlohmann::json> results;  // one per output line; the first is Start
  std::optional<int> exit_code;
  std::string stderr_text;
};
HostRun RunGoPluginHost(const nlohmann::json& script, std::chrono::milliseconds timeout);

// The numbered steps of an interactive goplugin-host: each step gets an id,
// and answers (async steps may finish out of order) are kept by id until
// asked for.
class GoPluginHostSteps {
 public:
  // Sends `step` to `host`; returns its id.
  int Send(mps::testing::ChildProcess& host, nlohmann::json step, bool async = false);
  // The answer to step `id`, or {"ok": false, "code": "TestTimeout" |
  // "HostGone"} when it does not come in time or the host exits.
  nlohmann::json Await(mps::testing::ChildProcess& host, int id, std::chrono::milliseconds timeout);
  void Clear() { results_.clear(); }  // a new host: old answers mean nothing

 private:
  int next_id_ = 1;
  std::map<int, nlohmann::json> results_;
};

}  // namespace mps::test
