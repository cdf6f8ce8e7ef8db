#pragma once
// The errors of the Nomad boundary: NomadError for anything the HTTP API (or
// its answer) did, NomadConfigError for a bad configuration key.
#include <stdexcept>
#include <string>
#include <string_view>

namespace mps::nomad {

class NomadError : public std::runtime_error {
 public:
  enum class Kind {
    unreachable,   // connection refused, DNS, TLS handshake: Nomad was never asked
    forbidden,     // 403: ACL denied or unknown token
    not_found,     // 404 of something other than a node
    node_gone,     // the node no longer exists (GET 404, write 500 "node not found")
    bad_request,   // 400 and 405
    server_error,  // other 5xx
    bad_response,  // a body we could not parse, or a key with the wrong type
    timeout,       // no answer within the client timeout
    cancelled,     // the call was cancelled (we are stopping): its outcome is unknown
  };

  NomadError(Kind kind, int http_status, std::string message)
      : std::runtime_error(message),
        kind(kind),
        http_status(http_status),
        message(std::move(message)) {}

  Kind kind;
  int http_status;  // 0 when no HTTP answer was received
  std::string message;
};

std::string_view KindName(NomadError::Kind kind);

// A configuration or policy key with a value we cannot use; `key` is the key
// (or environment variable) exactly as the user wrote it.
class NomadConfigError : public std::invalid_argument {
 public:
  NomadConfigError(std::string key, const std::string& problem)
      : std::invalid_argument(key + ": " + problem), key(std::move(key)) {}
  std::string key;
};

}  // namespace mps::nomad
