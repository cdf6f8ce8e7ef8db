// `mpscale hosts` formatting: the headroom placement would use, per host.
#include "mpscale/hosts_table.h"

#include <gtest/gtest.h>

namespace mps::mpscale {
namespace {

constexpr std::int64_t kGiB = 1LL << 30;

HostAnswer Answered(std::string name, std::string zone) {
  HostAnswer a;
  a.host.name = std::move(name);
  a.host.zone = std::move(zone);
  a.host.hostd_address = "tcp://10.0.0.1:7400";
  contracts::host::CapacityReply c;
  c.totals = {8, 16 * kGiB, 100 * kGiB, "daemon_info", "", ""};
  c.allocated = {2, 3, 5 * kGiB, 15 * kGiB, 1};
  c.headroom = {2.0, 1.0, kGiB, 10 * kGiB, 4};
  c.health.daemon_reachable = true;
  a.capacity = c;
  return a;
}

TEST(HostsTable, FreeOfUsableWithEstimatesAndHealth) {
  auto failing = Answered("mp-b", "");
  failing.capacity->health.consecutive_launch_failures = 3;
  failing.capacity->health.last_launch_failure = "start failed";
  HostAnswer gone;
  gone.host.name = "mp-c";
  gone.host.hostd_address = "tcp://10.0.0.3:7400";
  gone.error = "no answer within 5s";
  auto text = FormatHostsTable({Answered("mp-a", "z1"), failing, gone});
  std::vector<std::string> lines;
  for (std::size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
    lines.push_back(text.substr(at, nl - at));
  ASSERT_EQ(lines.size(), 4u) << text;
  EXPECT_EQ(lines[0].rfind("HOST", 0), 0u);
  // 8 CPUs x 2 = 16, 3 taken; 16 GiB - 1 GiB reserve, 5 taken; 100 - 10, 15 taken.
  for (const char* part : {"mp-a ", " z1 ", "2/4 (1 est.)", "13 of 16", "10.0 GiB of 15.0 GiB",
                           "75.0 GiB of 90.0 GiB", " ok"})
    EXPECT_NE(lines[1].find(part), std::string::npos) << part << " in " << lines[1];
  EXPECT_NE(lines[2].find("the last 3 launches failed (last: start failed)"), std::string::npos)
      << lines[2];
  EXPECT_NE(lines[3].find("hostd at tcp://10.0.0.3:7400 unreachable: no answer within 5s"),
            std::string::npos)
      << lines[3];

  auto json = HostsJson({Answered("mp-a", "z1"), gone});
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json[0]["free"]["cpus"], 13);
  EXPECT_EQ(json[0]["free"]["instances"], 2);
  EXPECT_EQ(json[0]["capacity"]["allocated"]["estimated"], 1);
  EXPECT_EQ(json[1]["healthy"], false);
  EXPECT_EQ(json[1]["error"], "no answer within 5s");
}

TEST(HostsTable, BytesInBinaryUnits) {
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(3 * kGiB / 2), "1.5 GiB");
  EXPECT_EQ(FormatBytes(-2 * kGiB), "-2.0 GiB");
}

}  // namespace
}  // namespace mps::mpscale
