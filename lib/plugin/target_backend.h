#pragma once
// What the gRPC target services call. The services only translate protobuf
// to these types and PluginError to grpc::Status; all scaling behaviour lives
// behind this interface. Every method may throw PluginError.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace mps::plugin {

using ConfigMap = std::map<std::string, std::string>;

enum class Direction { none, down, up };

struct ScaleAction {
  int64_t count = 0;  // absolute desired count; -1 means dry-run
  std::string reason;
  bool error = false;  // the reason describes an error
  Direction direction = Direction::none;
  nlohmann::json meta = nlohmann::json::object();  // always a JSON object
};

struct TargetStatus {
  bool ready = false;
  int64_t count = 0;
  std::map<std::string, std::string> meta;
};

class TargetBackend {
 public:
  virtual ~TargetBackend() = default;

  // The agent's plugin config block (+ merged nomad_* keys). Called again on
  // every agent reload; the new map replaces the old one entirely.
  virtual void SetConfig(const ConfigMap& config) = 0;

  // `config` is the policy's target block. `deadline` is the caller's gRPC
  // deadline (time_point::max() when it sent none).
  virtual TargetStatus Status(const ConfigMap& config,
                              std::chrono::steady_clock::time_point deadline) = 0;

  // No deadline: the autoscaler waits as long as drains take.
  virtual void Scale(const ScaleAction& action, const ConfigMap& config) = 0;
};

}  // namespace mps::plugin
