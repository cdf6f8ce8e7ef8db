#pragma once
// systemd's service notification protocol through libsystemd (sd_notify):
// READY=1 once serving, STATUS= lines, and WATCHDOG=1 kicks when the unit
// sets WatchdogSec. Outside systemd (no NOTIFY_SOCKET) every call does nothing.
#include <atomic>
#include <chrono>
#include <string>

namespace mps::metrics {

class SystemdNotifier {
 public:
  SystemdNotifier();  // reads NOTIFY_SOCKET / WATCHDOG_USEC once

  bool enabled() const { return enabled_; }
  // Zero when the watchdog is off.
  std::chrono::microseconds watchdog_interval() const { return watchdog_; }

  void Ready(const std::string& status);
  void Status(const std::string& status);
  void Stopping();
  // Thread-safe; sends WATCHDOG=1 at most every half watchdog interval, so it
  // may be called from a loop that wakes often.
  void Kick();

 private:
  bool enabled_ = false;
  std::chrono::microseconds watchdog_{0};
  std::atomic<std::int64_t> last_kick_us_{0};
};

}  // namespace mps::metrics
