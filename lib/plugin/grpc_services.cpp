#include "plugin/grpc_services.h"

#include <spdlog/spdlog.h>

#include "plugin/hclog_format.h"

namespace mps::plugin {
namespace {

namespace base_pb = hashicorp::nomad_autoscaler::plugins::base::proto::v1;
namespace shared_pb = hashicorp::nomad_autoscaler::plugins::shared::proto::v1;
namespace target_pb = hashicorp::nomad_autoscaler::plugins::target::proto::v1;

ConfigMap ToMap(const google::protobuf::Map<std::string, std::string>& m) {
  return ConfigMap(m.begin(), m.end());
}

// Runs a backend call and maps every failure to a status; a handler never
// lets an exception escape into gRPC.
template <class Fn>
grpc::Status Guarded(std::string_view method, Fn&& fn) {
  try {
    fn();
    return grpc::Status::OK;
  } catch (const PluginError& e) {
    LogFields(spdlog::level::debug, "call failed",
              {{"method", method}, {"code", CodeName(e.code)}, {"error", e.message}});
    return ToGrpcStatus(e);
  } catch (const std::exception& e) {
    LogFields(spdlog::level::err, "call failed unexpectedly",
              {{"method", method}, {"error", e.what()}});
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string(method) + ": " + e.what());
  }
}

std::string_view DirectionName(Direction d) {
  switch (d) {
    case Direction::up:
      return "up";
    case Direction::down:
      return "down";
    default:
      return "none";
  }
}

}  // namespace

std::string_view CodeName(PluginError::Code code) {
  switch (code) {
    case PluginError::Code::invalid_argument:
      return "invalid_argument";
    case PluginError::Code::unavailable:
      return "unavailable";
    case PluginError::Code::failed_precondition:
      return "failed_precondition";
    case PluginError::Code::aborted:
      return "aborted";
    case PluginError::Code::deadline_exceeded:
      return "deadline_exceeded";
    case PluginError::Code::internal:
      return "internal";
    case PluginError::Code::unimplemented:
      return "unimplemented";
  }
  return "internal";
}

grpc::Status ToGrpcStatus(const PluginError& error) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (error.code) {
    case PluginError::Code::invalid_argument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case PluginError::Code::unavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case PluginError::Code::failed_precondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case PluginError::Code::aborted:
      code = grpc::StatusCode::ABORTED;
      break;
    case PluginError::Code::deadline_exceeded:
      code = grpc::StatusCode::DEADLINE_EXCEEDED;
      break;
    case PluginError::Code::internal:
      code = grpc::StatusCode::INTERNAL;
      break;
    case PluginError::Code::unimplemented:
      code = grpc::StatusCode::UNIMPLEMENTED;
      break;
  }
  return grpc::Status(code, error.message);
}

ScaleAction ScaleActionFromProto(const shared_pb::ScalingAction& action) {
  ScaleAction out;
  out.count = action.count();
  out.reason = action.reason();
  out.error = action.error();
  switch (action.direction()) {
    case shared_pb::SCALING_DIRECTION_NONE:
      out.direction = Direction::none;
      break;
    case shared_pb::SCALING_DIRECTION_DOWN:
      out.direction = Direction::down;
      break;
    case shared_pb::SCALING_DIRECTION_UP:
      out.direction = Direction::up;
      break;
    default:
      throw PluginError(PluginError::Code::invalid_argument,
                        "action.direction: " + std::to_string(action.direction()) +
                            " is not a scaling direction; expected NONE, DOWN or UP");
  }
  if (action.has_meta() && !action.meta().value().empty()) {
    auto meta = nlohmann::json::parse(action.meta().value(), nullptr, false);
    if (meta.is_object()) {
      out.meta = std::move(meta);
    } else {
      spdlog::warn("ignoring action meta that is not a JSON object ({} bytes)",
                   action.meta().value().size());
    }
  }
  return out;
}

// ---- StopSignal

void StopSignal::Request(const std::string& reason) {
  {
    std::lock_guard lock(mu_);
    if (requested_) return;
    requested_ = true;
    reason_ = reason;
    // Under the lock: a handler untracks (under the same lock) before its
    // context is destroyed. TryCancel does not block.
    for (auto* ctx : streams_) ctx->TryCancel();
  }
  cv_.notify_all();
}

bool StopSignal::requested() const {
  std::lock_guard lock(mu_);
  return requested_;
}

std::string StopSignal::reason() const {
  std::lock_guard lock(mu_);
  return reason_;
}

bool StopSignal::WaitFor(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return requested_; });
}

void StopSignal::Wait() const {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return requested_; });
}

void StopSignal::Track(grpc::ServerContext* ctx) {
  std::lock_guard lock(mu_);
  streams_.insert(ctx);
  if (requested_) ctx->TryCancel();
}

void StopSignal::Untrack(grpc::ServerContext* ctx) {
  std::lock_guard lock(mu_);
  streams_.erase(ctx);
}

// ---- autoscaler services

grpc::Status BasePluginServiceImpl::PluginInfo(grpc::ServerContext*,
                                               const base_pb::PluginInfoRequest*,
                                               base_pb::PluginInfoResponse* resp) {
  resp->set_name(kPluginName);
  resp->set_type(base_pb::PLUGIN_TYPE_TARGET);
  spdlog::trace("PluginInfo answered");
  return grpc::Status::OK;
}

grpc::Status BasePluginServiceImpl::SetConfig(grpc::ServerContext*,
                                              const base_pb::SetConfigRequest* req,
                                              base_pb::SetConfigResponse*) {
  ConfigMap config = ToMap(req->config());
  LogFields(spdlog::level::trace, "SetConfig called", {{"config", RedactSecrets(config)}});
  return Guarded("SetConfig", [&] { backend_.SetConfig(config); });
}

grpc::Status TargetPluginServiceImpl::Scale(grpc::ServerContext*,
                                            const target_pb::ScaleRequest* req,
                                            target_pb::ScaleResponse*) {
  return Guarded("Scale", [&] {
    ScaleAction action = ScaleActionFromProto(req->action());
    ConfigMap config = ToMap(req->config());
    LogFields(spdlog::level::debug, "Scale called",
              {{"count", action.count},
               {"direction", DirectionName(action.direction)},
               {"reason", action.reason},
               {"config", RedactSecrets(config)}});
    backend_.Scale(action, config);
  });
}

grpc::Status TargetPluginServiceImpl::Status(grpc::ServerContext* ctx,
                                             const target_pb::StatusRequest* req,
                                             target_pb::StatusResponse* resp) {
  ConfigMap config = ToMap(req->config());
  // The host's deadline is 75 % of the evaluation interval; anything beyond
  // a day (including gRPC's "infinite") counts as none, which also keeps
  // the steady_clock arithmetic from overflowing.
  auto deadline = std::chrono::steady_clock::time_point::max();
  auto remaining = ctx->deadline() - std::chrono::system_clock::now();
  if (remaining < std::chrono::hours(24)) {
    deadline = std::chrono::steady_clock::now() +
               std::chrono::duration_cast<std::chrono::steady_clock::duration>(remaining);
  }
  LogFields(spdlog::level::trace, "Status called", {{"config", RedactSecrets(config)}});
  return Guarded("Status", [&] {
    TargetStatus status = backend_.Status(config, deadline);
    resp->set_ready(status.ready);
    resp->set_count(status.count);
    for (const auto& [k, v] : status.meta) (*resp->mutable_meta())[k] = v;
  });
}

// ---- go-plugin services

grpc::Status ControllerServiceImpl::Shutdown(grpc::ServerContext*, const ::plugin::Empty*,
                                             ::plugin::Empty*) {
  spdlog::debug("shutdown requested by the host");
  stop_.Request("GRPCController.Shutdown");
  return grpc::Status::OK;
}

grpc::Status StdioServiceImpl::StreamStdio(grpc::ServerContext* ctx, const google::protobuf::Empty*,
                                           grpc::ServerWriter<::plugin::StdioData>*) {
  // Not tracked for cancellation: at stop it ends with OK, like Go's stream
  // ending with its context. IsCancelled has no wakeup, hence the poll.
  while (!ctx->IsCancelled()) {
    if (stop_.WaitFor(std::chrono::milliseconds(100))) break;
  }
  spdlog::trace("stdio stream ended");
  return grpc::Status::OK;
}

grpc::Status BrokerServiceImpl::StartStream(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<::plugin::ConnInfo, ::plugin::ConnInfo>* stream) {
  stop_.Track(ctx);
  ::plugin::ConnInfo in;
  // Read ends when the host closes its side or the call is cancelled.
  while (stream->Read(&in)) {
    if (in.has_knock() && in.knock().knock() && !in.knock().ack()) {
      ::plugin::ConnInfo reply;
      reply.set_service_id(in.service_id());
      reply.mutable_knock()->set_knock(true);
      reply.mutable_knock()->set_ack(true);
      reply.mutable_knock()->set_error(kNotSupported);
      LogFields(spdlog::level::debug, "refused broker knock", {{"service_id", in.service_id()}});
      if (!stream->Write(reply)) break;
    } else {
      LogFields(spdlog::level::debug, "ignored broker message", {{"service_id", in.service_id()}});
    }
  }
  stop_.Untrack(ctx);
  return grpc::Status::OK;
}

}  // namespace mps::plugin
