#include "metrics/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>

namespace mps::metrics {

SystemdNotifier::SystemdNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  std::uint64_t usec = 0;
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) watchdog_ = std::chrono::microseconds(usec);
}

void SystemdNotifier::Ready(const std::string& status) {
  if (enabled_) sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
  Kick();
}

void SystemdNotifier::Status(const std::string& status) {
  if (enabled_) sd_notify(0, ("STATUS=" + status).c_str());
}

void SystemdNotifier::Stopping() {
  if (enabled_) sd_notify(0, "STOPPING=1");
}

void SystemdNotifier::Kick() {
  if (!enabled_ || watchdog_.count() == 0) return;
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  auto last = last_kick_us_.load();
  if (last != 0 && now - last < watchdog_.count() / 2) return;
  if (!last_kick_us_.compare_exchange_strong(last, now)) return;  // another thread kicked
  sd_notify(0, "WATCHDOG=1");
}

}  // namespace mps::metrics
