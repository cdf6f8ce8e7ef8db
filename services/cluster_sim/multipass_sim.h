#pragma once
// A fake multipassd: the multipass.Rpc gRPC service over TLS on a unix socket
// and/or a loopback TCP port, with the daemon's authorization rules, backed by
// a SimWorld. Tests and the demo run against it instead of a real daemon.
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "cluster_sim/certificate_authority.h"
#include "cluster_sim/sim_world.h"

namespace mps::sim {

// Bad simulator configuration or a listener that cannot be opened.
class SimConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LoopbackAddress {
  std::string host;  // "127.0.0.1"
  int port = 0;      // 0 = ephemeral
};
// "HOST:PORT" where HOST is 127.0.0.1 or localhost; anything else is refused
// so the simulator can never be reached from another machine.
LoopbackAddress ParseLoopbackAddress(const std::string& text);

struct SimOptions {
  WorldOptions world;  // world.state_dir empty → a fresh temporary directory
  std::optional<std::filesystem::path> unix_socket;
  std::optional<std::string> tls_address;  // "127.0.0.1:0" for an ephemeral port
};

class MultipassSim {
 public:
  // Makes the certificates, writes <state-dir>/multipass_root_cert.pem and
  // starts listening. Throws SimConfigError or CertificateError.
  explicit MultipassSim(SimOptions options);
  ~MultipassSim();
  MultipassSim(const MultipassSim&) = delete;
  MultipassSim& operator=(const MultipassSim&) = delete;

  // Drops every connection (in-flight calls are cancelled) and listens again on
  // the same addresses; instances, image cache and cert store are kept.
  void Restart();
  // Stops listening and removes the unix socket. Idempotent.
  void Shutdown();
  // Listens again after Shutdown, with every instance as it is now (they
  // kept running). Does nothing while listening.
  void Resume();

  // "unix:/path" or "" when not listening on a unix socket.
  std::string unix_target() const;
  // "127.0.0.1:PORT" (the real port) or "" when not listening on TCP.
  std::string tls_address() const;
  int tls_port() const;
  const std::filesystem::path& state_dir() const;
  std::filesystem::path root_cert_path() const;
  const std::string& root_cert_pem() const;
  const CertificateAuthority& certificate_authority() const;

  // World hooks, called from a simulator thread without locks held.
  void OnInstanceRunning(SimWorld::RunningHook hook);
  void OnInstanceDeleted(std::function<void(const std::string& name)> hook);
  void OnInstanceStopped(std::function<void(const std::string& name)> hook);

  WorldSnapshot Snapshot() const;
  void SetFailEveryNthLaunch(unsigned n);
  void SetHangLaunches(bool hang);
  SimWorld& world();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mps::sim
