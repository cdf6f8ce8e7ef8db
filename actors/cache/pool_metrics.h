#pragma once
// The pool gauges of multipass-target, set by the state cache from what it
// posts for Status: instances by state, ready and why not, the count the
// autoscaler sees, peers reachable, operations in flight, when it was posted.
#include <string_view>

#include "metrics/registry.h"
#include "scaling/pool_state.h"
#include "scaling/pool_status.h"

namespace mps::cache {

void RecordPoolMetrics(metrics::Registry& metrics, const scaling::PoolState& state,
                       const scaling::PoolStatus& status);

// A not-ready reason as a label value from a fixed set (the sentences name
// instances, which would make one series per instance).
std::string_view ReasonKind(std::string_view reason);

}  // namespace mps::cache
