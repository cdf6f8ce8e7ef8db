#pragma once
// A whole world for Scale tests: cluster-sim (Multipass + Nomad), a real
// multipass-hostd, and the go-plugin host driving multipass-target
// interactively (steps sent one by one; Scale may run in the background).
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "multipass/multipass_client.h"
#include "plugin_launch.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

namespace mps::test {

struct SimOptions {
  std::string boot_delay = "300ms";
  std::string join_delay = "200ms";
  std::string migration_delay = "300ms";
  // Also serve multipassd on TLS tcp (direct mode); the daemon's passphrase
  // ("sesame" when empty; hostd authenticates with it).
  std::string passphrase;
  // Launches never finish until their call is cancelled.
  bool hang_launches = false;
  // cluster-sim --nomad-token specs (ACLs on when any); the world's own Nomad
  // reads use the first, which should be a management token.
  std::vector<std::string> nomad_tokens = {};
  // Restarts of stopped instances (warm pools); empty: cluster-sim's defaults.
  std::string start_delay = {};
  std::string restart_join_delay = {};
  std::string heartbeat_delay = {};
  std::string cloud_init_delay = {};
};

class ScaleWorld {
 public:
  explicit ScaleWorld(SimOptions sim = {});
  ~ScaleWorld();

  const std::string& dir() const { return dir_.path(); }
  void StartHostd();
  void KillHostd();  // SIGKILL

  // Starts the go-plugin host with multipass-target and sends SetConfig.
  void StartPlugin(const nlohmann::json& extra_config = nlohmann::json::object());
  void KillPluginProcess();  // SIGKILL of multipass-target itself
  void StopHost();

  // Sends a step; returns its id.
  int Send(nlohmann::json step, bool async = false);
  nlohmann::json Await(int id, std::chrono::milliseconds timeout);
  nlohmann::json Run(nlohmann::json step,
                     std::chrono::milliseconds timeout = std::chrono::seconds(30));
  nlohmann::json Status(int until_ready_ms = 0);
  // go-plugin's client.Kill(), as the autoscaler stops a plugin; the result's
  // values say how long it took and how the plugin process ended.
  nlohmann::json Kill();
  nlohmann::json Scale(std::int64_t count,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60));

  nlohmann::json policy;  // the target block every Status/Scale sends
  nlohmann::json PluginConfig() const;
  // Direct mode, the Go plugin's keys: TLS to multipassd with a client
  // certificate and the passphrase. Needs SimOptions::passphrase.
  nlohmann::json DirectPluginConfig() const;

  // Instances of the pool as the simulated daemon lists them: name -> state.
  std::map<std::string, std::string> Instances(const std::string& prefix = "web-");
  // Nodes of the simulated Nomad: {id, name, status, drain}.
  std::vector<nlohmann::json> Nodes();
  void AddAllocation(const std::string& node_id, const std::string& ns = "default");
  // POST /sim/faults with this body.
  void Faults(const nlohmann::json& faults);
  // GET /sim/undrained_deletions.
  nlohmann::json UndrainedDeletions();
  void LaunchDirect(const std::string& name, const std::string& cloud_init);

  std::string host_stderr() const;
  // Runs build/bin/mpscale ARGS --address <the plugin's status endpoint>;
  // its stdout lines (throws when it fails).
  std::vector<std::string> Mpscale(std::vector<std::string> args);
  struct CliRun {
    int exit_code = -1;
    std::string out, err;
  };
  // Runs build/bin/mpscale ARGS as given.
  static CliRun RunMpscale(std::vector<std::string> args);

 private:
  // The test's own client of the simulated multipassd.
  mps::multipass::MultipassClientOptions ObserverOptions() const;

  mps::testing::TempDir dir_;
  std::unique_ptr<mps::testing::ChildProcess> sim_, hostd_, host_;
  std::string nomad_address_;
  std::string nomad_observer_token_;
  std::string tls_address_;
  std::string passphrase_;
  std::string hostd_endpoint_;
  int plugin_pid_ = -1;
  mps::test::GoPluginHostSteps steps_;
};

}  // namespace mps::test
