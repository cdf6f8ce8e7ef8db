#pragma once
// Bounded, time-limited memory of idempotency keys. A repeated request either
// joins the execution in progress or gets the first reply again; it is never
// executed twice while its key is remembered. Used only on the I/O thread.
#include <chrono>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "bus/envelope.h"

namespace mps::bus {

struct ReplyAddress {
  std::string routing_id;
  std::uint64_t correlation_id;
};

class IdempotencyCache {
 public:
  using Clock = std::chrono::steady_clock;
  // A key in progress keeps at most `max_waiting` repeats waiting for its
  // reply: a peer repeating one key while it runs cannot grow it without bound.
  IdempotencyCache(std::size_t capacity, std::chrono::milliseconds ttl,
                   std::size_t max_waiting = 64)
      : capacity_(capacity), ttl_(ttl), max_waiting_(max_waiting) {}

  enum class Lookup { kNew, kInProgress, kDone, kTooManyWaiting };
  // kNew: the caller runs the request. kInProgress: `who` will get the reply
  // when it completes. kDone: `cached` holds the first reply.
  // kTooManyWaiting: in progress, and `who` was not added (answer it now).
  Lookup Begin(const std::string& key, const ReplyAddress& who, Envelope* cached,
               Clock::time_point now);
  // Stores the reply and returns every address waiting for it. `keep` false:
  // the waiting get it, and the key is forgotten, so a later repeat runs the
  // request again (a reply saying nothing was done and that a retry may
  // fare better, e.g. the daemon behind the handler was unreachable).
  std::vector<ReplyAddress> Complete(const std::string& key, const Envelope& reply,
                                     Clock::time_point now, bool keep = true);

  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    bool done = false;
    Envelope reply;
    std::vector<ReplyAddress> waiting;
    Clock::time_point stored;
    std::list<std::string>::iterator order;
  };
  void Evict(Clock::time_point now);

  std::size_t capacity_;
  std::chrono::milliseconds ttl_;
  std::size_t max_waiting_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> order_;  // oldest first
};

}  // namespace mps::bus
