#pragma once
// The one error type between the plugin's services and whatever serves them
// (backend, config parsing). It becomes a grpc::Status only at the gRPC edge
// (grpc_services.cpp), so backends never depend on gRPC.
#include <exception>
#include <string>
#include <string_view>

namespace mps::plugin {

class PluginError : public std::exception {
 public:
  // Mirrors the gRPC codes the autoscaler reacts to: ABORTED on Scale is its
  // no-op signal; the others are logged and retried on the next tick.
  enum class Code {
    invalid_argument,
    unavailable,
    failed_precondition,
    aborted,
    deadline_exceeded,
    internal,
    unimplemented,
  };

  PluginError(Code code, std::string message) : code(code), message(std::move(message)) {}
  const char* what() const noexcept override { return message.c_str(); }

  Code code;
  std::string message;
};

std::string_view CodeName(PluginError::Code code);

}  // namespace mps::plugin
