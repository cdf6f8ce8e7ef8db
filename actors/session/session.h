#pragma once
// The Multipass session actor: one MultipassClient plus a LaunchScheduler,
// serving the multipass.* contract (contracts/multipass.h). Blocking gRPC
// calls run on the actor's own (detached) thread or on the scheduler's
// workers, never on the bus I/O thread or a CAF scheduler thread.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <caf/all.hpp>

#include "bus/events.h"
#include "bus/server.h"
#include "contracts/host.h"
#include "metrics/registry.h"
#include "multipass/multipass_client.h"

namespace mps::multipass {

// What the session knows of multipassd, from its probe and from every
// request it carries: for readiness checks (hostd's /ready and systemd).
struct SessionHealth {
  std::atomic<bool> probed{false};  // the first probe finished, either way
  std::atomic<bool> reachable{false};
  std::atomic<bool> authenticated{false};  // multipassd accepted our certificate
  void SetError(std::string error) {
    std::lock_guard lock(mutex_);
    error_ = std::move(error);
  }
  std::string Error() const {
    std::lock_guard lock(mutex_);
    return error_;
  }

 private:
  mutable std::mutex mutex_;
  std::string error_;  // the last failure talking to multipassd; empty when healthy
};

struct SessionOptions {
  MultipassClientOptions client;
  std::size_t max_parallel_launches = 4;
  // Empty: every name is allowed. Otherwise a name is allowed only when it
  // starts with one of these followed by '-' ("web" allows "web-1", not "webapp-1").
  std::vector<std::string> allowed_prefixes;
  // Launch durations, multipassd RPC errors, multipassd reachable, and (from
  // the probe) instances by pool and state and the resources they hold.
  // Null: not counted.
  std::shared_ptr<metrics::Registry> metrics;
  std::shared_ptr<SessionHealth> health;  // may be null
  // host.capacity: the headroom rules set on hostd, and multipassd's storage
  // directory, whose filesystem is the host's disk when the daemon has no
  // daemon_info (before 1.15).
  contracts::host::Headroom headroom;
  std::string storage_path = "/var/snap/multipass/common";
  // How often the session lists every instance on its own (for the gauges and
  // readiness); zero: never, only requests tell how multipassd is.
  std::chrono::milliseconds probe_interval{0};
};

// The --allow-prefix rule, also used for the list request's own prefix.
class InstanceNameFilter {
 public:
  explicit InstanceNameFilter(std::vector<std::string> prefixes);
  bool Allows(std::string_view name) const;
  // "any name" or "web-*, db-*", for error messages.
  std::string Describe() const;
  static bool MatchesPrefix(std::string_view name, std::string_view prefix);

 private:
  std::vector<std::string> prefixes_;
};

// Spawns the session actor (detached). It answers `(bus_request_atom,
// Envelope)` with a BusAnswer for the six multipass.* types and
// host.capacity (the
// caf_bridge.h convention, for CAF callers). Throws
// MultipassError(invalid_config) for a bad address or credentials file.
// `events` may be null; otherwise it must outlive the actor (see StopMultipassSession).
caf::actor SpawnMultipassSession(caf::actor_system& system, bus::EventPublisher* events,
                                 SessionOptions options);

// Spawns the session actor and registers the six multipass.* types and
// host.capacity on
// `server` (call before server.Start()); the session answers each request
// through its Responder (caf_bridge.h's ServeWithResponders). Returns the
// actor: stop it with StopMultipassSession before destroying the publisher
// and the actor system.
caf::actor ServeMultipassSession(caf::actor_system& system, bus::BusServer& server,
                                 bus::EventPublisher* events, SessionOptions options);

// What the session found when it first reached multipassd (CheckDaemonAtStart).
struct DaemonCheck {
  bool ok = false;     // reached, authenticated, a version we speak
  bool fatal = false;  // too old, or it refuses us: serving would fail every call
  std::string message;
};

// Asks the session for the daemon's version (authenticating with the
// passphrase when the daemon does not know our certificate), the way every
// later request will. Fatal for a daemon older than kMinimumDaemonVersion
// and for an authentication problem (the message says what to fix); not
// fatal when multipassd cannot be reached (the session checks again on its
// first request).
DaemonCheck CheckDaemonAtStart(caf::actor_system& system, const caf::actor& session,
                               std::chrono::milliseconds timeout = std::chrono::seconds(30));

struct SessionStop {
  // The actor is gone: the publisher and the actor system may go now.
  bool stopped = false;
  // Launches still running at the end of the grace, cancelled: multipassd may
  // have made part of them; the caller's next listing decides.
  std::vector<std::string> interrupted;
  // Stopped with nothing interrupted.
  explicit operator bool() const { return stopped && interrupted.empty(); }
};

// Stops the session and waits until the actor is gone. New requests are
// answered kShuttingDown at once; queued launches are cancelled; running
// launches get up to `grace` to finish; then every call still in flight is
// cancelled (grpc TryCancel) and answered kShuttingDown, so this returns
// within milliseconds of the grace. 0 (the default) cancels at once, for a
// caller that records its pending operations before running them, as
// multipass-target does; multipass-hostd passes its --shutdown-grace.
// Call before destroying the EventPublisher. `stopped` false (the actor did
// not end within 5 s of the cancellation) means the actor still uses the
// publisher and holds the actor system open: end the process (std::_Exit)
// rather than unwind.
SessionStop StopMultipassSession(caf::actor_system& system, caf::actor& session,
                                 std::chrono::milliseconds grace = std::chrono::milliseconds(0));

// The first half of a stop, without waiting and without ending the actor:
// refuses new requests and cancels every call and launch in flight (answered
// kShuttingDown at once). For the moment a stop is requested, while callers
// may still be waiting on the session; StopMultipassSession ends it later.
void CancelMultipassSession(const caf::actor& session);

// CancelMultipassSession for every session of this process: for a process
// that is ending and holds no session handle (multipass-target when its host
// asks it to stop).
void CancelAllMultipassSessions();

}  // namespace mps::multipass
