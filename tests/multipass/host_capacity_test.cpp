// What hostd counts for host.capacity, without a daemon.
#include "multipass/host_capacity.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/temp_dir.h"

namespace mps::multipass {
namespace {

constexpr std::int64_t kGiB = 1LL << 30;

TEST(HostCapacity, ALaunchesSizeHasTheDaemonsDefaultsFilledIn) {
  LaunchSpec spec;
  spec.name = "web-1";
  auto defaults = SizeOfLaunch(spec);
  EXPECT_EQ(defaults.cpus, 1);
  EXPECT_EQ(defaults.memory_bytes, kGiB);
  EXPECT_EQ(defaults.disk_bytes, 5 * kGiB);
  spec.cpus = 4;
  spec.memory = "1.5G";
  spec.disk = "20GiB";
  auto sized = SizeOfLaunch(spec);
  EXPECT_EQ(sized.cpus, 4);
  EXPECT_EQ(sized.memory_bytes, 3 * kGiB / 2);
  EXPECT_EQ(sized.disk_bytes, 20 * kGiB);
}

TEST(HostCapacity, AllocationCountsEveryLiveInstanceAndEstimatesTheUnknownOnes) {
  std::vector<InstanceInfo> listed = {{"web-1", InstanceState::running, {}, ""},
                                      {"web-2", InstanceState::stopped, {}, ""},
                                      {"other", InstanceState::starting, {}, ""},
                                      {"gone", InstanceState::deleted, {}, ""}};
  std::map<std::string, InstanceSize> known = {{"web-1", {2, 4 * kGiB, 20 * kGiB}},
                                               {"web-2", {1, 2 * kGiB, 10 * kGiB}},
                                               {"gone", {8, 8 * kGiB, 8 * kGiB}}};
  auto a = AllocationOf(listed, known);
  EXPECT_EQ(a.instances, 3);
  EXPECT_EQ(a.estimated, 1);  // "other", at 1 CPU, 1 GiB, 5 GiB
  EXPECT_EQ(a.cpus, 2 + 1 + 1);
  EXPECT_EQ(a.memory_bytes, 4 * kGiB + 2 * kGiB + kGiB);
  EXPECT_EQ(a.disk_bytes, 20 * kGiB + 10 * kGiB + 5 * kGiB);
}

TEST(HostCapacity, MemTotalIsReadFromMeminfo) {
  EXPECT_EQ(MemTotalFromMeminfo("MemTotal:       16318412 kB\nMemFree:  1 kB\n"),
            16318412LL * 1024);
  EXPECT_EQ(MemTotalFromMeminfo("MemFree: 1 kB\nMemTotal: 2048 kB\n"), 2048LL * 1024);
  EXPECT_FALSE(MemTotalFromMeminfo("SwapMemTotal: 5 kB\n"));
  EXPECT_FALSE(MemTotalFromMeminfo("MemTotal: lots\n"));
  EXPECT_FALSE(MemTotalFromMeminfo(""));
}

TEST(HostCapacity, TheLedgerCountsFailuresOfTheHostNotOfTheRequest) {
  LaunchLedger ledger;
  ledger.Failed(MultipassError(MultipassError::Kind::start_failed, "no room"));
  ledger.Failed(MultipassError(MultipassError::Kind::image_not_found, "no such image"));
  ledger.Failed(MultipassError(MultipassError::Kind::out_of_resources, "full"));
  EXPECT_EQ(ledger.consecutive_failures(), 2);
  EXPECT_EQ(ledger.last_failure(), "full");
  ledger.Launched("web-1", {2, kGiB, 5 * kGiB});
  ledger.Succeeded();
  EXPECT_EQ(ledger.consecutive_failures(), 0);
  EXPECT_EQ(ledger.last_failure(), "");
  EXPECT_EQ(ledger.Sizes().at("web-1").cpus, 2);
  ledger.Deleted({"web-1", "never-there"});
  EXPECT_TRUE(ledger.Sizes().empty());
}

TEST(HostCapacity, TheLedgersSizesOutliveARestart) {
  mps::testing::TempDir dir;
  auto file = dir / "launched-sizes.json";
  {
    LaunchLedger ledger(file);
    EXPECT_EQ(ledger.load_error(), "");
    ledger.Launched("web-1", {2, 2 * kGiB, 10 * kGiB});
    ledger.Launched("web-2", {4, 8 * kGiB, 40 * kGiB});
    ledger.Deleted({"web-2"});
    EXPECT_EQ(ledger.save_error(), "");
  }
  LaunchLedger restarted(file);
  EXPECT_EQ(restarted.load_error(), "");
  auto sizes = restarted.Sizes();
  ASSERT_EQ(sizes.size(), 1u);
  EXPECT_EQ(sizes.at("web-1").cpus, 2);
  EXPECT_EQ(sizes.at("web-1").memory_bytes, 2 * kGiB);
  EXPECT_EQ(sizes.at("web-1").disk_bytes, 10 * kGiB);
  // What it reads is what AllocationOf counts as known, not estimated.
  InstanceInfo listed;
  listed.name = "web-1";
  listed.state = InstanceState::running;
  auto a = AllocationOf({listed}, sizes);
  EXPECT_EQ(a.estimated, 0);
  EXPECT_EQ(a.cpus, 2);
}

TEST(HostCapacity, ABrokenLedgerFileIsNamedAndTheLedgerStartsEmpty) {
  mps::testing::TempDir dir;
  auto file = dir / "launched-sizes.json";
  std::ofstream(file) << "{\"version\": 1, \"sizes\": {\"web-1\": {\"cpus\": 0";
  LaunchLedger ledger(file);
  EXPECT_NE(ledger.load_error().find(file.string()), std::string::npos) << ledger.load_error();
  EXPECT_TRUE(ledger.Sizes().empty());
  std::ofstream(file)
      << R"({"version": 1, "sizes": {"web-1": {"cpus": 0, "memory_bytes": 1, "disk_bytes": 1}}})";
  LaunchLedger zero(file);
  EXPECT_NE(zero.load_error().find("sizes must be positive"), std::string::npos)
      << zero.load_error();
  // A state dir it cannot write to is reported, and the sizes stay in memory.
  LaunchLedger unwritable(dir / "missing-dir" / "launched-sizes.json");
  unwritable.Launched("web-1", {1, kGiB, 5 * kGiB});
  EXPECT_NE(unwritable.save_error().find("cannot write"), std::string::npos);
  EXPECT_EQ(unwritable.Sizes().size(), 1u);
}

}  // namespace
}  // namespace mps::multipass
