#include "cluster_sim/launch_validation.h"

#include <gtest/gtest.h>

namespace {

using mps::sim::IsValidInstanceName;
using mps::sim::ParseSizeBytes;

TEST(InstanceName, FollowsTheDaemonHostnameRule) {
  for (const char* ok : {"a", "web", "nomad-client-1", "A9", "x-y-z"})
    EXPECT_TRUE(IsValidInstanceName(ok)) << ok;
  for (const char* bad : {"", "1abc", "-a", "a-", "a_b", "a.b", "a b", "é"})
    EXPECT_FALSE(IsValidInstanceName(bad)) << bad;
}

TEST(SizeSyntax, BinaryUnitsWithOptionalSuffixes) {
  EXPECT_EQ(ParseSizeBytes("1024"), 1024u);
  EXPECT_EQ(ParseSizeBytes("512M"), 512ull << 20);
  EXPECT_EQ(ParseSizeBytes("1G"), 1ull << 30);
  EXPECT_EQ(ParseSizeBytes("1.5G"), 3ull << 29);
  EXPECT_EQ(ParseSizeBytes("2GiB"), 2ull << 30);
  EXPECT_EQ(ParseSizeBytes("10240kb"), 10240ull << 10);
  EXPECT_EQ(ParseSizeBytes("  4g "), 4ull << 30);
  EXPECT_EQ(ParseSizeBytes("7B"), 7u);
}

TEST(SizeSyntax, RejectsWhatTheDaemonRejects) {
  for (const char* bad : {"", "G", "1.5", "1T", "1GG", "-1G", "1.G", "one", "1 G B", "1Gi"})
    EXPECT_FALSE(ParseSizeBytes(bad).has_value()) << bad;
}

}  // namespace
