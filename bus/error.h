#pragma once
// The one error type of the bus boundary. Handlers' own failures travel as
// kHandlerFailed with the domain's code in `app_code`, so the far edge can
// turn them into the right gRPC status without parsing message text.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mps::bus {

enum class ErrorCode {
  kBadFrame,         // not a decodable envelope
  kBadVersion,       // envelope of another protocol version
  kTooLarge,         // over the configured message size
  kUnknownType,      // no handler for the message type
  kDeadlineExpired,  // arrived after its deadline: not executed
  kTimeout,          // no answer before the deadline
  kUnreachable,      // no connection to the endpoint
  kRefused,          // the server refused our Curve key
  kBadPayload,       // payload fields missing or of the wrong type
  kHandlerFailed,    // the handler ran and reported a domain error
  kShuttingDown,     // the server or client is stopping
};

std::string_view ErrorCodeName(ErrorCode code);
ErrorCode ErrorCodeFromName(std::string_view name);  // unknown names -> kHandlerFailed

class BusError : public std::runtime_error {
 public:
  BusError(ErrorCode code, std::string message, std::string app_code = {})
      : std::runtime_error(std::move(message)), code_(code), app_code_(std::move(app_code)) {}
  ErrorCode code() const { return code_; }
  const std::string& app_code() const { return app_code_; }

 private:
  ErrorCode code_;
  std::string app_code_;
};

}  // namespace mps::bus
