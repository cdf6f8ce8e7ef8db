#include "scaling/instance_namer.h"

#include <gtest/gtest.h>

#include <random>

namespace mps::scaling {
namespace {

TEST(InstanceNamer, NamesAreValidHostnamesWithThePrefix) {
  std::mt19937_64 engine(42);
  InstanceNamer namer([&] { return engine(); });
  std::set<std::string> taken;
  for (int i = 0; i < 200; ++i) {
    std::string name = namer.Next("web", taken);
    EXPECT_TRUE(IsValidInstanceName(name)) << name;
    EXPECT_TRUE(BelongsToPool("web", name)) << name;
    EXPECT_EQ(name.size(), 3 + 1 + kNameSuffixLength);
    for (char c : name.substr(4)) {
      EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) << name;
    }
    EXPECT_TRUE(taken.insert(name).second) << "duplicate " << name;
  }
}

TEST(InstanceNamer, DeterministicWithInjectedRandom) {
  std::uint64_t n = 0;
  InstanceNamer namer([&] { return n++; });
  EXPECT_EQ(namer.Next("web", {}), "web-abcdef");
  EXPECT_EQ(namer.Next("web", {}), "web-ghijkl");
}

TEST(InstanceNamer, SkipsTakenNames) {
  // The source repeats "web-aaaaaa" twice, then moves on.
  std::vector<std::uint64_t> values(12, 0);
  values.insert(values.end(), {1, 1, 1, 1, 1, 1});
  std::size_t i = 0;
  InstanceNamer namer([&] { return values[i++ % values.size()]; });
  EXPECT_EQ(namer.Next("web", {"web-aaaaaa"}), "web-bbbbbb");
}

TEST(InstanceNamer, BrokenRandomSourceFailsInsteadOfLooping) {
  InstanceNamer namer([] { return std::uint64_t{0}; });
  EXPECT_THROW(namer.Next("web", {"web-aaaaaa"}), std::runtime_error);
}

TEST(InstanceNamer, RejectsInvalidPrefix) {
  InstanceNamer namer([] { return std::uint64_t{7}; });
  EXPECT_THROW(namer.Next("1web", {}), std::invalid_argument);
  EXPECT_THROW(namer.Next("", {}), std::invalid_argument);
  EXPECT_THROW(namer.Next(std::string(kMaxNamePrefixLength + 1, 'a'), {}), std::invalid_argument);
  std::string longest(kMaxNamePrefixLength, 'a');
  std::string name = namer.Next(longest, {});
  EXPECT_EQ(name.size(), kMaxHostnameLength);
  EXPECT_TRUE(IsValidInstanceName(name));
}

TEST(InstanceNamer, RandomDeviceNamer) {
  auto namer = InstanceNamer::FromRandomDevice();
  std::string a = namer.Next("pool", {});
  std::string b = namer.Next("pool", {a});
  EXPECT_NE(a, b);
  EXPECT_TRUE(BelongsToPool("pool", a));
}

TEST(InstanceName, Validity) {
  EXPECT_TRUE(IsValidInstanceName("a"));
  EXPECT_TRUE(IsValidInstanceName("web-1"));
  EXPECT_TRUE(IsValidInstanceName("Web-A1"));
  EXPECT_FALSE(IsValidInstanceName(""));
  EXPECT_FALSE(IsValidInstanceName("1web"));
  EXPECT_FALSE(IsValidInstanceName("-web"));
  EXPECT_FALSE(IsValidInstanceName("web-"));
  EXPECT_FALSE(IsValidInstanceName("web_1"));
  EXPECT_FALSE(IsValidInstanceName("web.1"));
  EXPECT_TRUE(IsValidInstanceName(std::string(63, 'a')));
  EXPECT_FALSE(IsValidInstanceName(std::string(64, 'a')));
}

TEST(InstanceName, PoolMembershipNeedsTheSeparator) {
  EXPECT_TRUE(BelongsToPool("web", "web-1"));
  EXPECT_TRUE(BelongsToPool("web", "web-abc123"));
  EXPECT_FALSE(BelongsToPool("web", "webapp-1"));
  EXPECT_FALSE(BelongsToPool("web", "web"));
  EXPECT_FALSE(BelongsToPool("web", "web-"));
  EXPECT_FALSE(BelongsToPool("web", "api-web-1"));
  EXPECT_TRUE(BelongsToPool("web", "web-app-1"));  // names are the pool's own
}

}  // namespace
}  // namespace mps::scaling
