#include "support/notify_socket.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace mps::testing {

NotifySocket::NotifySocket(std::string path) : path_(std::move(path)) {
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::string why = std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("notify socket " + path_ + ": " + why);
  }
  timeval tv{0, 100000};  // recv wakes up to check the time
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

NotifySocket::~NotifySocket() {
  ::close(fd_);
}

std::vector<std::string> NotifySocket::Until(const std::string& prefix,
                                             std::chrono::milliseconds timeout) {
  std::vector<std::string> out;
  auto end = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < end) {
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) continue;
    out.emplace_back(buf, static_cast<std::size_t>(n));
    if (out.back().rfind(prefix, 0) == 0) break;
  }
  return out;
}

}  // namespace mps::testing
