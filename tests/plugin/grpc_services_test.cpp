// The thin service layer in-process: protobuf in, backend call, status out.
#include <filesystem>

#include <gtest/gtest.h>

#include "plugin/grpc_services.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
namespace base_pb = hashicorp::nomad_autoscaler::plugins::base::proto::v1;
namespace target_pb = hashicorp::nomad_autoscaler::plugins::target::proto::v1;
namespace shared_pb = hashicorp::nomad_autoscaler::plugins::shared::proto::v1;
using namespace mps::plugin;
using namespace std::chrono_literals;

namespace {

class RecordingBackend : public TargetBackend {
 public:
  void SetConfig(const ConfigMap& config) override { set_config = config; }
  TargetStatus Status(const ConfigMap& config,
                      std::chrono::steady_clock::time_point deadline) override {
    status_config = config;
    status_deadline = deadline;
    if (status_error) throw *status_error;
    return {true, 3, {{"nomad_autoscaler.last_event", "1700000000000000000"}}};
  }
  void Scale(const ScaleAction& action, const ConfigMap&) override {
    last_action = action;
    throw PluginError(PluginError::Code::aborted, "nothing to do");
  }

  ConfigMap set_config, status_config;
  std::chrono::steady_clock::time_point status_deadline;
  std::optional<PluginError> status_error;
  ScaleAction last_action;
};

class GrpcServicesTest : public testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder b;
    b.AddListeningPort("unix:" + (dir_ / "s").string(), grpc::InsecureServerCredentials());
    b.RegisterService(&base_);
    b.RegisterService(&target_);
    server_ = b.BuildAndStart();
    auto ch =
        grpc::CreateChannel("unix:" + (dir_ / "s").string(), grpc::InsecureChannelCredentials());
    base_stub_ = base_pb::BasePluginService::NewStub(ch);
    target_stub_ = target_pb::TargetPluginService::NewStub(ch);
  }
  void TearDown() override { server_->Shutdown(); }

  RecordingBackend backend_;
  BasePluginServiceImpl base_{backend_};
  TargetPluginServiceImpl target_{backend_};
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<base_pb::BasePluginService::Stub> base_stub_;
  std::unique_ptr<target_pb::TargetPluginService::Stub> target_stub_;
  mps::testing::TempDir tmp_;
  fs::path dir_{tmp_.path()};
};

}  // namespace

TEST_F(GrpcServicesTest, PluginInfoAndSetConfigPassThrough) {
  grpc::ClientContext c1;
  base_pb::PluginInfoResponse info;
  ASSERT_TRUE(base_stub_->PluginInfo(&c1, {}, &info).ok());
  EXPECT_EQ(info.name(), "multipass-target");
  EXPECT_EQ(info.type(), base_pb::PLUGIN_TYPE_TARGET);
  grpc::ClientContext c2;
  base_pb::SetConfigRequest req;
  (*req.mutable_config())["a"] = "1";
  base_pb::SetConfigResponse resp;
  ASSERT_TRUE(base_stub_->SetConfig(&c2, req, &resp).ok());
  EXPECT_EQ(backend_.set_config, (ConfigMap{{"a", "1"}}));
}

TEST_F(GrpcServicesTest, StatusCarriesDeadlineAndAnswer) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 7500ms);
  target_pb::StatusRequest req;
  (*req.mutable_config())["node_class"] = "web";
  target_pb::StatusResponse resp;
  auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(target_stub_->Status(&ctx, req, &resp).ok());
  EXPECT_TRUE(resp.ready());
  EXPECT_EQ(resp.count(), 3);
  EXPECT_EQ(resp.meta().at("nomad_autoscaler.last_event"), "1700000000000000000");
  EXPECT_EQ(backend_.status_config.at("node_class"), "web");
  EXPECT_GT(backend_.status_deadline, before + 6s);
  EXPECT_LT(backend_.status_deadline, before + 8s);

  grpc::ClientContext no_deadline;
  ASSERT_TRUE(target_stub_->Status(&no_deadline, req, &resp).ok());
  EXPECT_EQ(backend_.status_deadline, std::chrono::steady_clock::time_point::max());
}

TEST_F(GrpcServicesTest, BackendErrorsBecomeStatusesAtTheEdge) {
  backend_.status_error = PluginError(PluginError::Code::unavailable, "multipassd unreachable");
  grpc::ClientContext ctx;
  target_pb::StatusResponse resp;
  auto st = target_stub_->Status(&ctx, {}, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "multipassd unreachable");

  grpc::ClientContext sctx;
  target_pb::ScaleRequest sreq;
  sreq.mutable_action()->set_count(2);
  sreq.mutable_action()->set_direction(shared_pb::SCALING_DIRECTION_DOWN);
  sreq.mutable_action()->mutable_meta()->set_value(R"({"nomad_autoscaler.count.capped":true})");
  target_pb::ScaleResponse sresp;
  st = target_stub_->Scale(&sctx, sreq, &sresp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED);  // the autoscaler's no-op
  EXPECT_EQ(backend_.last_action.count, 2);
  EXPECT_EQ(backend_.last_action.direction, Direction::down);
  EXPECT_EQ(backend_.last_action.meta["nomad_autoscaler.count.capped"], true);
}
