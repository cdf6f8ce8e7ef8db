#include "scaling/pool_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mps::scaling {
namespace {

using ::testing::HasSubstr;
using Config = std::map<std::string, std::string>;

// The problems of a config that must fail, as "key: message" lines.
std::vector<PolicyProblem> ProblemsOf(const Config& config) {
  try {
    ParsePoolPolicy(config);
  } catch (const PolicyError& e) {
    return e.problems();
  }
  ADD_FAILURE() << "expected PolicyError";
  return {};
}

const PolicyProblem* ProblemFor(const std::vector<PolicyProblem>& problems, std::string_view key) {
  for (const auto& p : problems) {
    if (p.key == key) return &p;
  }
  return nullptr;
}

TEST(PoolPolicy, DefaultsFromMinimalConfig) {
  auto p = ParsePoolPolicy({{"node_class", "web"}});
  EXPECT_EQ(p.node_class, "web");
  EXPECT_EQ(p.instance_name_prefix, "web");
  EXPECT_EQ(p.instance_image_name, "");
  EXPECT_FALSE(p.instance_cpus);
  EXPECT_FALSE(p.instance_memory_bytes);
  EXPECT_FALSE(p.instance_disk_bytes);
  EXPECT_EQ(p.max_instances, kDefaultMaxInstances);
  EXPECT_EQ(p.max_parallel_launches, 4);
  EXPECT_EQ(p.startup_timeout, std::chrono::minutes(10));
  EXPECT_EQ(p.node_registration_timeout, std::chrono::minutes(10));
  EXPECT_EQ(p.node_drain_deadline, std::chrono::minutes(15));
  EXPECT_FALSE(p.node_drain_ignore_system_jobs);
  EXPECT_FALSE(p.node_purge);
  EXPECT_EQ(p.node_selector_strategy, NodeSelectorStrategy::kLeastBusy);
  EXPECT_EQ(p.node_id_attribute, "unique.hostname");
  EXPECT_FALSE(p.node_filter_ignore_init);
  EXPECT_FALSE(p.node_filter_ignore_drain);
  EXPECT_FALSE(p.node_filter_ignore_ineligible);
  EXPECT_FALSE(p.dry_run);
  EXPECT_FALSE(p.grpc_timeout);
  EXPECT_TRUE(p.warnings.empty());
}

TEST(PoolPolicy, EveryKeyParsed) {
  auto p = ParsePoolPolicy({{"node_class", "web"},
                            {"datacenter", "dc1"},
                            {"node_pool", "edge"},
                            {"instance_name_prefix", "webvm"},
                            {"instance_image_name", "22.04"},
                            {"instance_cpus", "2"},
                            {"instance_memory", "2GiB"},
                            {"instance_disk", "10240M"},
                            {"cloud_init_user_data_path", "/etc/ci.yaml"},
                            {"max_instances", "7"},
                            {"max_parallel_launches", "3"},
                            {"startup_timeout", "1m30s"},
                            {"node_registration_timeout", "5m"},
                            {"node_drain_deadline", "-1s"},
                            {"node_drain_ignore_system_jobs", "T"},
                            {"node_purge", "1"},
                            {"node_selector_strategy", "oldest_create_index"},
                            {"node_id_attribute", "unique.platform.hostname"},
                            {"node_filter_ignore_init", "true"},
                            {"node_filter_ignore_drain", "False"},
                            {"node_filter_ignore_ineligible", "f"},
                            {"dry-run", "true"},
                            {"_nomad_autoscaler_grpc_timeout", "7.5s"}});
  EXPECT_EQ(p.datacenter, "dc1");
  EXPECT_EQ(p.node_pool, "edge");
  EXPECT_EQ(p.instance_name_prefix, "webvm");
  EXPECT_EQ(p.instance_image_name, "22.04");
  EXPECT_EQ(p.instance_cpus, 2);
  EXPECT_EQ(p.instance_memory_bytes, 2ULL << 30);
  EXPECT_EQ(p.instance_disk_bytes, 10ULL << 30);
  EXPECT_EQ(p.cloud_init_user_data_path, "/etc/ci.yaml");
  EXPECT_EQ(p.max_instances, 7);
  EXPECT_EQ(p.max_parallel_launches, 3);
  EXPECT_EQ(p.startup_timeout, std::chrono::seconds(90));
  EXPECT_EQ(p.node_registration_timeout, std::chrono::minutes(5));
  EXPECT_EQ(p.node_drain_deadline, std::chrono::seconds(-1));
  EXPECT_TRUE(p.node_drain_ignore_system_jobs);
  EXPECT_TRUE(p.node_purge);
  EXPECT_EQ(p.node_selector_strategy, NodeSelectorStrategy::kOldestCreateIndex);
  EXPECT_EQ(p.node_id_attribute, "unique.platform.hostname");
  EXPECT_EQ(p.node_filter_ignore_init, true);
  EXPECT_EQ(p.node_filter_ignore_drain, false);
  EXPECT_EQ(p.node_filter_ignore_ineligible, false);
  EXPECT_TRUE(p.dry_run);
  EXPECT_EQ(p.grpc_timeout, std::chrono::milliseconds(7500));
}

TEST(PoolPolicy, EveryStrategyName) {
  for (auto [text, strategy] : std::vector<std::pair<std::string, NodeSelectorStrategy>>{
           {"least_busy", NodeSelectorStrategy::kLeastBusy},
           {"empty", NodeSelectorStrategy::kEmpty},
           {"empty_ignore_system", NodeSelectorStrategy::kEmptyIgnoreSystem},
           {"newest_create_index", NodeSelectorStrategy::kNewestCreateIndex},
           {"oldest_create_index", NodeSelectorStrategy::kOldestCreateIndex}}) {
    auto p = ParsePoolPolicy({{"node_class", "web"}, {"node_selector_strategy", text}});
    EXPECT_EQ(p.node_selector_strategy, strategy) << text;
    EXPECT_EQ(ToString(strategy), text);
  }
}

TEST(PoolPolicy, PoolIdentificationRequired) {
  auto problems = ProblemsOf({{"instance_image_name", "jammy"}});
  const auto* p = ProblemFor(problems, "node_class");
  ASSERT_NE(p, nullptr);
  EXPECT_THAT(p->message, HasSubstr("node pool identification method required"));
  // Without node_class the prefix has nothing to default to.
  EXPECT_NE(ProblemFor(problems, "instance_name_prefix"), nullptr);
}

TEST(PoolPolicy, DatacenterAloneNeedsExplicitPrefix) {
  auto problems = ProblemsOf({{"datacenter", "dc1"}});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].key, "instance_name_prefix");
  EXPECT_THAT(problems[0].message, HasSubstr("required when node_class is not set"));

  auto p = ParsePoolPolicy({{"datacenter", "dc1"}, {"instance_name_prefix", "edge"}});
  EXPECT_EQ(p.instance_name_prefix, "edge");
}

TEST(PoolPolicy, EmptyValueCountsAsUnset) {
  auto p = ParsePoolPolicy({{"node_class", "web"}, {"max_instances", ""}, {"node_purge", ""}});
  EXPECT_EQ(p.max_instances, kDefaultMaxInstances);
  EXPECT_FALSE(p.node_purge);
}

// Not for the pool keys: the autoscaler SDK's node filter tests their presence,
// so `node_class = ""` would filter every node out; refused, naming the key.
TEST(PoolPolicy, EmptyPoolKeyIsRefusedNotIgnored) {
  auto problems =
      ProblemsOf({{"node_class", ""}, {"datacenter", "dc1"}, {"instance_name_prefix", "edge"}});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].key, "node_class");
  EXPECT_THAT(problems[0].message, HasSubstr("set but empty"));
  EXPECT_THAT(problems[0].message, HasSubstr("autoscaler-default-pool"));
  auto dc = ProblemsOf({{"node_class", "web"}, {"datacenter", ""}});
  ASSERT_EQ(dc.size(), 1u);
  EXPECT_EQ(dc[0].key, "datacenter");
  EXPECT_NE(ProblemFor(ProblemsOf({{"node_class", "web"}, {"node_pool", ""}}), "node_pool"),
            nullptr);
}

TEST(PoolPolicy, AllProblemsReportedAtOnceEachNamingItsKey) {
  Config bad = {{"node_class", "web"},
                {"instance_name_prefix", "-bad"},
                {"instance_cpus", "two"},
                {"instance_memory", "256M"},
                {"instance_disk", "lots"},
                {"instance_size", "large"},
                {"max_instances", "0"},
                {"max_parallel_launches", "-2"},
                {"startup_timeout", "10"},
                {"node_registration_timeout", "0s"},
                {"node_drain_deadline", "15 minutes"},
                {"node_drain_ignore_system_jobs", "yes"},
                {"node_purge", "nope"},
                {"node_selector_strategy", "random"},
                {"node_filter_ignore_init", "Y"},
                {"node_filter_ignore_drain", "on"},
                {"node_filter_ignore_ineligible", "2"},
                {"dry-run", "maybe"},
                {"_nomad_autoscaler_grpc_timeout", "7.5"}};
  auto problems = ProblemsOf(bad);
  for (const auto& [key, value] : bad) {
    if (key == "node_class") continue;
    const auto* p = ProblemFor(problems, key);
    ASSERT_NE(p, nullptr) << "no problem reported for " << key;
    EXPECT_THAT(p->message, HasSubstr("expected")) << key;
  }
  EXPECT_EQ(problems.size(), bad.size() - 1);
  EXPECT_THAT(ProblemFor(problems, "instance_memory")->message, HasSubstr("at least 512M"));
  EXPECT_THAT(ProblemFor(problems, "node_selector_strategy")->message,
              HasSubstr("unsupported node selector strategy \"random\""));
  EXPECT_THAT(ProblemFor(problems, "startup_timeout")->message, HasSubstr("Go duration"));
  EXPECT_THAT(ProblemFor(problems, "node_registration_timeout")->message, HasSubstr("positive"));
  // The exception text carries them all.
  try {
    ParsePoolPolicy(bad);
  } catch (const PolicyError& e) {
    EXPECT_THAT(e.what(), HasSubstr("instance_cpus: expected a positive integer, got \"two\""));
    EXPECT_THAT(e.what(), HasSubstr("node_purge: expected a boolean"));
  }
}

TEST(PoolPolicy, DiskMinimumIsOneGiB) {
  auto problems = ProblemsOf({{"node_class", "web"}, {"instance_disk", "1023M"}});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].key, "instance_disk");
  EXPECT_THAT(problems[0].message, HasSubstr("at least 1G"));
  EXPECT_EQ(ParsePoolPolicy({{"node_class", "web"}, {"instance_disk", "1G"}}).instance_disk_bytes,
            1ULL << 30);
}

TEST(PoolPolicy, NodeClassThatIsNoHostnameNeedsPrefix) {
  auto problems = ProblemsOf({{"node_class", "web_tier"}});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].key, "instance_name_prefix");
  EXPECT_THAT(problems[0].message, HasSubstr("\"web_tier\""));
  EXPECT_NO_THROW(ParsePoolPolicy({{"node_class", "web_tier"}, {"instance_name_prefix", "web"}}));
}

TEST(PoolPolicy, UnknownKeysAreWarnings) {
  auto p = ParsePoolPolicy({{"node_class", "web"}, {"colour", "blue"}, {"nomad_address", "x"}});
  ASSERT_EQ(p.warnings.size(), 2u);
  EXPECT_THAT(p.warnings[0], HasSubstr("\"colour\""));
  EXPECT_THAT(p.warnings[1], HasSubstr("\"nomad_address\""));
}

TEST(PoolPolicy, SizeNameSetsCpusMemoryAndDisk) {
  auto p = ParsePoolPolicy({{"node_class", "web"}, {"instance_size", "c2-m4"}});
  EXPECT_EQ(p.instance_cpus, 2);
  EXPECT_EQ(p.instance_memory_bytes, 4ULL << 30);
  EXPECT_FALSE(p.instance_disk_bytes);
  p = ParsePoolPolicy({{"node_class", "web"}, {"instance_size", "c4-m8-d20"}});
  EXPECT_EQ(p.instance_cpus, 4);
  EXPECT_EQ(p.instance_memory_bytes, 8ULL << 30);
  EXPECT_EQ(p.instance_disk_bytes, 20ULL << 30);
}

TEST(PoolPolicy, SizeNameAgreeingWithExplicitKeysIsFine) {
  auto p = ParsePoolPolicy({{"node_class", "web"},
                            {"instance_size", "c2-m4"},
                            {"instance_cpus", "2"},
                            {"instance_memory", "4096M"},
                            {"instance_disk", "30G"}});
  EXPECT_EQ(p.instance_cpus, 2);
  EXPECT_EQ(p.instance_disk_bytes, 30ULL << 30);  // the size name sets no disk
}

TEST(PoolPolicy, SizeNameConflictNamesBothKeys) {
  auto problems = ProblemsOf({{"node_class", "web"},
                              {"instance_size", "c2-m4-d20"},
                              {"instance_cpus", "3"},
                              {"instance_memory", "8G"},
                              {"instance_disk", "10G"}});
  ASSERT_EQ(problems.size(), 3u);
  for (const char* key : {"instance_cpus", "instance_memory", "instance_disk"}) {
    const auto* p = ProblemFor(problems, key);
    ASSERT_NE(p, nullptr) << key;
    EXPECT_THAT(p->message, HasSubstr(key));
    EXPECT_THAT(p->message, HasSubstr("instance_size"));
  }
  EXPECT_THAT(ProblemFor(problems, "instance_cpus")->message,
              HasSubstr("instance_cpus=3 conflicts with instance_size \"c2-m4-d20\" (2 CPUs)"));
}

TEST(PoolPolicy, InstanceSizeSyntax) {
  EXPECT_TRUE(ParseInstanceSize("c1-m1"));
  EXPECT_FALSE(ParseInstanceSize("c0-m4"));
  EXPECT_FALSE(ParseInstanceSize("c2"));
  EXPECT_FALSE(ParseInstanceSize("m4-c2"));
  EXPECT_FALSE(ParseInstanceSize("c2-m4-"));
  EXPECT_FALSE(ParseInstanceSize("c2-m4-d"));
  EXPECT_FALSE(ParseInstanceSize("c2-m4-d20x"));
  EXPECT_FALSE(ParseInstanceSize("c2-m-4"));
  EXPECT_FALSE(ParseInstanceSize(""));
}

TEST(PoolPolicy, MultipassSizeSyntax) {
  EXPECT_EQ(ParseMultipassSize("512M"), 512ULL << 20);
  EXPECT_EQ(ParseMultipassSize("1G"), 1ULL << 30);
  EXPECT_EQ(ParseMultipassSize("1g"), 1ULL << 30);
  EXPECT_EQ(ParseMultipassSize("2GiB"), 2ULL << 30);
  EXPECT_EQ(ParseMultipassSize("2GB"), 2ULL << 30);
  EXPECT_EQ(ParseMultipassSize("10240kb"), 10ULL << 20);
  EXPECT_EQ(ParseMultipassSize("1.5G"), 3ULL << 29);
  EXPECT_EQ(ParseMultipassSize("4096"), 4096u);
  EXPECT_EQ(ParseMultipassSize("4096B"), 4096u);
  EXPECT_EQ(ParseMultipassSize(" 1G "), 1ULL << 30);
  EXPECT_FALSE(ParseMultipassSize(""));
  EXPECT_FALSE(ParseMultipassSize("G"));
  EXPECT_FALSE(ParseMultipassSize("1.5"));
  EXPECT_FALSE(ParseMultipassSize("1T"));
  EXPECT_FALSE(ParseMultipassSize("1Gi"));
  EXPECT_FALSE(ParseMultipassSize("-1G"));
  EXPECT_FALSE(ParseMultipassSize("99999999999999999999G"));
  EXPECT_EQ(FormatMultipassSize(4ULL << 30), "4G");
  EXPECT_EQ(FormatMultipassSize(512ULL << 20), "512M");
  EXPECT_EQ(FormatMultipassSize(3ULL << 29), "1536M");
  EXPECT_EQ(FormatMultipassSize(1000), "1000");
}

}  // namespace
}  // namespace mps::scaling

namespace mps::scaling {
namespace {

// max_instances = 1000000000 was accepted and a Scale to 100,000 recorded
// 98,513 launches (issue 16): the ceiling is named with what was given.
TEST(PoolPolicy, MaxInstancesHasASaneCeiling) {
  auto problems = ProblemsOf({{"node_class", "web"}, {"max_instances", "1000000000"}});
  const auto* p = ProblemFor(problems, "max_instances");
  ASSERT_NE(p, nullptr);
  EXPECT_THAT(p->message, HasSubstr("expected at most 1000, got \"1000000000\""));
  EXPECT_EQ(ParsePoolPolicy({{"node_class", "web"}, {"max_instances", "1000"}}).max_instances,
            1000);
}

TEST(PoolPolicy, HostsAndZonesAreCommaSeparatedNameLists) {
  auto p = ParsePoolPolicy({{"node_class", "web"}, {"hosts", "mp-b, mp-a,mp-b"}, {"zones", "z1"}});
  EXPECT_EQ(p.hosts, (std::set<std::string>{"mp-a", "mp-b"}));
  EXPECT_EQ(p.zones, (std::set<std::string>{"z1"}));
  EXPECT_TRUE(ParsePoolPolicy({{"node_class", "web"}}).hosts.empty());

  auto problems = ProblemsOf({{"node_class", "web"}, {"hosts", "mp-a,,mp-b"}, {"zones", "z 1"}});
  ASSERT_NE(ProblemFor(problems, "hosts"), nullptr);
  EXPECT_THAT(ProblemFor(problems, "hosts")->message, HasSubstr("got an empty item"));
  ASSERT_NE(ProblemFor(problems, "zones"), nullptr);
  EXPECT_THAT(ProblemFor(problems, "zones")->message,
              HasSubstr("comma-separated list of zone names, got \"z 1\""));
}

TEST(PoolPolicy, PlacementStrategyIsSpreadOrPack) {
  EXPECT_EQ(ParsePoolPolicy({{"node_class", "web"}}).placement_strategy,
            PlacementStrategy::kSpread);
  EXPECT_EQ(
      ParsePoolPolicy({{"node_class", "web"}, {"placement_strategy", "pack"}}).placement_strategy,
      PlacementStrategy::kPack);
  auto problems = ProblemsOf({{"node_class", "web"}, {"placement_strategy", "binpack"}});
  ASSERT_NE(ProblemFor(problems, "placement_strategy"), nullptr);
  EXPECT_THAT(ProblemFor(problems, "placement_strategy")->message,
              HasSubstr("expected spread (even over hosts and zones) or pack"));
  EXPECT_THAT(ProblemFor(problems, "placement_strategy")->message, HasSubstr("got \"binpack\""));
}

TEST(PoolPolicy, PlacementScopeNamesUnknownHostsAndZones) {
  auto host = [](std::string name, std::string zone) {
    config::HostEntry h;
    h.name = std::move(name);
    h.zone = std::move(zone);
    return h;
  };
  std::vector<config::HostEntry> hosts = {host("mp-a", "z1"), host("mp-b", "z2"), host("mp-c", "")};
  auto policy =
      ParsePoolPolicy({{"node_class", "web"}, {"hosts", "mp-a,mp-x,mp-y"}, {"zones", "z2,z9"}});
  auto problems = CheckPlacementScope(policy, hosts);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].key, "hosts");
  EXPECT_EQ(problems[0].message,
            "unknown hosts mp-x, mp-y; expected names from the plugin's hosts (hosts: mp-a, mp-b, "
            "mp-c)");
  EXPECT_EQ(problems[1].key, "zones");
  EXPECT_EQ(problems[1].message,
            "unknown zone z9; expected names from the plugin's hosts (zones: z1, z2)");

  // Known names that share no host.
  policy = ParsePoolPolicy({{"node_class", "web"}, {"hosts", "mp-a"}, {"zones", "z2"}});
  problems = CheckPlacementScope(policy, hosts);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].message, HasSubstr("have no host in common"));

  policy = ParsePoolPolicy({{"node_class", "web"}, {"zones", "z1,z2"}});
  EXPECT_TRUE(CheckPlacementScope(policy, hosts).empty());
  EXPECT_TRUE(CheckPlacementScope(ParsePoolPolicy({{"node_class", "web"}}), hosts).empty());
}

TEST(PoolPolicy, WarmPoolDefaultsOff) {
  auto p = ParsePoolPolicy({{"node_class", "web"}, {"max_instances", "7"}});
  EXPECT_EQ(p.warm_pool_size, 0);
  EXPECT_FALSE(p.warm_pool_max_prepared);
  EXPECT_EQ(p.WarmMaxPrepared(), 7);
  EXPECT_FALSE(p.warm_pool_reuse_on_scale_in);
}

TEST(PoolPolicy, WarmPoolKeysParsed) {
  auto p = ParsePoolPolicy({{"node_class", "web"},
                            {"warm_pool_size", "3"},
                            {"warm_pool_max_prepared", "8"},
                            {"warm_pool_reuse_on_scale_in", "true"}});
  EXPECT_EQ(p.warm_pool_size, 3);
  EXPECT_EQ(p.WarmMaxPrepared(), 8);
  EXPECT_TRUE(p.warm_pool_reuse_on_scale_in);
  EXPECT_TRUE(p.warnings.empty());
}

TEST(PoolPolicy, WarmPoolErrorsNameTheKey) {
  auto problems = ProblemsOf({{"node_class", "web"},
                              {"warm_pool_size", "-1"},
                              {"warm_pool_max_prepared", "0"},
                              {"warm_pool_reuse_on_scale_in", "maybe"}});
  ASSERT_TRUE(ProblemFor(problems, "warm_pool_size"));
  EXPECT_THAT(ProblemFor(problems, "warm_pool_size")->message, HasSubstr("non-negative"));
  ASSERT_TRUE(ProblemFor(problems, "warm_pool_max_prepared"));
  ASSERT_TRUE(ProblemFor(problems, "warm_pool_reuse_on_scale_in"));

  problems = ProblemsOf({{"node_class", "web"}, {"max_instances", "4"}, {"warm_pool_size", "5"}});
  ASSERT_TRUE(ProblemFor(problems, "warm_pool_size"));
  EXPECT_THAT(ProblemFor(problems, "warm_pool_size")->message, HasSubstr("max_instances (4)"));

  problems =
      ProblemsOf({{"node_class", "web"}, {"max_instances", "4"}, {"warm_pool_max_prepared", "5"}});
  ASSERT_TRUE(ProblemFor(problems, "warm_pool_max_prepared"));
  EXPECT_THAT(ProblemFor(problems, "warm_pool_max_prepared")->message,
              HasSubstr("max_instances (4)"));

  problems =
      ProblemsOf({{"node_class", "web"}, {"warm_pool_size", "3"}, {"warm_pool_max_prepared", "2"}});
  ASSERT_TRUE(ProblemFor(problems, "warm_pool_max_prepared"));
  EXPECT_THAT(ProblemFor(problems, "warm_pool_max_prepared")->message,
              HasSubstr("warm_pool_size (3)"));
}

}  // namespace
}  // namespace mps::scaling
