#pragma once
// A stop flag that long calls watch. Cancel() sets it and wakes whoever
// registered a wake-up (NomadApi: the libcurl multi handle its call polls).
// Thread-safe; shared by everything one Nomad actor runs, so one Cancel()
// ends every call it has in flight.
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace mps::nomad {

class Cancellation {
 public:
  Cancellation() = default;
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  // Sets the flag and calls every registered wake-up once. Idempotent.
  void Cancel();
  bool cancelled() const;

  // While a Registration lives, Cancel() calls `wake` (on the cancelling
  // thread, under this object's lock: keep it short and non-blocking). When
  // already cancelled, `wake` is called at once. Destroying the Registration
  // waits for a running `wake` to return, so what it touches may be freed next.
  class Registration {
   public:
    Registration() = default;
    Registration(Registration&& other) noexcept;
    Registration& operator=(Registration&& other) noexcept;
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration();

   private:
    friend class Cancellation;
    Registration(const Cancellation* owner, std::uint64_t id) : owner_(owner), id_(id) {}
    const Cancellation* owner_ = nullptr;
    std::uint64_t id_ = 0;
  };
  [[nodiscard]] Registration OnCancel(std::function<void()> wake) const;

 private:
  void Unregister(std::uint64_t id) const;

  mutable std::mutex mutex_;
  bool cancelled_ = false;
  mutable std::uint64_t next_id_ = 1;
  mutable std::map<std::uint64_t, std::function<void()>> wakes_;
};

}  // namespace mps::nomad
