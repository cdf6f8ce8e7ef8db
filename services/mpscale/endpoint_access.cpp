#include "mpscale/endpoint_access.h"

#include <unistd.h>

#include <filesystem>
#include <future>
#include <iostream>

#include "bus/keys.h"

namespace mps::mpscale {

ServiceWording HostdWording(const std::string& endpoint) {
  return {"multipass-hostd", "is multipass-hostd running with --bind " + endpoint + "?",
          "its --authorized-keys directory"};
}

ServiceWording StatusWording(const std::string& endpoint) {
  return {"multipass-target", "is multipass-target running with status_address = " + endpoint + "?",
          "its status_authorized_keys_path"};
}

namespace {

// ZeroMQ rejects these only on connect, inside the client's I/O thread, where
// the failure would end the process instead of naming the flag.
void CheckConnectable(const std::string& endpoint, bus::Transport transport) {
  auto rest = endpoint.substr(endpoint.find("://") + 3);
  if (transport != bus::Transport::kTcp) {
    if (rest.empty()) throw UsageError(endpoint + " names no socket path");
    return;
  }
  auto colon = rest.rfind(':');
  auto port = colon == std::string::npos ? "" : rest.substr(colon + 1);
  bool numeric = !port.empty() && port.size() <= 5 &&
                 port.find_first_not_of("0123456789") == std::string::npos;
  if (colon == 0 || !numeric || std::stoi(port) == 0 || std::stoi(port) > 65535)
    throw UsageError(endpoint + " must be tcp://HOST:PORT with a port from 1 to 65535");
}

}  // namespace

bus::ClientOptions ClientOptionsFor(const std::string& endpoint, const CurveKeyFlags& keys) {
  bus::ClientOptions options;
  options.endpoint = endpoint;
  options.name = "mpscale";
  bus::Transport transport;
  try {
    transport = bus::TransportOf(endpoint);
  } catch (const std::exception& e) {
    throw UsageError(e.what());
  }
  CheckConnectable(endpoint, transport);
  if (keys.server_key.empty() && keys.key.empty()) {
    if (transport == bus::Transport::kTcp)
      throw UsageError(endpoint +
                       " is tcp://, which is always Curve-encrypted: pass --server-key "
                       "(the server's .pub) and --key (our .key)");
    return options;
  }
  if (keys.server_key.empty() || keys.key.empty())
    throw UsageError("--server-key and --key go together");
  bus::CurveClientConfig curve;
  try {
    curve.server_public_z85 = bus::ReadKeyFile(keys.server_key);
  } catch (const std::exception& e) {
    throw UsageError("--server-key " + keys.server_key + ": " + e.what());
  }
  try {
    curve.secret_z85 = bus::ReadSecretKeyFile(keys.key).secret_z85;
  } catch (const std::exception& e) {
    throw UsageError("--key " + keys.key + ": " + e.what());
  }
  options.curve = curve;
  return options;
}

std::string PublicKeyFileFor(const CurveKeyFlags& keys) {
  if (keys.key.empty()) return "a Curve public key (pass --server-key and --key)";
  auto pub = std::filesystem::path(keys.key).replace_extension(".pub");
  std::error_code ec;
  if (std::filesystem::exists(pub, ec)) return pub.string();
  return "the public key of --key " + keys.key + " (its .pub file)";
}

std::string DescribeBusError(const bus::BusError& error, const std::string& endpoint,
                             std::chrono::seconds timeout, const CurveKeyFlags& keys,
                             const ServiceWording& service) {
  switch (error.code()) {
    case bus::ErrorCode::kTimeout:
    case bus::ErrorCode::kUnreachable:
      return "no answer from " + endpoint + " within " + std::to_string(timeout.count()) +
             "s: " + service.how_to_run;
    case bus::ErrorCode::kRefused:
      return endpoint + " refused our key: add " + PublicKeyFileFor(keys) + " to " +
             service.where_keys_go + " (" + error.what() + ")";
    default:
      return service.name + " at " + endpoint + ": " + error.what() +
             (error.app_code().empty() ? "" : " [" + error.app_code() + "]");
  }
}

nlohmann::json CallWithProgress(bus::BusClient& client, const std::string& type,
                                nlohmann::json payload, std::chrono::seconds timeout) {
  auto done = std::make_shared<std::promise<bus::CallResult>>();
  auto result = done->get_future();
  client.Call(type, std::move(payload), {timeout, {}},
              [done](bus::CallResult r) { done->set_value(std::move(r)); });
  if (result.wait_for(std::chrono::seconds(1)) != std::future_status::ready &&
      isatty(STDOUT_FILENO))
    std::cerr << "waiting for " << client.endpoint() << "...\n";
  auto r = result.get();
  if (r.error) throw *r.error;
  return std::move(r.reply.payload);
}

}  // namespace mps::mpscale
