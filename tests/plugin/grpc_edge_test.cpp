#include <gtest/gtest.h>

#include "plugin/grpc_services.h"

namespace shared_pb = hashicorp::nomad_autoscaler::plugins::shared::proto::v1;
using mps::plugin::Direction;
using mps::plugin::PluginError;
using mps::plugin::ScaleActionFromProto;

TEST(GrpcEdge, ScaleActionFieldsAndDirections) {
  shared_pb::ScalingAction a;
  a.set_count(5);
  a.set_reason("cpu high");
  a.set_error(true);
  a.set_direction(shared_pb::SCALING_DIRECTION_UP);
  a.mutable_meta()->set_value(R"({"nomad_autoscaler.dry_run":true,"n":2})");
  auto action = ScaleActionFromProto(a);
  EXPECT_EQ(action.count, 5);
  EXPECT_EQ(action.reason, "cpu high");
  EXPECT_TRUE(action.error);
  EXPECT_EQ(action.direction, Direction::up);
  EXPECT_EQ(action.meta["nomad_autoscaler.dry_run"], true);
  a.set_direction(shared_pb::SCALING_DIRECTION_DOWN);
  EXPECT_EQ(ScaleActionFromProto(a).direction, Direction::down);
  a.set_direction(shared_pb::SCALING_DIRECTION_NONE);
  EXPECT_EQ(ScaleActionFromProto(a).direction, Direction::none);
}

TEST(GrpcEdge, UnspecifiedDirectionIsInvalidArgument) {
  shared_pb::ScalingAction a;
  a.set_direction(shared_pb::SCALING_DIRECTION_UNSPECIFIED);
  try {
    ScaleActionFromProto(a);
    FAIL();
  } catch (const PluginError& e) {
    EXPECT_EQ(e.code, PluginError::Code::invalid_argument);
    EXPECT_NE(e.message.find("direction"), std::string::npos);
  }
  a.set_direction(static_cast<shared_pb::ScalingDirection>(42));
  EXPECT_THROW(ScaleActionFromProto(a), PluginError);
}

TEST(GrpcEdge, BadMetaBecomesEmptyObject) {
  shared_pb::ScalingAction a;
  a.set_direction(shared_pb::SCALING_DIRECTION_UP);
  EXPECT_EQ(ScaleActionFromProto(a).meta, nlohmann::json::object());  // absent
  for (const char* v : {"", "{broken", "[1,2]", "\"str\"", "null"}) {
    a.mutable_meta()->set_value(v);
    auto meta = ScaleActionFromProto(a).meta;
    EXPECT_TRUE(meta.is_object()) << v;
    EXPECT_TRUE(meta.empty()) << v;
  }
}

TEST(GrpcEdge, ErrorCodesMapToGrpc) {
  using C = PluginError::Code;
  const std::pair<C, grpc::StatusCode> cases[] = {
      {C::invalid_argument, grpc::StatusCode::INVALID_ARGUMENT},
      {C::unavailable, grpc::StatusCode::UNAVAILABLE},
      {C::failed_precondition, grpc::StatusCode::FAILED_PRECONDITION},
      {C::aborted, grpc::StatusCode::ABORTED},
      {C::deadline_exceeded, grpc::StatusCode::DEADLINE_EXCEEDED},
      {C::internal, grpc::StatusCode::INTERNAL},
      {C::unimplemented, grpc::StatusCode::UNIMPLEMENTED}};
  for (auto [code, grpc_code] : cases) {
    auto st = mps::plugin::ToGrpcStatus(PluginError(code, "why"));
    EXPECT_EQ(st.error_code(), grpc_code);
    EXPECT_EQ(st.error_message(), "why");
  }
}
