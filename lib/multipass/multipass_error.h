#pragma once

#include <exception>
#include <optional>
#include <string>
#include <string_view>

namespace mps::multipass {

// The one error type of the multipassd boundary. Kinds come from gRPC status
// codes and the LaunchError/StartError details, never from message text (the
// daemon's texts change between releases); the text is only carried along.
struct MultipassError : std::exception {
  enum class Kind {
    unreachable,          // cannot connect / TLS handshake failed
    unauthenticated,      // our client cert is not in the daemon's store
    wrong_passphrase,     // authenticate: passphrase does not match
    passphrase_not_set,   // authenticate: daemon has no local.passphrase
    image_not_found,      // launch: image could not be found or prepared
    invalid_name,         // instance name rejected (locally or by the daemon)
    name_taken,           // launch: an instance with that name exists
    invalid_argument,     // any other rejected argument
    out_of_resources,     // daemon ran out of capacity
    launch_timeout,       // VM created but not initialized in time: see leftover_instance
    start_failed,         // launch: the VM was made but did not start; the daemon removed it
    start_timeout,        // start: not up within the timeout; the instance stays
    unsupported_version,  // multipassd is older than kMinimumDaemonVersion
    not_found,            // instance does not exist (or is deleted)
    aborted,              // the daemon gave up (e.g. the VM failed to start)
    timeout,              // our own call deadline passed
    cancelled,            // stopping: never started, or interrupted by CancelAll
    invalid_config,       // bad address, credentials file, or option
    internal,             // anything else
  };

  MultipassError(Kind kind, std::string message, std::string instance = {},
                 std::optional<std::string> leftover_instance = std::nullopt);

  const char* what() const noexcept override { return message.c_str(); }

  Kind kind;
  std::string message;
  std::string instance;  // the instance concerned, when there is one
  // Set when the failed call left an instance behind that the caller must delete.
  std::optional<std::string> leftover_instance;
};

std::string_view KindName(MultipassError::Kind kind);

}  // namespace mps::multipass
