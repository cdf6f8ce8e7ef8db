#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "multipass/daemon_endpoint.h"
#include "multipass/multipass_error.h"

namespace mps::multipass {

// Instance states as multipassd reports them.
enum class InstanceState {
  unknown,
  running,
  starting,
  restarting,
  stopped,
  deleted,
  delayed_shutdown,
  suspending,
  suspended,
  unavailable,
};
std::string_view StateName(InstanceState state);

struct InstanceInfo {
  std::string name;
  InstanceState state = InstanceState::unknown;
  std::vector<std::string> ipv4;  // running instances only; management address first
  std::string release;            // current_release; may be empty
};

struct InstanceDetail {
  std::string name;
  InstanceState state = InstanceState::unknown;
  std::vector<std::string> ipv4;  // empty unless runtime information was asked for
  std::string image_release;
  int cpu_count = 0;
  std::uint64_t memory_total = 0;  // bytes
  std::uint64_t disk_total = 0;    // bytes
};

// What multipassd's daemon_info (1.15+) says the host has: totals, not what
// is free (`disk_bytes` is the size of the daemon's data volume).
struct DaemonTotals {
  std::int64_t cpus = 0;
  std::int64_t memory_bytes = 0;
  std::int64_t disk_bytes = 0;
};

struct LaunchSpec {
  std::string name;    // empty: the daemon picks a name
  std::string image;   // empty: the daemon's default image
  int cpus = 0;        // 0: daemon default (1)
  std::string memory;  // multipass size syntax; empty: daemon default (1G)
  std::string disk;    // multipass size syntax; empty: daemon default (5G)
  std::string cloud_init_user_data;
  std::chrono::seconds timeout{300};  // daemon-side wait for SSH + cloud-init
};

// One step of a launch as the daemon streams it.
struct LaunchProgress {
  enum class Phase { message, download, extract, verify, waiting };
  Phase phase = Phase::message;
  std::string text;     // stage text ("Creating x", "Waiting for initialization ...")
  double percent = -1;  // download/extract/verify/waiting; -1 = indeterminate
};
using LaunchProgressCallback = std::function<void(const LaunchProgress&)>;

struct MultipassClientOptions {
  std::string address;  // see DaemonEndpoint::Parse; empty = snap default socket
  // Client identity: both files, or neither (then one is generated and kept in
  // state_dir, or in memory only when state_dir is empty).
  std::string client_cert_file;
  std::string client_key_file;
  std::string state_dir;
  // With a root CA the daemon certificate is verified for server_name
  // (multipassd 1.16+ issues it for "localhost"); without, it is not verified.
  std::string root_ca_file;
  std::string server_name = "localhost";
  // Used once per UNAUTHENTICATED answer to register our certificate. Never logged.
  std::optional<std::string> passphrase;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds call_timeout{60000};  // list, info, delete, stop, version, ...
  // Added to twice LaunchSpec::timeout (resp. start_timeout) for our own
  // deadline: the daemon's timeout applies to SSH-up and again to cloud-init,
  // and does not count the image download.
  std::chrono::milliseconds launch_overhead{std::chrono::minutes(15)};
  std::chrono::seconds start_timeout{300};
};

// Synchronous client of multipassd. Thread-safe: calls may run concurrently,
// and CancelAll() from any thread ends them. Every failure is thrown as
// MultipassError.
class MultipassClient {
 public:
  // Parses the address and loads/creates the identity; does not connect yet.
  // Throws MultipassError(invalid_config).
  explicit MultipassClient(MultipassClientOptions options);
  ~MultipassClient();
  MultipassClient(const MultipassClient&) = delete;
  MultipassClient& operator=(const MultipassClient&) = delete;

  const DaemonEndpoint& endpoint() const;
  // The certificate the daemon knows us by.
  const std::string& client_cert_pem() const;

  std::string Version();
  // The host's totals from daemon_info; nullopt when the daemon has no such
  // RPC (before 1.15: UNIMPLEMENTED).
  std::optional<DaemonTotals> DaemonInfo();
  // Instances whose name starts with name_prefix (all for an empty prefix),
  // deleted ones included. With addresses=true the daemon runs an SSH command
  // in every running VM, one after the other on its only RPC thread (tens of
  // milliseconds each): ask for addresses only when someone wants to see
  // them, never for polling. An address the daemon does not know ("N/A") is
  // left out.
  std::vector<InstanceInfo> List(std::string_view name_prefix = {}, bool addresses = true);
  // Details of the named instances (all for an empty list). With
  // runtime_information=false the daemon does not SSH into the VMs (fast), and
  // ipv4 stays empty.
  std::vector<InstanceDetail> Info(const std::vector<std::string>& names,
                                   bool runtime_information = false);
  // Returns the launched instance's name. On launch_timeout the instance exists
  // and error.leftover_instance names it; on start_failed the daemon removed it.
  // Our own deadline: the image download (launch_overhead) plus the daemon's
  // timeout twice (SSH-up, then cloud-init).
  std::string Launch(const LaunchSpec& spec, const LaunchProgressCallback& progress = {});
  // Deletes and purges these instances; returns the purged names. The daemon
  // refuses a whole batch (NOT_FOUND, nothing deleted) when one name is
  // unknown: then the names that still exist are deleted and the unknown
  // ones are left out of the result; not_found only when none exists.
  // Refuses an empty list without any RPC (the daemon would delete everything).
  std::vector<std::string> Delete(const std::vector<std::string>& names);
  // Both refuse an empty list (for the daemon it means every instance).
  void Start(const std::vector<std::string>& names);
  void Stop(const std::vector<std::string>& names);
  // Registers our certificate with the daemon's passphrase.
  void Authenticate(const std::string& passphrase);

  // For stopping, with no way back: cancels every call in flight
  // (grpc::ClientContext::TryCancel; they throw MultipassError cancelled
  // within milliseconds) and makes every later call throw it at once.
  // Thread-safe. An interrupted launch may leave its instance half made.
  void CancelAll();
  bool cancelled() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mps::multipass
