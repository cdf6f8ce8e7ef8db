#include <gtest/gtest.h>

#include "canned_pools.h"
#include "contracts/codec.h"
#include "contracts/status.h"
#include "mpscale/endpoint_access.h"
#include "mpscale/event_format.h"
#include "mpscale/status_table.h"

using namespace mps::mpscale;
using namespace mps::mpscale::testing;

namespace {

namespace status = mps::contracts::status;

// The canned reply as mpscale reads it: through the contract.
status::PoolsReply Canned() {
  return mps::contracts::DecodeReply<status::PoolsRequest>(CannedPools());
}

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
  EXPECT_EQ(FormatStatusTable(Canned(), kNowNs),
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

TEST(MpscaleStatusTable, APoolOverSeveralHostsShowsEachInstancesHostAndEachHostsHealth) {
  status::PoolView view;
  view.pool = "web";
  view.count = 1;
  view.ready = true;
  view.instances = {{"web-1", "running", true, "n1", "ready", std::nullopt, "mp-a"},
                    {"web-2", "running", false, "n2", "ready", std::nullopt, "mp-b"}};
  view.hosts = {{"mp-a", "z1", true, "", 1, 1}, {"mp-b", "", false, "hostd down", 1, 0}};
  status::PoolsReply reply;
  reply.pools = {view};
  EXPECT_EQ(FormatStatusTable(reply, kNowNs),
            "POOL  COUNT  READY  LAST EVENT  IN FLIGHT\n"
            "web   1      yes    -           -\n"
            "    hosts: mp-a [z1]: 1 instance(s), 1 counted; mp-b: 1 instance(s), 0 counted, "
            "unreachable: hostd down\n"
            "    INSTANCE  HOST  STATE    NODE        COUNTED\n"
            "    web-1     mp-a  running  n1 (ready)  yes\n"
            "    web-2     mp-b  running  n2 (ready)  no\n");
}

TEST(MpscaleStatusTable, NoPools) {
  EXPECT_EQ(FormatStatusTable(status::PoolsReply{}, kNowNs), "no pools\n");
}

TEST(MpscaleStatusTable, InFlightCountsKindsInProtocolOrderAndNamesTheScaleRequest) {
  auto pools = Canned().pools;
  EXPECT_EQ(FormatInFlight(pools[0]), "2 launch, 1 drain; scale r-17");
  EXPECT_EQ(FormatInFlight(pools[1]), "-");
  status::PoolView view;
  view.operations = {{status::OperationKind::kDelete, "web-1", 0, "r-8"},
                     {status::OperationKind::kStart, "web-2", 0, "r-8"}};
  EXPECT_EQ(FormatInFlight(view), "1 start, 1 delete");
  view.operations.clear();
  view.scale_request = "r-9";
  EXPECT_EQ(FormatInFlight(view), "scale r-9");
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
  auto other = Event(4, "bus.heartbeat", {{"last", 3}});
  EXPECT_EQ(FormatEventLine(other), "#4  10:15:45.123  -  bus.heartbeat  last=3");
}

TEST(MpscaleEventFormat, AnEventThatBreaksItsContractIsPrintedWithWhatIsWrong) {
  auto no_pool = Event(4, "node.purged", {{"node_id", "5f2c9a1e"}});
  EXPECT_EQ(FormatEventLine(no_pool),
            "#4  10:15:45.123  -  node.purged  node_id=5f2c9a1e  [not as documented: "
            "node.purged: field 'pool' is required]");
  EXPECT_EQ(EventJson(no_pool)["contract_problem"], "node.purged: field 'pool' is required");
  auto extra = Event(5, "instance.running", {{"pool", "web"}, {"name", "web-4"}, {"ip", "x"}});
  ASSERT_TRUE(ContractProblem(extra));
  EXPECT_NE(ContractProblem(extra)->find("field 'ip' is not part of the contract"),
            std::string::npos);
  EXPECT_TRUE(MatchesPool(extra, "web")) << "the pool field still filters";
  EXPECT_FALSE(ContractProblem(Event(6, "instance.running", {{"pool", "web"}, {"name", "web-4"}})));
  EXPECT_FALSE(EventJson(Event(6, "instance.running", {{"pool", "web"}, {"name", "w"}}))
                   .contains("contract_problem"));
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

TEST(MpscaleEndpointAccess, ErrorsSayWhatToCheck) {
  using mps::bus::BusError;
  using mps::bus::ErrorCode;
  const std::string ep = "tcp://10.1.2.1:7500";
  CurveKeyFlags keys{"/etc/mps/target.pub", "/nonexistent/ops.key"};
  EXPECT_EQ(DescribeBusError(BusError(ErrorCode::kTimeout, "deadline"), ep, std::chrono::seconds(5),
                             keys, StatusWording(ep)),
            "no answer from tcp://10.1.2.1:7500 within 5s: is multipass-target running with "
            "status_address = tcp://10.1.2.1:7500?");
  EXPECT_EQ(DescribeBusError(BusError(ErrorCode::kRefused, "not authorized"), ep,
                             std::chrono::seconds(5), keys, StatusWording(ep)),
            "tcp://10.1.2.1:7500 refused our key: add the public key of --key "
            "/nonexistent/ops.key (its .pub file) to its status_authorized_keys_path "
            "(not authorized)");
  EXPECT_EQ(DescribeBusError(BusError(ErrorCode::kHandlerFailed, "boom", "unreachable"), ep,
                             std::chrono::seconds(5), keys, HostdWording(ep)),
            "multipass-hostd at tcp://10.1.2.1:7500: boom [unreachable]");
}

TEST(MpscaleEndpointAccess, BadEndpointsAndHalfKeyPairsAreUsageErrors) {
  EXPECT_THROW(ClientOptionsFor("tcp://10.1.2.1", {}), UsageError);
  EXPECT_THROW(ClientOptionsFor("tcp://10.1.2.1:0", {"a.pub", "a.key"}), UsageError);
  EXPECT_THROW(ClientOptionsFor("tcp://10.1.2.1:7500", {}), UsageError);  // tcp needs Curve
  EXPECT_THROW(ClientOptionsFor("http://10.1.2.1:7500", {}), UsageError);
  EXPECT_THROW(ClientOptionsFor("ipc:///run/x.sock", {"", "a.key"}), UsageError);
  try {
    ClientOptionsFor("ipc:///run/x.sock", {"/nonexistent/t.pub", "/nonexistent/a.key"});
    FAIL() << "a missing key file must be a usage error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--server-key /nonexistent/t.pub"), std::string::npos)
        << e.what();
  }
  auto plain = ClientOptionsFor("ipc:///run/x.sock", {});
  EXPECT_EQ(plain.endpoint, "ipc:///run/x.sock");
  EXPECT_FALSE(plain.curve);
}
