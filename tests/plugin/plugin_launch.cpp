#include "plugin_launch.h"

#include <sstream>

namespace mps::test {

using namespace std::chrono_literals;

std::string PluginBinary() {
  return mps::testing::BinDir() + "/multipass-target";
}

mps::testing::ChildOptions PluginOptions(const std::map<std::string, std::string>& extra,
                                         bool with_cookie) {
  mps::testing::ChildOptions o;
  o.unset_env_prefixes = {"PLUGIN_", "NOMAD_AUTOSCALER_", "MPS_PLUGIN_"};
  o.env["PLUGIN_PROTOCOL_VERSIONS"] = "1";
  if (with_cookie) o.env[kCookieName] = kCookieValue;
  for (const auto& [name, value] : extra) o.env[name] = value;
  return o;
}

std::vector<std::string> SplitHandshake(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto bar = line.find('|', start);
    out.push_back(line.substr(start, bar - start));
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return out;
}

HostRun RunGoPluginHost(const nlohmann::json& script, std::chrono::milliseconds timeout) {
  auto options = PluginOptions({}, /*with_cookie=*/false);
  options.pipe_stdin = true;
  mps::testing::ChildProcess host({mps::testing::BinDir() + "/goplugin-host"}, options);
  host.WriteStdin(script.dump());
  host.CloseStdin();
  std::string out = host.ReadToEof(timeout);
  HostRun run;
  run.exit_code = host.Wait(5s);
  run.stderr_text = host.stderr_text();
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    run.results.push_back(nlohmann::json::parse(line));
  }
  return run;
}

int GoPluginHostSteps::Send(mps::testing::ChildProcess& host, nlohmann::json step, bool async) {
  int id = next_id_++;
  step["id"] = id;
  step["async"] = async;
  host.WriteStdin(step.dump() + "\n");
  return id;
}

nlohmann::json GoPluginHostSteps::Await(mps::testing::ChildProcess& host, int id,
                                        std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!results_.contains(id)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {{"ok", false}, {"code", "TestTimeout"}};
    auto line = host.ReadLine(left);
    if (!line) return {{"ok", false}, {"code", "HostGone"}, {"message", host.stderr_text()}};
    auto r = nlohmann::json::parse(*line, nullptr, false);
    if (r.is_object() && r.contains("step")) results_[r["step"].get<int>()] = r;
  }
  return results_[id];
}

}  // namespace mps::test
