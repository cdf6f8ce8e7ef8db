#pragma once
// The thin gRPC edge: protobuf <-> backend types, PluginError -> grpc::Status.
// Also go-plugin's own services (controller, stdio, broker).
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>

#include <grpcpp/grpcpp.h>

#include "autoscaler/base.grpc.pb.h"
#include "autoscaler/target.grpc.pb.h"
#include "goplugin/grpc_broker.grpc.pb.h"
#include "goplugin/grpc_controller.grpc.pb.h"
#include "goplugin/grpc_stdio.grpc.pb.h"
#include "plugin/plugin_error.h"
#include "plugin/target_backend.h"

namespace mps::plugin {

inline constexpr const char* kPluginName = "multipass-target";

grpc::Status ToGrpcStatus(const PluginError& error);

// Proto -> backend action. Throws PluginError{invalid_argument} for an
// UNSPECIFIED or unknown direction. Meta that is absent, not JSON, or not a
// JSON object becomes an empty object.
ScaleAction ScaleActionFromProto(
    const hashicorp::nomad_autoscaler::plugins::shared::proto::v1::ScalingAction& action);

// The process-wide "we are stopping" state. Long-lived streams wait on it;
// the controller and signal handlers request it.
class StopSignal {
 public:
  void Request(const std::string& reason);
  bool requested() const;
  std::string reason() const;
  // Blocks until requested or `timeout` passes; true if requested.
  bool WaitFor(std::chrono::milliseconds timeout) const;
  void Wait() const;

  // Open streams are cancelled at stop so graceful shutdown need not wait
  // for the host to close them.
  void Track(grpc::ServerContext* ctx);
  void Untrack(grpc::ServerContext* ctx);

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool requested_ = false;
  std::string reason_;
  std::set<grpc::ServerContext*> streams_;
};

class BasePluginServiceImpl final
    : public hashicorp::nomad_autoscaler::plugins::base::proto::v1::BasePluginService::Service {
 public:
  explicit BasePluginServiceImpl(TargetBackend& backend) : backend_(backend) {}
  grpc::Status PluginInfo(
      grpc::ServerContext* ctx,
      const hashicorp::nomad_autoscaler::plugins::base::proto::v1::PluginInfoRequest* req,
      hashicorp::nomad_autoscaler::plugins::base::proto::v1::PluginInfoResponse* resp) override;
  grpc::Status SetConfig(
      grpc::ServerContext* ctx,
      const hashicorp::nomad_autoscaler::plugins::base::proto::v1::SetConfigRequest* req,
      hashicorp::nomad_autoscaler::plugins::base::proto::v1::SetConfigResponse* resp) override;

 private:
  TargetBackend& backend_;
};

class TargetPluginServiceImpl final
    : public hashicorp::nomad_autoscaler::plugins::target::proto::v1::TargetPluginService::Service {
 public:
  explicit TargetPluginServiceImpl(TargetBackend& backend) : backend_(backend) {}
  grpc::Status Scale(
      grpc::ServerContext* ctx,
      const hashicorp::nomad_autoscaler::plugins::target::proto::v1::ScaleRequest* req,
      hashicorp::nomad_autoscaler::plugins::target::proto::v1::ScaleResponse* resp) override;
  grpc::Status Status(
      grpc::ServerContext* ctx,
      const hashicorp::nomad_autoscaler::plugins::target::proto::v1::StatusRequest* req,
      hashicorp::nomad_autoscaler::plugins::target::proto::v1::StatusResponse* resp) override;

 private:
  TargetBackend& backend_;
};

// Shutdown answers, then requests the stop; the server is torn down by the
// thread that owns it (PluginServer::Run), never from inside a handler.
class ControllerServiceImpl final : public ::plugin::GRPCController::Service {
 public:
  explicit ControllerServiceImpl(StopSignal& stop) : stop_(stop) {}
  grpc::Status Shutdown(grpc::ServerContext* ctx, const ::plugin::Empty* req,
                        ::plugin::Empty* resp) override;

 private:
  StopSignal& stop_;
};

// Nothing is ever written to stdout after the handshake, so the stream sends
// no data: it stays open until the call is cancelled or we stop (then OK).
class StdioServiceImpl final : public ::plugin::GRPCStdio::Service {
 public:
  explicit StdioServiceImpl(StopSignal& stop) : stop_(stop) {}
  grpc::Status StreamStdio(grpc::ServerContext* ctx, const google::protobuf::Empty* req,
                           grpc::ServerWriter<::plugin::StdioData>* writer) override;

 private:
  StopSignal& stop_;
};

// We broker no connections: the stream is held open, and every knock gets
// an ack carrying an error.
class BrokerServiceImpl final : public ::plugin::GRPCBroker::Service {
 public:
  static constexpr const char* kNotSupported = "brokering is not supported";
  explicit BrokerServiceImpl(StopSignal& stop) : stop_(stop) {}
  grpc::Status StartStream(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<::plugin::ConnInfo, ::plugin::ConnInfo>* stream) override;

 private:
  StopSignal& stop_;
};

}  // namespace mps::plugin
