#include "bus/idempotency_cache.h"

namespace mps::bus {

void IdempotencyCache::Evict(Clock::time_point now) {
  // Never evict an entry still in progress: forgetting it would let a retry
  // run the request a second time.
  auto it = order_.begin();
  while (it != order_.end()) {
    auto e = entries_.find(*it);
    bool expired = e->second.done && now - e->second.stored > ttl_;
    bool over = entries_.size() > capacity_ && e->second.done;
    if (!expired && !over) {
      if (entries_.size() <= capacity_) break;
      ++it;
      continue;
    }
    entries_.erase(e);
    it = order_.erase(it);
  }
}

IdempotencyCache::Lookup IdempotencyCache::Begin(const std::string& key, const ReplyAddress& who,
                                                 Envelope* cached, Clock::time_point now) {
  Evict(now);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    order_.push_back(key);
    Entry e;
    e.stored = now;
    e.order = std::prev(order_.end());
    e.waiting.push_back(who);
    entries_.emplace(key, std::move(e));
    return Lookup::kNew;
  }
  if (!it->second.done) {
    // The first execution's own address is waiting[0]: it counts too.
    if (it->second.waiting.size() > max_waiting_) return Lookup::kTooManyWaiting;
    it->second.waiting.push_back(who);
    return Lookup::kInProgress;
  }
  *cached = it->second.reply;
  return Lookup::kDone;
}

std::vector<ReplyAddress> IdempotencyCache::Complete(const std::string& key, const Envelope& reply,
                                                     Clock::time_point now, bool keep) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return {};
  if (!keep) {
    auto waiting = std::exchange(it->second.waiting, {});
    order_.erase(it->second.order);
    entries_.erase(it);
    return waiting;
  }
  it->second.done = true;
  it->second.reply = reply;
  it->second.stored = now;
  // Move to the back: the TTL counts from completion.
  order_.erase(it->second.order);
  order_.push_back(key);
  it->second.order = std::prev(order_.end());
  return std::exchange(it->second.waiting, {});
}

}  // namespace mps::bus
