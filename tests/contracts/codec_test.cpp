// The contract codec: every field is read by name and type, and a payload
// that does not match its contract is refused with the field named.
#include <gtest/gtest.h>

#include <limits>

#include "contracts/app_code.h"
#include "contracts/codec.h"
#include "contracts/host.h"
#include "contracts/multipass.h"
#include "contracts/nomad.h"
#include "contracts/status.h"

namespace mps::contracts {
namespace {

using nlohmann::json;
namespace mp = contracts::multipass;
namespace nm = contracts::nomad;
namespace st = contracts::status;

std::string ErrorOf(const json& payload) {
  try {
    Decode<mp::LaunchRequest>(payload, mp::LaunchRequest::kType);
  } catch (const ContractError& e) {
    EXPECT_EQ(e.code(), bus::ErrorCode::kBadPayload);
    return e.what();
  }
  return "decoded";
}

TEST(ContractCodec, RoundTripKeepsEveryField) {
  mp::LaunchRequest launch;
  launch.name = "web-abc123";
  launch.image = "24.04";
  launch.cpus = 2;
  launch.memory = "2G";
  launch.cloud_init = "#cloud-config\n";
  launch.timeout_s = 300;
  json wire = Encode(launch);
  EXPECT_EQ(wire["cpus"], 2);
  EXPECT_FALSE(wire.contains("nope"));
  auto back = Decode<mp::LaunchRequest>(wire, mp::LaunchRequest::kType);
  EXPECT_EQ(back.name, launch.name);
  EXPECT_EQ(back.image, launch.image);
  EXPECT_EQ(back.cpus, 2);
  EXPECT_EQ(back.memory, "2G");
  EXPECT_EQ(back.cloud_init, launch.cloud_init);
  EXPECT_EQ(back.timeout_s, 300);
}

TEST(ContractCodec, AbsentOptionalIsOmittedAndKeepsItsDefault) {
  mp::LaunchRequest launch;
  launch.name = "web-1";
  json wire = Encode(launch);
  EXPECT_FALSE(wire.contains("cpus"));
  auto back = Decode<mp::LaunchRequest>(wire, mp::LaunchRequest::kType);
  EXPECT_FALSE(back.cpus.has_value());
  EXPECT_EQ(back.image, "");
}

TEST(ContractCodec, MissingRequiredFieldIsNamed) {
  EXPECT_EQ(ErrorOf({{"image", "x"}}), "multipass.launch: field 'name' is required");
}

TEST(ContractCodec, MistypedFieldIsNamedWithWhatCame) {
  EXPECT_EQ(ErrorOf({{"name", "web-1"}, {"cpus", "two"}}),
            "multipass.launch: field 'cpus' expected an integer, got the string \"two\"");
  EXPECT_EQ(ErrorOf({{"name", 7}}),
            "multipass.launch: field 'name' expected a string, got the "
            "integer 7");
  EXPECT_EQ(ErrorOf(json::array()), "multipass.launch: payload expected a map, got a list");
}

TEST(ContractCodec, UnknownFieldIsRefused) {
  auto error = ErrorOf({{"name", "web-1"}, {"cpu", 2}});
  EXPECT_NE(error.find("field 'cpu' is not part of the contract"), std::string::npos) << error;
}

TEST(ContractCodec, NegativeIntegersFitSignedFieldsOnly) {
  json select = {{"policy", json::object()}, {"count", -1}, {"candidates", json::array()}};
  EXPECT_EQ(Decode<nm::SelectRequest>(select, nm::SelectRequest::kType).count, -1);
  select["count"] = std::numeric_limits<std::int64_t>::min();
  EXPECT_EQ(Decode<nm::SelectRequest>(select, nm::SelectRequest::kType).count,
            std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(ErrorOf({{"name", "w"}, {"cpus", -3}}), "decoded");
  EXPECT_NE(ErrorOf({{"name", "w"}, {"cpus", -(1LL << 40)}}).find("out of range"),
            std::string::npos);
  json nodes = {{"nodes", json::array()}, {"index", -1}};  // unsigned
  EXPECT_THROW(Decode<nm::PoolNodesReply>(nodes, "nomad.pool_nodes reply"), ContractError);
}

TEST(ContractCodec, IntegersAreRangeChecked) {
  EXPECT_NE(ErrorOf({{"name", "w"}, {"cpus", 1LL << 40}}).find("out of range"), std::string::npos);
  json nodes = {{"nodes", json::array()}, {"index", -1}};
  EXPECT_THROW(Decode<nm::PoolNodesReply>(nodes, "nomad.pool_nodes reply"), ContractError);
}

TEST(ContractCodec, NestedPathsAndEnumsAreNamed) {
  json reply = {
      {"results",
       {{{"node_id", "a"}, {"outcome", "drained"}}, {{"node_id", "b"}, {"outcome", "melted"}}}}};
  try {
    DecodeReply<nm::DrainRequest>(reply);
    FAIL() << "decoded an unknown outcome";
  } catch (const ContractError& e) {
    EXPECT_EQ(e.field(), "results[1].outcome");
    EXPECT_NE(std::string(e.what()).find("expected one of drained, drain_failed, gone"),
              std::string::npos)
        << e.what();
  }
  reply["results"][1]["outcome"] = "gone";
  auto ok = DecodeReply<nm::DrainRequest>(reply);
  ASSERT_EQ(ok.results.size(), 2u);
  EXPECT_EQ(ok.results[1].outcome, nm::DrainOutcome::kGone);
  EXPECT_EQ(Encode(ok)["results"][0]["outcome"], "drained");
}

TEST(ContractCodec, NullOptionalMeansAbsent) {
  json node = {{"id", "n1"},
               {"instance", nullptr},
               {"status", "ready"},
               {"drain", false},
               {"eligible", true}};
  auto n = Decode<nm::PoolNode>(node, "node");
  EXPECT_FALSE(n.instance.has_value());
}

TEST(ContractCodec, StringMapsAreCheckedPerKey) {
  json select = {{"policy", {{"node_class", 3}}}, {"count", 1}, {"candidates", json::array()}};
  try {
    Decode<nm::SelectRequest>(select, nm::SelectRequest::kType);
    FAIL();
  } catch (const ContractError& e) {
    EXPECT_EQ(e.field(), "policy.node_class");
  }
}

TEST(ContractCodec, NullableIsAlwaysWrittenNullWhenEmpty) {
  st::InstanceView instance;
  instance.name = "web-1";
  instance.state = "starting";
  json wire = Encode(instance);
  ASSERT_TRUE(wire.contains("node_id"));
  EXPECT_TRUE(wire["node_id"].is_null());
  instance.node_id = "n1";
  EXPECT_EQ(Encode(instance)["node_id"], "n1");
  // Read like an optional field: null or absent is empty.
  wire.erase("node_id");
  EXPECT_FALSE(Decode<st::InstanceView>(wire, "instance").node_id.has_value());
}

// The state.pools reply exactly as the status endpoint documents it.
TEST(StatusContract, PoolViewRoundTripsTheDocumentedReply) {
  json reply = {
      {"pools",
       {{{"pool", "web"},
         {"count", 2},
         {"ready", false},
         {"reasons", {"launch backoff"}},
         {"last_event_ns", nullptr},
         {"scale_request", "r-3"},
         {"operations",
          {{{"kind", "drain"}, {"instance", "web-1"}, {"started_ns", 5}, {"request_id", "r-3"}}}},
         {"instances",
          {{{"name", "web-1"},
            {"state", "running"},
            {"counted", true},
            {"node_id", "n1"},
            {"node_status", "ready"},
            {"launched_ns", 4},
            {"host", "mp-a"}},
           {{"name", "web-2"},
            {"state", "starting"},
            {"counted", true},
            {"node_id", nullptr},
            {"node_status", nullptr},
            {"launched_ns", nullptr},
            {"host", "mp-b"}}}},
         {"hosts",
          {{{"name", "mp-a"},
            {"zone", "z1"},
            {"reachable", true},
            {"reason", ""},
            {"instances", 1},
            {"counted", 1}},
           {{"name", "mp-b"},
            {"zone", ""},
            {"reachable", false},
            {"reason", "hostd down"},
            {"instances", 1},
            {"counted", 0}}}},
         {"launch_failures",
          {{"consecutive", 1}, {"last_error", "no image"}, {"next_retry_ns", 9}}}}}}};
  auto decoded = DecodeReply<st::PoolsRequest>(reply);
  ASSERT_EQ(decoded.pools.size(), 1u);
  const auto& web = decoded.pools[0];
  EXPECT_EQ(web.scale_request, "r-3");
  EXPECT_FALSE(web.last_event_ns);
  EXPECT_EQ(web.operations.at(0).kind, st::OperationKind::kDrain);
  EXPECT_EQ(web.instances.at(0).node_id, "n1");
  EXPECT_FALSE(web.instances.at(1).node_id);
  EXPECT_EQ(web.launch_failures.next_retry_ns, 9);
  EXPECT_EQ(web.instances.at(1).host, "mp-b");
  EXPECT_FALSE(web.hosts.at(1).reachable);
  EXPECT_EQ(web.hosts.at(1).reason, "hostd down");
  EXPECT_EQ(Encode(decoded), reply);

  reply["pools"][0]["operations"][0]["kind"] = "resize";
  EXPECT_THROW(DecodeReply<st::PoolsRequest>(reply), ContractError);
}

TEST(StatusContract, RequestAndEventsKeepTheirNames) {
  EXPECT_EQ(Encode(st::PoolsRequest{}), json::object());
  EXPECT_EQ(Encode(st::PoolsRequest{"web"}), (json{{"pool", "web"}}));
  EXPECT_EQ(st::PoolsRequest::kType, "state.pools");
  EXPECT_EQ(st::NodeDrainFailed::kType, "node.drain_failed");
  EXPECT_EQ(
      Encode(st::NodeDrainFailed{"web", "web-1", "n1", "timeout"}),
      (json{{"pool", "web"}, {"instance", "web-1"}, {"node_id", "n1"}, {"reason", "timeout"}}));
  EXPECT_EQ(std::tuple_size_v<st::Events>, 13u);
}

TEST(AppCodes, OneTableBothWays) {
  for (auto code : {AppCode::kNameTaken, AppCode::kUnreachable, AppCode::kFilter,
                    AppCode::kInvalidConfig, AppCode::kNodeGone, AppCode::kNotAllowed}) {
    EXPECT_EQ(AppCodeFromName(AppCodeName(code)), code);
  }
  EXPECT_EQ(AppCodeFromName("no_such_code"), AppCode::kNone);
  EXPECT_EQ(AppCodeOf(AppError(AppCode::kNameTaken, "taken")), AppCode::kNameTaken);
  EXPECT_EQ(AppError(AppCode::kForbidden, "x").app_code(), "forbidden");
}

TEST(ContractCodec, HostCapacityRoundTripsAndRefusesWhatItDoesNotKnow) {
  namespace ch = contracts::host;
  ch::CapacityReply reply;
  reply.totals = {8, 16LL << 30, 200LL << 30, "daemon_info", "", ""};
  reply.allocated = {2, 3, 3LL << 30, 15LL << 30, 1};
  reply.headroom = {2.5, 1.0, 1LL << 30, 0, 10};
  reply.health.daemon_reachable = true;
  reply.health.daemon_version = "1.16.3";
  reply.health.consecutive_launch_failures = 1;
  reply.health.last_launch_failure = "start failed";
  json wire = Encode(reply);
  EXPECT_EQ(wire["headroom"]["cpu_allocation_ratio"], 2.5);
  auto back = DecodeReply<ch::CapacityRequest>(wire);
  EXPECT_EQ(Encode(back), wire);
  EXPECT_EQ(back.headroom.cpu_allocation_ratio, 2.5);
  EXPECT_EQ(back.allocated.estimated, 1);

  auto refusal = [](json payload) -> std::string {
    try {
      DecodeReply<ch::CapacityRequest>(payload);
    } catch (const ContractError& e) {
      return e.what();
    }
    return "decoded";
  };
  json missing = wire;
  missing["allocated"].erase("estimated");
  EXPECT_NE(refusal(missing).find("'allocated.estimated' is required"), std::string::npos)
      << refusal(missing);
  json unknown = wire;
  unknown["totals"]["gpus"] = 1;
  EXPECT_NE(refusal(unknown).find("totals.gpus"), std::string::npos) << refusal(unknown);
  json mistyped = wire;
  mistyped["headroom"]["memory_allocation_ratio"] = "lots";
  EXPECT_NE(refusal(mistyped).find("expected a number, got"), std::string::npos)
      << refusal(mistyped);
  // A ratio written as an integer is still a ratio.
  json integral = wire;
  integral["headroom"]["memory_allocation_ratio"] = 2;
  EXPECT_EQ(DecodeReply<ch::CapacityRequest>(integral).headroom.memory_allocation_ratio, 2.0);
  EXPECT_THROW(Decode<ch::CapacityRequest>(json{{"pool", "web"}}, ch::CapacityRequest::kType),
               ContractError);
}

}  // namespace
}  // namespace mps::contracts
