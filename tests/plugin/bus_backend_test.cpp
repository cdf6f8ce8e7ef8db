#include "target/bus_backend.h"

#include <gtest/gtest.h>

using mps::target::StatusFromInstances;
using json = nlohmann::json;

TEST(StatusFromInstances, CountsRunningAndStartingAndLaunchesInFlight) {
  auto s =
      StatusFromInstances({{"instances", json::array({{{"name", "web-a"}, {"state", "running"}},
                                                      {{"name", "web-b"}, {"state", "starting"}},
                                                      {{"name", "web-c"}, {"state", "stopped"}},
                                                      {{"name", "web-d"}, {"state", "deleted"}}})},
                           {"in_flight", json::array({{{"name", "web-e"}, {"image", "noble"}}})}});
  EXPECT_EQ(s.count, 3);  // a, b and the launch in flight
  EXPECT_FALSE(s.ready);
  EXPECT_NE(s.meta["mps.not_ready"].find("web-b is starting"), std::string::npos);
  EXPECT_NE(s.meta["mps.not_ready"].find("web-e is being launched"), std::string::npos);
  EXPECT_EQ(s.meta["mps.stopped"], "1");
  EXPECT_EQ(s.meta["mps.deleted"], "1");
}

TEST(StatusFromInstances, AllRunningIsReady) {
  auto s =
      StatusFromInstances({{"instances", json::array({{{"name", "web-a"}, {"state", "running"}}})},
                           {"in_flight", json::array()}});
  EXPECT_EQ(s.count, 1);
  EXPECT_TRUE(s.ready);
  EXPECT_TRUE(s.meta.empty());
}

TEST(StatusFromInstances, EmptyPoolIsReadyWithZero) {
  auto s = StatusFromInstances(json::object());
  EXPECT_EQ(s.count, 0);
  EXPECT_TRUE(s.ready);
}

TEST(StatusFromInstances, UnknownStateIsNotReadyAndNamed) {
  auto s = StatusFromInstances(
      {{"instances", json::array({{{"name", "web-x"}, {"state", "unavailable"}}})}});
  EXPECT_EQ(s.count, 0);
  EXPECT_FALSE(s.ready);
  EXPECT_EQ(s.meta["mps.not_ready"], "web-x is unavailable");
}
