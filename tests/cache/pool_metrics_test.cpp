// The pool gauges the state cache sets, read back from the exposition text.
#include "cache/pool_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mps::cache {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

scaling::Instance On(std::string name, std::string host) {
  scaling::Instance i;
  i.name = std::move(name);
  i.host = std::move(host);
  i.state = scaling::InstanceState::kRunning;
  return i;
}

TEST(PoolMetrics, InstancesAndReachabilityAreLabelledByHost) {
  scaling::PoolState state;
  state.prefix = "web";
  state.instances = {On("web-a1", "mp-a"), On("web-a2", "mp-a"), On("web-b1", "mp-b")};
  state.SetHostReachability("mp-a", {});
  state.SetHostReachability("mp-b", {false, "multipass-hostd mp-b: unreachable"});
  state.SetHostReachability("mp-c", {});
  metrics::Registry registry;
  RecordPoolMetrics(registry, state, scaling::PoolStatus{});
  auto text = registry.Text();
  EXPECT_THAT(text, HasSubstr("mps_pool_host_instances{host=\"mp-a\",pool=\"web\"} 2"));
  EXPECT_THAT(text, HasSubstr("mps_pool_host_instances{host=\"mp-b\",pool=\"web\"} 1"));
  // A host the pool may use but has nothing on yet has its series at 0.
  EXPECT_THAT(text, HasSubstr("mps_pool_host_instances{host=\"mp-c\",pool=\"web\"} 0"));
  EXPECT_THAT(text, HasSubstr("mps_pool_host_reachable{host=\"mp-a\",pool=\"web\"} 1"));
  EXPECT_THAT(text, HasSubstr("mps_pool_host_reachable{host=\"mp-b\",pool=\"web\"} 0"));

  // An instance gone from a host takes its count down; a host no longer
  // the pool's loses its series.
  state.instances.pop_back();
  state.hosts.erase("mp-c");
  RecordPoolMetrics(registry, state, scaling::PoolStatus{});
  text = registry.Text();
  EXPECT_THAT(text, HasSubstr("mps_pool_host_instances{host=\"mp-b\",pool=\"web\"} 0"));
  EXPECT_THAT(text, Not(HasSubstr("host=\"mp-c\"")));
}

}  // namespace
}  // namespace mps::cache
