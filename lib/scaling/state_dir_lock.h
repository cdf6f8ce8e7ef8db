#pragma once
// One plugin process per state_dir: two processes scaling from the same
// state would both act on the same pools (issue 16: targets 3 and 5 gave 7
// instances). The lock is an flock(2) on `state_dir/lock`, held for as long
// as the object lives and released by the kernel if the process dies, so a
// kill -9 never leaves a stale lock behind. The file holds the holder's pid,
// for the error message of the process that is refused.
#include <filesystem>

namespace mps::scaling {

class StateDirLock {
 public:
  // Throws StateStoreError naming the directory and the holder's pid.
  explicit StateDirLock(const std::filesystem::path& state_dir);
  ~StateDirLock();
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace mps::scaling
