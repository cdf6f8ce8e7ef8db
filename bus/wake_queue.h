#pragma once
// Hands work from any thread to a socket-owning I/O thread without touching
// its sockets: a locked queue plus an eventfd the I/O thread polls beside them.
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <deque>
#include <mutex>
#include <stdexcept>

namespace mps::bus {

template <class T>
class WakeQueue {
 public:
  WakeQueue() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error("eventfd failed");
  }
  ~WakeQueue() { close(fd_); }
  WakeQueue(const WakeQueue&) = delete;
  WakeQueue& operator=(const WakeQueue&) = delete;

  int fd() const { return fd_; }

  void Push(T item) {
    bool was_empty;
    {
      std::lock_guard lock(mutex_);
      was_empty = items_.empty();
      items_.push_back(std::move(item));
    }
    if (was_empty) Wake();
  }

  void Wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(fd_, &one, sizeof one);
  }

  // Called by the I/O thread: clears the eventfd and takes everything queued.
  std::deque<T> Drain() {
    std::uint64_t count;
    [[maybe_unused]] auto n = read(fd_, &count, sizeof count);
    std::lock_guard lock(mutex_);
    std::deque<T> out;
    out.swap(items_);
    return out;
  }

 private:
  int fd_;
  std::mutex mutex_;
  std::deque<T> items_;
};

}  // namespace mps::bus
