#pragma once
// One ZeroMQ context per process, shared by every socket so that inproc://
// endpoints connect, plus the ZAP handler that admits Curve clients. ZAP is
// per context, so servers register the keys they admit under their own domain.
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "bus/rejection_log.h"
#include "metrics/registry.h"

namespace mps::bus {

class BusContext {
 public:
  BusContext();
  ~BusContext();
  BusContext(const BusContext&) = delete;
  BusContext& operator=(const BusContext&) = delete;

  zmq::context_t& zmq() { return context_; }

  // Admit exactly these client public keys (z85) on `domain`. Starts the ZAP
  // handler on first use; must happen before the server binds.
  void AuthorizeKeys(const std::string& domain, std::set<std::string> public_keys_z85);
  void RevokeDomain(const std::string& domain);
  std::uint64_t refused_count() const { return refused_.load(); }
  // Counts refused Curve keys by ZAP domain (mps_bus_refused_keys_total).
  void SetMetrics(std::shared_ptr<metrics::Registry> metrics);
  // How refused keys are logged: each once while remembered, a few lines per
  // interval, the rest summed up (a flood of fresh keys cannot flood the log).
  void SetRefusalLogLimits(RefusalLogLimits limits);

 private:
  void ZapLoop(zmq::socket_t& rep);

  zmq::context_t context_;
  std::mutex mutex_;
  std::map<std::string, std::set<std::string>> domains_;
  RefusalLog refusals_;  // guarded by mutex_
  std::thread zap_thread_;
  std::atomic<bool> zap_started_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> refused_{0};
  std::shared_ptr<metrics::Registry> metrics_;  // guarded by mutex_
};

}  // namespace mps::bus
