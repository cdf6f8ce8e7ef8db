#pragma once
// The bus envelope and its msgpack codec. On the wire an envelope is one
// msgpack map with short keys; the payload is a nested map, held in memory
// as nlohmann::json so handlers read fields by name.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "bus/error.h"

namespace mps::bus {

inline constexpr std::uint32_t kProtocolVersion = 1;
inline constexpr std::string_view kErrorType = "bus.error";

struct Envelope {
  std::uint32_t version = kProtocolVersion;
  std::string type;  // e.g. "multipass.launch", "instance.running"
  std::uint64_t correlation_id = 0;
  std::string sender;
  std::int64_t deadline_ms = 0;  // absolute Unix ms; 0 = none (events)
  std::string idempotency_key;   // empty = not idempotent, never retried
  std::uint64_t seq = 0;         // events: position in the publisher's stream
  std::string stream;            // events: stream identity (seq is contiguous within it)
  std::int64_t time_ms = 0;      // events: publication time
  nlohmann::json payload = nlohmann::json::object();
};

// Bounds that keep a hostile frame from allocating or recursing without limit.
struct DecodeLimits {
  std::size_t max_frame_bytes = 1 << 20;
  std::size_t max_items = 1 << 16;  // elements of one array or map
  std::size_t max_bytes = 1 << 20;  // one string or binary
  std::size_t max_depth = 32;
};

// A decode failure, with the correlation id when it could be read so that the
// receiver can still address its error reply.
class DecodeError : public BusError {
 public:
  DecodeError(ErrorCode code, std::string message, std::uint64_t correlation_id)
      : BusError(code, std::move(message)), correlation_id_(correlation_id) {}
  std::uint64_t correlation_id() const { return correlation_id_; }

 private:
  std::uint64_t correlation_id_;
};

std::string Encode(const Envelope& envelope);
Envelope Decode(std::string_view frame, const DecodeLimits& limits = {});  // throws DecodeError

// An error reply addressed to `request`.
Envelope MakeErrorReply(const Envelope& request, const BusError& error, std::string_view sender);
// The BusError an error reply (type kErrorType) carries, and a throw of it.
BusError ErrorOfReply(const Envelope& reply);
[[noreturn]] void ThrowErrorReply(const Envelope& reply);

std::int64_t NowUnixMs();

}  // namespace mps::bus
