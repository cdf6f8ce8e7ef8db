#pragma once
// How mpscale reaches a bus endpoint (multipass-hostd or multipass-target's
// status endpoint): Curve client options from the key-file flags, one call
// with a progress note, and operator-facing wording of bus errors.
#include <chrono>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "bus/client.h"
#include "bus/error.h"

namespace mps::mpscale {

// A bad flag or key file: the command's usage is wrong (exit code 2).
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The --server-key / --key flags shared by every command that talks to an endpoint.
struct CurveKeyFlags {
  std::string server_key;  // server's public key file (.pub)
  std::string key;         // our secret key file (.key)
};

// What the error messages say about the service behind an endpoint.
struct ServiceWording {
  std::string name;           // e.g. "multipass-target"
  std::string how_to_run;     // e.g. "is multipass-target running with status_address = X?"
  std::string where_keys_go;  // e.g. "its status_authorized_keys_path"
};

ServiceWording HostdWording(const std::string& endpoint);
ServiceWording StatusWording(const std::string& endpoint);

// Throws UsageError naming the flag and file when a key file is unreadable or
// only one of the two flags is given.
bus::ClientOptions ClientOptionsFor(const std::string& endpoint, const CurveKeyFlags& keys);

// The public-key file an operator adds to the server's authorized keys: the
// .pub next to --key when it exists, otherwise a description of it.
std::string PublicKeyFileFor(const CurveKeyFlags& keys);

// One line for stderr (without "mpscale: " and newline) explaining `error`.
std::string DescribeBusError(const bus::BusError& error, const std::string& endpoint,
                             std::chrono::seconds timeout, const CurveKeyFlags& keys,
                             const ServiceWording& service);

// CallSync that, when stdout is a terminal and the answer takes over a second,
// notes "waiting for ENDPOINT..." on stderr. Throws BusError.
nlohmann::json CallWithProgress(bus::BusClient& client, const std::string& type,
                                nlohmann::json payload, std::chrono::seconds timeout);

}  // namespace mps::mpscale
