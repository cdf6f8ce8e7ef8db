#pragma once
// The simulated host behind the fake multipassd: instances and their
// lifecycle, the image cache, host capacity, the client-certificate store and
// fault injection. Free of gRPC types apart from the status code enum, so the
// rules can be read (and tested) without the transport.
#include <grpcpp/support/status_code_enum.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace mps::sim {

using Clock = std::chrono::steady_clock;

struct WorldOptions {
  std::filesystem::path state_dir;  // authenticated-certs/ lives here
  std::optional<std::string> passphrase;
  // STARTING → RUNNING on an instance's first boot (launch).
  Clock::duration boot_delay = std::chrono::seconds(2);
  // STARTING → RUNNING when a stopped instance is started again: no image to
  // unpack, no first-boot work, so usually much shorter than boot_delay.
  Clock::duration start_delay = std::chrono::seconds(2);
  Clock::duration prep_delay = Clock::duration::zero();
  // Shared by every launch of the image while it runs; not counted in a launch's timeout.
  Clock::duration image_download_delay = Clock::duration::zero();
  // After SSH is up (RUNNING): how long cloud-init takes. A launch's timeout
  // applies to SSH-up and then again to this. Only a first boot pays it:
  // cloud-init runs once per instance.
  Clock::duration cloud_init_delay = Clock::duration::zero();
  // One SSH command in a running VM, paid on the daemon's only RPC thread: per
  // VM by `list` with request_ipv4 and twice per VM by `info` with runtime
  // information.
  Clock::duration ssh_delay = std::chrono::milliseconds(50);
  // false (real host): the store already holds the CLI's certificate, so a new
  // client must authenticate. true: the first unix-socket client is auto-accepted.
  bool empty_cert_store = false;
  // Answered by `version`; shapes which RPCs exist (daemon_info from 1.15) and
  // how list/info report a running VM without address ("N/A" from 1.16).
  std::string daemon_version = "1.16.3";
  unsigned host_cpus = 16;
  std::uint64_t host_memory_bytes = 32ull << 30;
  std::uint64_t host_disk_bytes = 200ull << 30;
  unsigned fail_every_nth_launch = 0;  // 0 = never
  // Every Nth start of a stopped instance fails as a hypervisor refusal
  // would (FAILED_PRECONDITION, the instance stays stopped); 0 = never.
  unsigned fail_every_nth_start = 0;
  bool hang_launches = false;
  // Image alias → release it resolves to (also the image-cache key).
  std::map<std::string, std::string> images = {{"", "24.04"},      {"lts", "24.04"},
                                               {"noble", "24.04"}, {"24.04", "24.04"},
                                               {"jammy", "22.04"}, {"22.04", "22.04"}};
};

// PREPARING instances are not listed (as in multipassd until the image is ready).
enum class InstanceState { kPreparing, kStarting, kRunning, kStopped, kDeleted };
const char* ToString(InstanceState s);

struct InstanceView {
  std::string name;
  InstanceState state = InstanceState::kPreparing;
  std::string image;    // as requested
  std::string release;  // what the alias resolved to
  unsigned cpus = 1;
  std::uint64_t memory_bytes = 0;
  std::uint64_t disk_bytes = 0;
  std::string ipv4;  // a label only; nothing listens there
  std::string cloud_init_user_data;
  std::chrono::system_clock::time_point created_at;
  bool ssh_reachable = true;  // false: SSH into it fails (fault injection)
  // Times it reached RUNNING: tells a restart from the first boot, and lets a
  // delayed reaction to a stop or start see whether the VM moved on since.
  std::uint64_t boots = 0;
};

struct SimStats {
  std::uint64_t launch_requests = 0;     // every launch call
  std::uint64_t launches_created = 0;    // passed validation, instance made
  std::uint64_t launches_succeeded = 0;  // returned OK (RUNNING)
  std::uint64_t launches_failed = 0;     // any non-OK launch status
  std::uint64_t injected_launch_failures = 0;
  std::uint64_t injected_start_failures = 0;
  std::uint64_t delete_requests = 0;
  std::uint64_t empty_delete_requests = 0;  // a DeleteRequest with no names: deletes ALL
  std::uint64_t purge_requests = 0;         // the purge RPC
  std::uint64_t unauthenticated_calls = 0;
  std::uint64_t auto_accepted_certificates = 0;
  std::uint64_t restarts = 0;
  std::uint64_t image_downloads = 0;  // downloads started (concurrent launches share one)
  // The daemon's one RPC thread: calls handled and the time spent on them
  // (a launch's or start's asynchronous part is not counted).
  std::uint64_t rpc_calls = 0;
  std::uint64_t rpc_busy_ns = 0;
  std::uint64_t ssh_commands = 0;
};

struct WorldSnapshot {
  std::vector<InstanceView> instances;  // all, including PREPARING and DELETED
  SimStats stats;
  std::size_t authorized_certificates = 0;
};

// A failed call as the daemon reports it.
struct SimError {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string message;
  std::vector<int> launch_error_codes;      // LaunchError.ErrorCodes values
  std::map<std::string, int> start_errors;  // StartError.ErrorCode per instance
};

struct LaunchSpec {
  std::string name;  // empty → a generated pet name
  std::string image;
  int cpus = 0;        // < 1 → 1
  std::string memory;  // empty → 1G
  std::string disk;    // empty → 5G
  std::string cloud_init_user_data;
  int timeout_seconds = 0;  // <= 0 → 300
};

// One streamed launch reply. kProgress uses progress_type (LaunchProgress
// ProgressType numbers) and text as percent_complete.
struct LaunchStep {
  enum Kind { kCreateMessage, kProgress, kReplyMessage, kInstanceName } kind;
  std::string text;
  int progress_type = 0;
};

class SimWorld {
 public:
  // (name, cloud-init user data, first boot)
  using RunningHook = std::function<void(const std::string&, const std::string&, bool)>;
  using DeletedHook = std::function<void(const std::string&)>;
  using StoppedHook = std::function<void(const std::string&)>;
  // Returns false once the caller is gone (write failed or call cancelled).
  using StepSink = std::function<bool(const LaunchStep&)>;
  using CancelledFn = std::function<bool()>;

  explicit SimWorld(WorldOptions options);
  ~SimWorld();
  SimWorld(const SimWorld&) = delete;
  SimWorld& operator=(const SimWorld&) = delete;

  // multipassd handles RPCs one at a time on its main thread. A Turn holds
  // that thread from construction until Release() (or destruction); its time
  // is counted in SimStats::rpc_busy_ns. Take it before any other call below.
  class Turn {
   public:
    explicit Turn(SimWorld& world);
    ~Turn();
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;
    void Release();  // the rest of the call continues asynchronously

   private:
    SimWorld& world_;
    Clock::time_point started_;
    bool held_ = true;
  };
  // Runs `count` SSH commands in VMs (ssh_delay each) on the caller's turn.
  void SshExec(std::size_t count);
  // daemon_version >= major.minor (an unparsable version counts as the newest).
  bool VersionAtLeast(int major, int minor) const;

  // --- authorization (reference §4) ---
  enum class AuthResult { kAllowed, kUnauthenticated, kInvalidCertificate };
  AuthResult AuthorizeCall(const std::string& client_cert_pem, bool on_unix_socket);
  std::optional<SimError> Authenticate(const std::string& passphrase,
                                       const std::string& client_cert_pem);
  bool IsKnownCertificate(const std::string& client_cert_pem) const;

  // --- methods ---
  // Releases `turn` once the request is taken (validated, instance made).
  std::optional<SimError> Launch(const LaunchSpec& spec, const StepSink& emit,
                                 const CancelledFn& cancelled, Turn* turn = nullptr);
  std::vector<InstanceView> List() const;  // operative first, then deleted
  std::optional<SimError> Info(const std::vector<std::string>& names,
                               std::vector<InstanceView>* out) const;
  std::optional<SimError> Delete(const std::vector<std::string>& names, bool purge,
                                 std::vector<std::string>* purged);
  std::vector<std::string> PurgeDeleted();
  // Releases `turn` once the instances are booting.
  std::optional<SimError> Start(const std::vector<std::string>& names, int timeout_seconds,
                                const CancelledFn& cancelled, Turn* turn = nullptr);
  // As multipassd's stop without delay: an already stopped instance is left
  // alone, a starting one refuses (FAILED_PRECONDITION).
  std::optional<SimError> Stop(const std::vector<std::string>& names);

  // --- hooks, faults, inspection ---
  void OnInstanceRunning(RunningHook hook);
  void OnInstanceDeleted(DeletedHook hook);
  // Called once per instance that went from running to stopped.
  void OnInstanceStopped(StoppedHook hook);
  void SetFailEveryNthLaunch(unsigned n);
  void SetFailEveryNthStart(unsigned n);
  void SetHangLaunches(bool hang);
  // SSH into `name` fails from now on (or works again): list shows no address
  // ("N/A" from 1.16), info with runtime information fails FAILED_PRECONDITION.
  void SetSshReachable(const std::string& name, bool reachable);
  void CountRestart();
  WorldSnapshot Snapshot() const;
  const WorldOptions& options() const { return options_; }

 private:
  struct Instance {
    InstanceView view;
    Clock::time_point ready_at = Clock::time_point::max();  // STARTING → RUNNING
  };
  struct ImageCacheEntry {
    bool cached = false;
    bool downloading = false;
    Clock::time_point started;
    Clock::time_point done_at;
  };

  std::optional<SimError> ValidateLaunchLocked(LaunchSpec& spec, std::uint64_t* memory,
                                               std::uint64_t* disk, std::string* release);
  std::optional<SimError> CheckCapacityLocked(const Instance& candidate) const;
  void BeginBootLocked(Instance& inst, Clock::duration delay);
  std::string NewPetNameLocked();
  std::string NextIpv4Locked();
  // Waits until `pred` holds, `deadline` passes or `cancelled` says so; true if pred held.
  bool WaitLocked(std::unique_lock<std::mutex>& lock, Clock::time_point deadline,
                  const CancelledFn& cancelled, const std::function<bool()>& pred);
  void TickerLoop();
  void SaveCertificatesLocked() const;

  WorldOptions options_;
  mutable std::mutex mutex_;
  std::mutex rpc_thread_;  // the daemon's one RPC thread (Turn)
  std::atomic<std::uint64_t> rpc_calls_{0};
  std::atomic<std::uint64_t> rpc_busy_ns_{0};
  std::atomic<std::uint64_t> ssh_commands_{0};
  std::condition_variable changed_;
  std::map<std::string, Instance> instances_;
  std::map<std::string, ImageCacheEntry> image_cache_;
  std::set<std::string> certificates_;
  SimStats stats_;
  std::uint64_t launch_counter_ = 0;
  std::uint64_t start_counter_ = 0;
  std::uint64_t ip_counter_ = 0;
  std::uint64_t pet_counter_ = 0;
  RunningHook on_running_;
  DeletedHook on_deleted_;
  StoppedHook on_stopped_;
  bool stopping_ = false;
  std::thread ticker_;
};

}  // namespace mps::sim
