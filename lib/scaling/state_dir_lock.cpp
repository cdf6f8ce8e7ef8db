#include "scaling/state_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "scaling/state_store.h"

namespace mps::scaling {

namespace {

// The pid the holder wrote, or "unknown" (a file cut short, or not ours).
std::string HolderPid(int fd) {
  char buffer[32] = {};
  auto n = ::pread(fd, buffer, sizeof buffer - 1, 0);
  std::string pid(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) return "unknown";
  return pid;
}

}  // namespace

StateDirLock::StateDirLock(const std::filesystem::path& state_dir) {
  auto path = state_dir / "lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    throw StateStoreError("state_dir \"" + state_dir.string() + "\": cannot open " + path.string() +
                          ": " + std::strerror(errno));
  }
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    std::string holder = HolderPid(fd_);
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK) {
      throw StateStoreError("state_dir \"" + state_dir.string() +
                            "\" is in use by another multipass-target (pid " + holder +
                            "); two plugin processes must not share a state_dir");
    }
    throw StateStoreError("state_dir \"" + state_dir.string() + "\": cannot lock " + path.string() +
                          ": " + std::strerror(error));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 ||
      ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The lock holds regardless; only the message of a refused process loses the pid.
  }
}

StateDirLock::~StateDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

}  // namespace mps::scaling
