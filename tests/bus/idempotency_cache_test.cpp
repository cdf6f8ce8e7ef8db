// The idempotency cache's per-key state is bounded (issue 16, defect 10).
#include "bus/idempotency_cache.h"

#include <gtest/gtest.h>

namespace {

using mps::bus::IdempotencyCache;
using namespace std::chrono_literals;

TEST(IdempotencyCache, RepeatsOfAKeyInProgressWaitUpToALimit) {
  IdempotencyCache cache(16, 10min, 4);
  auto t = IdempotencyCache::Clock::now();
  mps::bus::Envelope cached;
  EXPECT_EQ(cache.Begin("k", {"peer-0", 1}, &cached, t), IdempotencyCache::Lookup::kNew);
  for (int i = 1; i <= 4; ++i)
    EXPECT_EQ(cache.Begin("k", {"peer-" + std::to_string(i), 1}, &cached, t),
              IdempotencyCache::Lookup::kInProgress);
  for (int i = 5; i < 10000; ++i)
    ASSERT_EQ(cache.Begin("k", {"peer-" + std::to_string(i), 1}, &cached, t),
              IdempotencyCache::Lookup::kTooManyWaiting);
  mps::bus::Envelope reply;
  reply.type = "x.reply";
  auto waiting = cache.Complete("k", reply, t);
  ASSERT_EQ(waiting.size(), 5u);  // the first and four repeats
  EXPECT_EQ(waiting.front().routing_id, "peer-0");
  EXPECT_EQ(waiting.back().routing_id, "peer-4");
  // Completed: every later repeat gets the reply, without limit.
  EXPECT_EQ(cache.Begin("k", {"peer-x", 2}, &cached, t), IdempotencyCache::Lookup::kDone);
  EXPECT_EQ(cached.type, "x.reply");
}

}  // namespace
