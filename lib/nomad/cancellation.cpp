#include "nomad/cancellation.h"

#include <utility>

namespace mps::nomad {

void Cancellation::Cancel() {
  std::lock_guard lock(mutex_);
  if (cancelled_) return;
  cancelled_ = true;
  // Under the lock: a Registration being destroyed waits here, so no wake-up
  // runs on something already freed.
  for (auto& [id, wake] : wakes_) wake();
}

bool Cancellation::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

Cancellation::Registration Cancellation::OnCancel(std::function<void()> wake) const {
  std::lock_guard lock(mutex_);
  if (cancelled_) {
    wake();
    return {};
  }
  auto id = next_id_++;
  wakes_.emplace(id, std::move(wake));
  return Registration(this, id);
}

void Cancellation::Unregister(std::uint64_t id) const {
  std::lock_guard lock(mutex_);
  wakes_.erase(id);
}

Cancellation::Registration::Registration(Registration&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), id_(other.id_) {}

Cancellation::Registration& Cancellation::Registration::operator=(Registration&& other) noexcept {
  if (this != &other) {
    if (owner_) owner_->Unregister(id_);
    owner_ = std::exchange(other.owner_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

Cancellation::Registration::~Registration() {
  if (owner_) owner_->Unregister(id_);
}

}  // namespace mps::nomad
