#include <gtest/gtest.h>

#include "canned_pools.h"
#include "mpscale/event_format.h"
#include "mpscale/status_table.h"

using namespace mps::mpscale;
using namespace mps::mpscale::testing;

namespace {

mps::bus::Envelope Event(std::uint64_t seq, const std::string& type, nlohmann::json fields) {
  mps::bus::Envelope e;
  e.type = type;
  e.seq = seq;
  e.stream = "s-1";
  e.time_ms = kNowNs / 1'000'000 + 123;  // 10:15:45.123 UTC
  e.payload = std::move(fields);
  return e;
}

}  // namespace

TEST(MpscaleStatusTable, PrintsPoolsWithInstancesAndFailuresBeneath) {
  EXPECT_EQ(FormatStatusTable(CannedPools(), kNowNs),
            "POOL   COUNT  READY                                      LAST EVENT                   "
            "     IN FLIGHT\n"
            "web    3      yes                                        2026-11-23 10:12:33Z (3m12s "
            "ago)  2 launch, 1 drain; scale r-17\n"
            "    INSTANCE  STATE     NODE                 COUNTED\n"
            "    web-1     running   5f2c9a1e (draining)  yes\n"
            "    web-2     running   8d41b7c0 (ready)     yes\n"
            "    web-4     starting  -                    yes\n"
            "batch  0      no: image jammy not found; launch backoff  -                            "
            "     -\n"
            "    launch failures: 3 in a row, last: launch failed: image jammy not found, next "
            "retry in 40s\n");
}

TEST(MpscaleStatusTable, NoPools) {
  EXPECT_EQ(FormatStatusTable({{"pools", nlohmann::json::array()}}, kNowNs), "no pools\n");
}

TEST(MpscaleStatusTable, InFlightCountsKindsInProtocolOrderAndNamesTheScaleRequest) {
  auto pools = CannedPools()["pools"];
  EXPECT_EQ(FormatInFlight(pools[0]), "2 launch, 1 drain; scale r-17");
  EXPECT_EQ(FormatInFlight(pools[1]), "-");
  EXPECT_EQ(FormatInFlight({{"operations", {{{"kind", "delete"}}, {{"kind", "start"}}}},
                            {"scale_request", nullptr}}),
            "1 start, 1 delete");
  EXPECT_EQ(FormatInFlight({{"scale_request", "r-9"}}), "scale r-9");
}

TEST(MpscaleStatusTable, AgesAndUtcTimes) {
  EXPECT_EQ(FormatAge(0), "0s");
  EXPECT_EQ(FormatAge(45 * kSecond), "45s");
  EXPECT_EQ(FormatAge(192 * kSecond), "3m12s");
  EXPECT_EQ(FormatAge(7500 * kSecond), "2h05m");
  EXPECT_EQ(FormatAge((3 * 86400 + 4 * 3600) * kSecond), "3d04h");
  EXPECT_EQ(FormatAge(-5 * kSecond), "-5s");
  EXPECT_EQ(FormatUtc(kNowNs), "2026-11-23 10:15:45Z");
}

TEST(MpscaleEventFormat, LineHasSeqTimePoolTypeAndSortedFields) {
  auto e = Event(12, "scale.requested",
                 {{"pool", "web"},
                  {"request_id", "r-17"},
                  {"target", 5},
                  {"current", 3},
                  {"dry_run", false},
                  {"reason", "queue depth 40 > 10"}});
  EXPECT_EQ(FormatEventLine(e),
            "#12  10:15:45.123  web  scale.requested  current=3 dry_run=false "
            "reason=\"queue depth 40 > 10\" request_id=r-17 target=5");
}

TEST(MpscaleEventFormat, ArraysAndEmptyStringsStayReadable) {
  auto e = Event(3, "scale.planned",
                 {{"pool", "web"},
                  {"request_id", "r-17"},
                  {"outcome", "launch"},
                  {"message", ""},
                  {"actions", {"launch web-4", "launch web-5"}}});
  EXPECT_EQ(FormatEventLine(e),
            "#3  10:15:45.123  web  scale.planned  actions=[\"launch web-4\",\"launch web-5\"] "
            "message=\"\" outcome=launch request_id=r-17");
  auto no_pool = Event(4, "node.purged", {{"node_id", "5f2c9a1e"}});
  EXPECT_EQ(FormatEventLine(no_pool), "#4  10:15:45.123  -  node.purged  node_id=5f2c9a1e");
}

TEST(MpscaleEventFormat, JsonLineCarriesSeqTimeTypePoolAndFields) {
  auto e = Event(7, "node.drained", {{"pool", "web"}, {"instance", "web-1"}, {"node_id", "5f2c"}});
  auto j = EventJson(e);
  EXPECT_EQ(j["seq"], 7);
  EXPECT_EQ(j["ts_ns"], (kNowNs / 1'000'000 + 123) * 1'000'000);
  EXPECT_EQ(j["type"], "node.drained");
  EXPECT_EQ(j["pool"], "web");
  EXPECT_EQ(j["fields"], e.payload);
  // One line: what `--json` prints must parse back line by line.
  EXPECT_EQ(j.dump().find('\n'), std::string::npos);
  EXPECT_TRUE(EventJson(Event(8, "x", nlohmann::json::object()))["pool"].is_null());
}

TEST(MpscaleEventFormat, PoolFilter) {
  auto web = Event(1, "instance.running", {{"pool", "web"}, {"name", "web-4"}});
  auto batch = Event(2, "instance.running", {{"pool", "batch"}, {"name", "batch-1"}});
  auto none = Event(3, "bus.other", {{"pool", 7}});
  EXPECT_TRUE(MatchesPool(web, std::nullopt));
  EXPECT_TRUE(MatchesPool(none, std::nullopt));
  EXPECT_TRUE(MatchesPool(web, "web"));
  EXPECT_FALSE(MatchesPool(batch, "web"));
  EXPECT_FALSE(MatchesPool(none, "web"));
  EXPECT_FALSE(MatchesPool(web, "we"));  // exact pool, not a prefix
}
