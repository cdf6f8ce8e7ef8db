#pragma once
// Connection floods against a real multipass-hostd (issue 16, defect 10):
// a cluster-sim and a hostd serving tcp on 127.0.0.1 with Curve, a driver
// that opens many short-lived DEALER connections (one request each, then
// closed) with the listed key or with a fresh unlisted key per connection,
// and a legitimate client whose answers and latency are measured meanwhile.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bus/context.h"
#include "bus/keys.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

namespace mps::testing {

// VmRSS of a live process in KiB (0 when it cannot be read).
long RssKiB(pid_t pid);

// cluster-sim and multipass-hostd (tcp://127.0.0.1, Curve) as real processes.
class FloodWorld {
 public:
  FloodWorld();  // throws std::runtime_error when a process does not start
  ~FloodWorld();
  FloodWorld(const FloodWorld&) = delete;
  FloodWorld& operator=(const FloodWorld&) = delete;

  pid_t hostd_pid() const { return hostd_->pid(); }
  const std::string& endpoint() const { return endpoint_; }
  const bus::CurveKeyPair& server_keys() const { return server_; }
  const bus::CurveKeyPair& client_keys() const { return client_; }
  std::string hostd_stderr() const { return hostd_->stderr_text(); }
  // SIGTERM and wait; the exit status (nullopt: still running after 10 s).
  std::optional<int> StopHostd();

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> sim_, hostd_;
  std::string endpoint_;
  bus::CurveKeyPair server_, client_;
};

struct FloodOptions {
  std::string endpoint;
  std::string server_public_z85;
  // The listed client key; nullopt: a fresh (unlisted) key per connection.
  std::optional<std::string> client_secret_z85;
  int connections = 1000;
  int threads = 4;
  std::string type = "multipass.version";
  // How long each connection waits for its answer before closing.
  std::chrono::milliseconds wait_reply{500};
  // > 0: each thread keeps this many connections open at once, closing the
  // oldest as it opens a new one (and waits `wait_reply` before closing the
  // last ones); 0: one at a time, each closed after its answer.
  int hold = 0;
};

struct FloodResult {
  int connections = 0;
  int answered = 0;
  double seconds = 0;
};

FloodResult RunFlood(const FloodOptions& options);

// A legitimate client (the listed key, one long-lived connection) calling
// `type` every `interval` with a 5 s deadline until Stop().
class SteadyClient {
 public:
  SteadyClient(bus::BusContext& context, const FloodWorld& world,
               std::chrono::milliseconds interval = std::chrono::milliseconds(50),
               std::string type = "multipass.version");
  ~SteadyClient();
  void Stop();
  int calls() const { return calls_; }
  int answered() const { return answered_; }
  std::string first_error() const;
  double max_ms() const { return max_us_ / 1000.0; }
  double p99_ms() const;

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> calls_{0}, answered_{0};
  std::atomic<long> max_us_{0};
  mutable std::mutex mutex_;
  std::vector<long> latencies_us_;
  std::string first_error_;
};

// Lines of `text` (a process's stderr) that contain `needle`.
int CountLines(const std::string& text, const std::string& needle);

}  // namespace mps::testing
