#pragma once
// A datagram socket standing in for systemd's notification socket
// (NOTIFY_SOCKET), for tests of sd_notify readiness and watchdog kicks.
#include <chrono>
#include <string>
#include <vector>

namespace mps::testing {

class NotifySocket {
 public:
  explicit NotifySocket(std::string path);  // binds; throws when it cannot
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::string& path() const { return path_; }
  // Datagrams until one starts with `prefix` (included) or `timeout` passes.
  std::vector<std::string> Until(const std::string& prefix, std::chrono::milliseconds timeout);
  // Every datagram received within `for_how_long`.
  std::vector<std::string> Receive(std::chrono::milliseconds for_how_long) {
    return Until("\n\n(never a datagram's start)", for_how_long);
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace mps::testing
